#!/usr/bin/env python3
"""API checks for the inbound suite (the Scheduler API and the historical API of holdless).

    api.py BASE callback NUMBER TARGET [--type asap|scheduled] [--meta K=V]...
        exactly one active callback for NUMBER on call target TARGET, of that type, whose
        full record (GET .../callback/{id}) has source "Phone:<dialled number>" and
        sip_metadata[K] == V
        (--meta K= : K absent or empty; --no-meta: sip_metadata empty or null)
    api.py BASE none NUMBER [TARGET]
        no callback for NUMBER (on TARGET, or on any call target)
    api.py BASE record CALL_ID [K=V]...
        the call record with id CALL_ID in the historical API (the current UTC hour, or the
        one before) has each field K equal to V (JSON: true, 5, "x"); waits up to 5 s for it

BASE is http://127.0.0.1:PORT; the token is demo-token (organization demo). Prints one line
saying what was found; exits 1 (saying why) when a check fails.
"""
import datetime
import json
import sys
import time
import urllib.error
import urllib.request

TOKEN = "demo-token"
ORG = "demo"


def call(base, path, body=None):
    req = urllib.request.Request(base + path, method="POST" if body is not None else "GET")
    req.add_header("Authorization", "Bearer " + TOKEN)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, data, timeout=5) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text.decode(errors="replace")


def status(base, number):
    code, body = call(base, f"/api/organization/{ORG}/callback_status", {"contact_number": number})
    if code != 200:
        sys.exit(f"callback_status {number}: HTTP {code} {body}")
    return body.get("data", [])


def value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def cmd_callback(base, args):
    number, target, rest = args[0], args[1], args[2:]
    want_type, metas, no_meta = None, [], False
    i = 0
    while i < len(rest):
        if rest[i] == "--type":
            want_type = rest[i + 1]
            i += 2
        elif rest[i] == "--meta":
            metas.append(rest[i + 1].split("=", 1))
            i += 2
        elif rest[i] == "--no-meta":
            no_meta = True
            i += 1
        else:
            sys.exit(f"unknown argument {rest[i]}")
    all_ = status(base, number)
    mine = [c for c in all_ if c.get("call_target_id") == target]
    if len(mine) != 1:
        sys.exit(f"want exactly 1 callback for {number} on {target}, callback_status shows {len(mine)}: {json.dumps(all_)}")
    c = mine[0]
    if want_type and c.get("type") != want_type:
        sys.exit(f"callback {c.get('call_request_id')} has type {c.get('type')!r}, want {want_type!r}: {json.dumps(c)}")
    cid = c["call_request_id"]
    code, rec = call(base, f"/api/organization/{ORG}/callback/{cid}")
    if code != 200:
        sys.exit(f"GET callback/{cid}: HTTP {code} {rec}")
    if isinstance(rec, dict) and isinstance(rec.get("data"), list) and rec["data"]:
        rec = rec["data"][0]
    meta = rec.get("sip_metadata") or {}
    if not str(rec.get("source", "")).startswith("Phone:"):
        sys.exit(f"callback {cid} has source {rec.get('source')!r}, want 'Phone:<dialled number>': {json.dumps(rec)}")
    if no_meta and meta:
        sys.exit(f"callback {cid}: want no sip_metadata, got {json.dumps(meta)}")
    for k, v in metas:
        if v == "" and not meta.get(k):
            continue
        if meta.get(k) != v:
            sys.exit(f"callback {cid}: sip_metadata[{k!r}] = {meta.get(k)!r}, want {v!r}; sip_metadata = {json.dumps(meta)}")
    extra = f" appointment_time={rec.get('appointment_time')}" if rec.get("appointment_time") else ""
    print(f"callback {cid} for {rec.get('callback_number')} on {target}: {c.get('type')} {c.get('status')}"
          f"{extra}, sip_metadata {json.dumps(meta, sort_keys=True)}")


def cmd_none(base, args):
    number = args[0]
    target = args[1] if len(args) > 1 else None
    all_ = status(base, number)
    mine = [c for c in all_ if target is None or c.get("call_target_id") == target]
    if mine:
        sys.exit(f"want no callback for {number}{' on ' + target if target else ''}, callback_status shows {json.dumps(mine)}")
    print(f"no callback for {number}{' on ' + target if target else ''} (callback_status: {len(all_)} in all)")


def cmd_record(base, args):
    call_id, pairs = args[0], [a.split("=", 1) for a in args[1:]]
    deadline = time.monotonic() + 5
    seen = 0
    while True:
        now = datetime.datetime.now(datetime.timezone.utc)
        for t in (now, now - datetime.timedelta(hours=1)):
            end = t + datetime.timedelta(hours=1)  # the hour is named by its end: 01-24
            hh = end.hour if end.hour != 0 else 24
            day = t.strftime("%Y%m%d")
            code, body = call(base, f"/v2/data/historical/{day}/{hh:02d}")
            if code != 200:
                sys.exit(f"GET /v2/data/historical/{day}/{hh:02d}: HTTP {code} {body}")
            records = body.get("data", [])
            seen = max(seen, len(records))
            for r in records:
                if r.get("id") == call_id:
                    bad = [f"{k}={json.dumps(r.get(k))} (want {v})" for k, v in pairs if r.get(k) != value(v)]
                    if bad:
                        sys.exit(f"record {call_id}: " + ", ".join(bad) + f"; record: {json.dumps(r, sort_keys=True)}")
                    shown = ", ".join(f"{k}={json.dumps(r.get(k))}" for k, _ in pairs)
                    if "outcome" not in dict(pairs):
                        shown += f", outcome={json.dumps(r.get('outcome'))}"
                    print(f"record {call_id}: {shown}")
                    return
        if time.monotonic() > deadline:
            sys.exit(f"no call record with id {call_id!r} in the historical API ({seen} records in the hour)")
        time.sleep(0.3)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    base, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    {"callback": cmd_callback, "none": cmd_none, "record": cmd_record}[cmd](base, args)


if __name__ == "__main__":
    main()
