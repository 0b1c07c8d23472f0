#!/usr/bin/env python3
"""Record and callback checks for the dialler suite (historical API + Scheduler API).

    records.py BASE records NUMBER COUNT [CHECK]... [--wait SECS]
        the call records whose phoneNumber is NUMBER (the previous, current and next UTC
        hour, merged, sorted by retryAttempt then endedAt) are exactly COUNT (waits up to
        --wait s, default 8, for them), and each CHECK holds. A CHECK is
            I:FIELD=VALUE    record I's FIELD equals the JSON VALUE (true, 0, "x", null)
            I:FIELD>N        a number above N
            I:FIELD!=VALUE   differs from VALUE (e.g. I:customerDelay!=null)
            I:FIELD=@J.OTHER equals record J's OTHER
            I:FIELD~TEXT     its JSON text contains TEXT
        --where FIELD=VALUE: only the records whose FIELD is that JSON VALUE count
    records.py BASE status NUMBER STATUS[,STATUS...]
        callback_status shows one callback for NUMBER, whose status is one of these
        ("none": or no callback at all)
    records.py BASE request WIDGET NUMBER
        registers an ASAP callback (request_callback); prints its id

BASE is http://127.0.0.1:PORT; the token is demo-token (organization demo). Prints one line
saying what was found; exits 1 (saying why) when a check fails.
"""
import datetime
import json
import re
import sys
import time
import urllib.error
import urllib.request

TOKEN = "demo-token"
ORG = "demo"
SHOWN = ("id", "outcome", "retryAttempt", "originalId", "hasRetry")


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
    except OSError as e:
        return 0, str(e)


def hour_records(base):
    """Every record of the previous, current and next hour (by id: an hour boundary may be
    crossed while the suite runs)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    out = {}
    for d in (-1, 0, 1):
        t = now + datetime.timedelta(hours=d)
        end = t + datetime.timedelta(hours=1)  # the hour is named by its end: 01-24
        hh = end.hour if end.hour != 0 else 24
        day = t.strftime("%Y%m%d")
        code, body = call(base, f"/v2/data/historical/{day}/{hh:02d}")
        if code != 200:
            sys.exit(f"GET /v2/data/historical/{day}/{hh:02d}: HTTP {code} {body}")
        for r in body.get("data", []):
            out[r.get("id")] = r
    return list(out.values())


def value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def check_one(recs, spec):
    m = re.fullmatch(r"(\d+):(\w+)(!=|=|>|~)(.*)", spec)
    if not m:
        sys.exit(f"bad check {spec!r}")
    i, field, op, want = int(m[1]), m[2], m[3], m[4]
    if i >= len(recs):
        return f"{spec}: no record {i}"
    got = recs[i].get(field)
    if op == "=" and want.startswith("@"):
        j, other = want[1:].split(".", 1)
        want_v = recs[int(j)].get(other)
        return None if got == want_v else f"{spec}: {field}={json.dumps(got)}, record {j}'s {other}={json.dumps(want_v)}"
    if op == "=":
        return None if got == value(want) else f"{spec}: {field}={json.dumps(got)}"
    if op == "!=":
        return None if got != value(want) else f"{spec}: {field}={json.dumps(got)}"
    if op == ">":
        ok = isinstance(got, (int, float)) and not isinstance(got, bool) and got > float(want)
        return None if ok else f"{spec}: {field}={json.dumps(got)}"
    return None if want in json.dumps(got) else f"{spec}: {field}={json.dumps(got)}"


def cmd_records(base, args):
    wait = 8.0
    if "--wait" in args:
        k = args.index("--wait")
        wait = float(args[k + 1])
        args = args[:k] + args[k + 2:]
    where = []
    while "--where" in args:
        k = args.index("--where")
        where.append(args[k + 1].split("=", 1))
        args = args[:k] + args[k + 2:]
    number, count, checks = args[0], int(args[1]), args[2:]
    deadline = time.monotonic() + wait
    while True:
        recs = [r for r in hour_records(base) if r.get("phoneNumber") == number
                and all(r.get(f) == value(v) for f, v in where)]
        recs.sort(key=lambda r: (r.get("retryAttempt") or 0, r.get("endedAt") or ""))
        if len(recs) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    brief = "; ".join(", ".join(f"{k}={json.dumps(r.get(k))}" for k in SHOWN) for r in recs)
    if len(recs) != count:
        cond = "".join(f" with {f}={v}" for f, v in where)
        sys.exit(f"want {count} record(s){cond} for {number}, found {len(recs)}: "
                 + json.dumps(recs, sort_keys=True))
    bad = [b for b in (check_one(recs, c) for c in checks) if b]
    if bad:
        sys.exit("; ".join(bad) + " -- records: " + json.dumps(recs, sort_keys=True))
    shown = ", ".join(c for c in checks)
    print(f"{count} record(s) for {number} [{brief}]{' ok: ' + shown if shown else ''}")


def cmd_status(base, args):
    number, wants = args[0], args[1].split(",")
    code, body = call(base, f"/api/organization/{ORG}/callback_status", {"contact_number": number})
    if code != 200:
        sys.exit(f"callback_status {number}: HTTP {code} {body}")
    data = body.get("data", [])
    if not data and "none" in wants:
        print(f"no active callback for {number}")
        return
    if len(data) != 1 or data[0].get("status") not in wants:
        sys.exit(f"want one callback for {number} with status in {wants}: {json.dumps(data)}")
    c = data[0]
    print(f"callback {c.get('call_request_id')} for {number}: status {c.get('status')}, "
          f"estimated_for {c.get('estimated_for')}")


def cmd_request(base, args):
    widget, number = args
    code, body = call(base, f"/api/widget/{widget}/request_callback", {"contact_number": number})
    if code != 200:
        sys.exit(f"request_callback {widget} {number}: HTTP {code} {body}")
    print(body["data"][0]["callback_request_id"])


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    base, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    {"records": cmd_records, "status": cmd_status, "request": cmd_request}[cmd](base, args)


if __name__ == "__main__":
    main()
