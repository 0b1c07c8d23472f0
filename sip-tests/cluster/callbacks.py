#!/usr/bin/env python3
"""Callbacks through a cluster of holdless nodes (suite-cluster.sh).

    callbacks.py register N FIRST API...
        registers N ASAP callbacks (numbers +1555071xxxx from FIRST on) through the
        widget billing-widget, the APIs taken in turn (http://IP:PORT); 8 at a time.
        Prints "registered N" and exits 1 if any registration was not Requested.
    callbacks.py wait N FIRST SECS API...
        waits up to SECS for the N callbacks to have a Successful call record (each
        callback's records read from the historical API of any of the nodes), then prints
        one JSON line: {"successful": ..., "records": ..., "per_callback": {...}} and
        exits 1 unless all N are Successful.
    callbacks.py invites PER_USER_JSON FIRST N MAX_TWICE
        the INVITEs the customer's phone got per number (dialler/sipmsg.py LOG per-user
        received INVITE, saved to a file): every number at least once, none more than
        twice, at most MAX_TWICE twice.

Organization demo, token demo-token (configs/examples/cluster/). Loopback only.
"""
import concurrent.futures
import datetime
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dialler"))
from records import call  # noqa: E402  (the same organization and token: demo)


def number(i):
    return "+1555071%04d" % i


def register(n, first, apis):
    def one(i):
        base = apis[i % len(apis)]
        st, body = call(base, "/api/widget/billing-widget/request_callback",
                        {"contact_number": number(first + i)})
        item = body.get("data", [{}])[0] if isinstance(body, dict) else {}
        return st, item.get("status"), base, body
    bad = []
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        for st, status, base, body in ex.map(one, range(n)):
            if st != 200 or status != "Requested":
                bad.append((base, st, str(body)[:200]))
    if bad:
        print("not registered: %d, e.g. %s" % (len(bad), bad[:3]))
        sys.exit(1)
    print("registered %d through %d nodes" % (n, len(apis)))


def records(apis):
    """Every record of the previous, current and next UTC hour, from the first node that
    answers (the store is shared: any node serves them)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    for base in apis:
        out, ok = {}, True
        for h in (-1, 0, 1):
            t = now + datetime.timedelta(hours=h)
            end = t + datetime.timedelta(hours=1)   # the hour is named by its end: 01-24
            hh = end.hour if end.hour != 0 else 24
            path = "/v2/data/historical/%s/%02d" % (t.strftime("%Y%m%d"), hh)
            st, body = call(base, path)
            if st != 200:
                ok = False
                break
            for r in body if isinstance(body, list) else body.get("data", []):
                out[r["id"]] = r
        if ok:
            return list(out.values())
    return []


def wait(n, first, secs, apis):
    want = {number(first + i) for i in range(n)}
    deadline = time.time() + secs
    while True:
        recs = [r for r in records(apis) if r.get("phoneNumber") in want]
        per = {}
        for r in recs:
            per.setdefault(r["phoneNumber"], []).append(r.get("outcome"))
        ok = {k for k, v in per.items() if "Successful" in v}
        if len(ok) == n or time.time() > deadline:
            break
        time.sleep(1)
    outcomes = {}
    for r in recs:
        outcomes[r.get("outcome")] = outcomes.get(r.get("outcome"), 0) + 1
    retried = {k: v for k, v in per.items() if len(v) > 1}
    print(json.dumps({"successful": len(ok), "of": n, "records": len(recs),
                      "outcomes": outcomes, "with_more_than_one_record": len(retried),
                      "example": dict(list(retried.items())[:3])}))
    sys.exit(0 if len(ok) == n else 1)


def invites(per_user, first, n, max_twice):
    per = json.load(open(per_user))
    nums = [number(first + i) for i in range(n)]
    never = [x for x in nums if per.get(x, 0) == 0]
    twice = [x for x in nums if per.get(x, 0) == 2]
    more = [x for x in nums if per.get(x, 0) > 2]
    print(json.dumps({"numbers": n, "invited": sum(1 for x in nums if per.get(x, 0)),
                      "twice": len(twice), "more": len(more), "never": len(never)}))
    sys.exit(0 if not never and not more and len(twice) <= max_twice else 1)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "register":
        register(int(args[0]), int(args[1]), args[2:])
    elif cmd == "wait":
        wait(int(args[0]), int(args[1]), float(args[2]), args[3:])
    elif cmd == "invites":
        invites(args[0], int(args[1]), int(args[2]), int(args[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
