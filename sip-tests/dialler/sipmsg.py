#!/usr/bin/env python3
"""Query a SIPp -trace_msg log (every message SIPp sent or received, in full).

    sipmsg.py LOG count DIR WHAT [MIN [MAX]]
        the number of messages DIR (sent|received) whose first line starts with WHAT
        ("INVITE", "CANCEL", "SIP/2.0 486"); with MIN (and MAX), exit 1 unless in range
    sipmsg.py LOG header DIR WHAT HEADER [REGEX]
        the HEADER values of the first such message (a regex: exit 1 unless one matches)
    sipmsg.py LOG first-line DIR WHAT [REGEX]
        the first line of the first such message (with a regex: it must match)
    sipmsg.py LOG time DIR WHAT
        the time stamp of the first such message (YYYY-MM-DD HH:MM:SS.ffffff)
    sipmsg.py LOG per-user DIR WHAT
        how many such requests per Request-URI user part, as JSON

Prints what it found on one line.
"""
import json
import re
import sys

HEAD = re.compile(r"^-{20,} \d{4}-\d\d-\d\d")
KIND = re.compile(r"^\S+ message (sent|received)")


def messages(path):
    """-> [(direction, [lines], time stamp)]"""
    out, kind, body, when = [], None, None, None
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return []
    for line in lines + ["-" * 30 + " 0000-00-00"]:
        if HEAD.match(line):
            if kind and body:
                while body and not body[0].strip():
                    body.pop(0)
                if body:
                    out.append((kind, body, when))
            kind, body = None, None
            when = line.strip("- ").strip()
            continue
        m = KIND.match(line)
        if m and body is None:
            kind, body = m[1], []
            continue
        if body is not None:
            body.append(line.rstrip("\r"))
    return out


def select(path, direction, what):
    return [(b, t) for d, b, t in messages(path) if d == direction and b[0].startswith(what)]


def header(lines, name):
    vals = []
    for line in lines[1:]:
        if not line.strip():
            break
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            vals.append(v.strip())
    return vals


def main():
    path, cmd, direction, what, rest = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
    sel = select(path, direction, what)
    msgs = [b for b, _ in sel]
    if cmd == "count":
        n = len(msgs)
        print(f"{n} {what} {direction}")
        lo = int(rest[0]) if rest else 0
        hi = int(rest[1]) if len(rest) > 1 else 10**9
        sys.exit(0 if lo <= n <= hi else 1)
    if cmd == "per-user":
        users = {}
        for m in msgs:
            u = re.match(r"\S+ sips?:([^@;>]+)@", m[0])
            k = u[1] if u else "?"
            users[k] = users.get(k, 0) + 1
        print(json.dumps(users, sort_keys=True))
        return
    if not msgs:
        print(f"no {what} {direction}")
        sys.exit(1)
    if cmd == "header":
        vals = header(msgs[0], rest[0])
        print(f"{rest[0]}: {' | '.join(vals) if vals else '(absent)'}")
        if len(rest) > 1:
            sys.exit(0 if any(re.search(rest[1], v) for v in vals) else 1)
        return
    if cmd == "time":
        print(sel[0][1])
        return
    if cmd == "first-line":
        print(msgs[0][0])
        if rest:
            sys.exit(0 if re.search(rest[0], msgs[0][0]) else 1)
        return
    sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
