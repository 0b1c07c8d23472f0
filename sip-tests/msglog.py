#!/usr/bin/env python3
"""Read a SIPp -trace_msg log and check retransmission behaviour.

usage:
  msglog.py list LOG
      every message: ms since the first one, sent/recv, first line
  msglog.py quiet-after-ack LOG CODE GRACE_MS
      at least one CODE response and one ACK; no CODE response later than
      GRACE_MS after the first ACK (the server must stop Timer G on ACK)
  msglog.py silent LOG
      at least one message sent and NOTHING received (an ACL drop: SIPp runs
      with -default_behaviors none, so a response it did not expect does not
      fail the call; this check is what fails it)
  msglog.py timer-g LOG CODE MIN MAX SPAN_MS
      MIN..MAX CODE responses in total (first one + retransmissions), and the
      last one no later than SPAN_MS after the first (Timer H stops them)

Exit status 0 when the check holds, 1 otherwise; a one-line verdict and the
arrival times are printed either way.
"""
import re
import sys
from datetime import datetime

HEAD = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*$")
KIND = re.compile(r"^\S+ message (sent|received)")


CALL_ID = re.compile(r"^(?:Call-ID|i)\s*:\s*(\S+)", re.I)


def parse(path):
    """-> list of (seconds, 'sent'|'received', first SIP line), for the
    messages of the Call-ID of the first message sent. (Earlier SIPp runs may
    have used the same local port: their stray messages are left out.)"""
    out, when, kind, first = [], None, None, None
    with open(path, errors="replace") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        m = HEAD.match(line)
        if m:
            when = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            k = KIND.match(lines[i + 1]) if i + 1 < len(lines) else None
            kind, first = (k.group(1) if k else None), None
            continue
        if kind and first is None and line.strip() and not KIND.match(line):
            first = line.strip()
        c = CALL_ID.match(line)
        if kind and first and c:
            out.append((when, kind, first, c.group(1)))
            kind = None
    ours = next((c for _, k, _, c in out if k == "sent"), None)
    return [(t, k, f) for t, k, f, c in out if c == ours]


def status_of(first):
    m = re.match(r"SIP/2\.0 (\d{3})", first)
    return m.group(1) if m else None


def list_log(msgs):
    t0 = msgs[0][0] if msgs else 0
    for t, kind, first in msgs:
        print(f"{(t - t0) * 1000:9.1f} ms  {kind:8}  {first}")
    return 0


def quiet_after_ack(msgs, code, grace_ms):
    resp = [t for t, k, f in msgs if k == "received" and status_of(f) == code]
    acks = [t for t, k, f in msgs if k == "sent" and f.startswith("ACK ")]
    if not resp or not acks:
        print(f"FAIL-DETAIL: {len(resp)} x {code} received, {len(acks)} ACK sent (need >= 1 each)")
        return 1
    late = [t for t in resp if t > acks[0] + grace_ms / 1000]
    print(f"{len(resp)} x {code} received, first ACK at +{(acks[0] - resp[0]) * 1000:.0f} ms, "
          f"{len(late)} x {code} more than {grace_ms} ms after the ACK")
    return 1 if late else 0


def silent(msgs):
    sent = [f for _, k, f in msgs if k == "sent"]
    got = [f for _, k, f in msgs if k == "received"]
    print(f"{len(sent)} sent, {len(got)} received" + (f": {got[0]}" if got else ""))
    if not sent:
        print("FAIL-DETAIL: nothing was sent (is the log empty?)")
    return 0 if sent and not got else 1


def timer_g(msgs, code, lo, hi, span_ms):
    resp = [t for t, k, f in msgs if k == "received" and status_of(f) == code]
    if not resp:
        print(f"FAIL-DETAIL: no {code} received")
        return 1
    offs = [round((t - resp[0]) * 1000) for t in resp]
    gaps = [b - a for a, b in zip(offs, offs[1:])]
    span = offs[-1]
    print(f"{len(resp)} x {code} (= 1 + {len(resp) - 1} retransmissions) at +ms {offs}, "
          f"gaps {gaps}, last at +{span} ms")
    ok = lo <= len(resp) <= hi and span <= span_ms
    if not ok:
        print(f"FAIL-DETAIL: expected {lo}..{hi} x {code}, the last no later than +{span_ms} ms")
    return 0 if ok else 1


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, msgs = argv[1], parse(argv[2])
    if cmd == "list":
        return list_log(msgs)
    if cmd == "quiet-after-ack" and len(argv) == 5:
        return quiet_after_ack(msgs, argv[3], int(argv[4]))
    if cmd == "silent" and len(argv) == 3:
        return silent(msgs)
    if cmd == "timer-g" and len(argv) == 7:
        return timer_g(msgs, argv[3], int(argv[4]), int(argv[5]), int(argv[6]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
