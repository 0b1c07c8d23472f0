#!/usr/bin/env python3
"""Helpers of soak.sh (standard library only).

  csv OUT N                          SIPp injection file: N callers, unique numbers
  api BASE SECS REG POLL BAD OUT.json
                                     for SECS: REG registrations/s (widget "agentfirst-w",
                                     unique numbers), POLL status reads/s (widget status,
                                     organization widget_status, callback_status), BAD
                                     malformed requests/s (broken JSON, wrong types, missing
                                     fields, unknown widget, no token); counts every status
  garbage HOST PORT SECS RATE OUT.json
                                     for SECS: RATE malformed SIP datagrams/s from 127.0.0.8
                                     (random bytes, truncated and mangled requests); counts
                                     the answers (400s; nothing else is expected)
  mon OUT.csv STOPFILE HTTP_PORT PID every 2 s: VmRSS, open fds, holdless gauges and totals
  verdict WORK WARMUP_S RSS_BOUND_MB FD0
                                     reads the run's files and prints one PASS/FAIL line per
                                     check and the figures; exit 1 on any FAIL
"""
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

TOKEN = "soak-token"
ORG = "soak"
GAUGES = [
    "holdless_calls_active",
    "holdless_sip_transactions_active",
    "holdless_media_sessions_active",
    "holdless_callbacks_in_progress",
    "holdless_callbacks_pending",
]
TOTALS = [
    "holdless_callback_attempts_total",
    "holdless_callback_registrations_total",
    "holdless_rtp_forwarded_total",
    "holdless_sip_dropped_total",
    "holdless_sip_rejected_total",
]


def make_csv(out, n):
    with open(out, "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(int(n)):
            f.write(f"+1555{6000000 + i:07d};{(b'SOAK-%06d' % i).hex()};soak\n")


def http(base, method, path, body=None, token=TOKEN, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code
    except Exception:
        return 0  # no answer (timeout, refused)


def paced(secs, rate, fn, counts, lock):
    """Calls fn(k) rate times a second for secs, counting the statuses it returns."""
    if rate <= 0:
        return
    t0 = time.monotonic()
    k = 0
    while True:
        due = t0 + k / rate
        now = time.monotonic()
        if due - t0 >= secs:
            return
        if due > now:
            time.sleep(due - now)
        code = fn(k)
        with lock:
            counts[str(code)] = counts.get(str(code), 0) + 1
        k += 1


def api(base, secs, reg, poll, bad, out):
    secs, reg, poll, bad = float(secs), float(reg), float(poll), float(bad)
    lock = threading.Lock()
    counts = {"register": {}, "poll": {}, "bad": {}}

    def register(k):
        number = f"+1555{7000000 + k:07d}"
        return http(base, "POST", "/api/widget/agentfirst-w/request_callback",
                    {"contact_number": number, "user_data": {"soak": k}, "channel": "soak"})

    def poll_one(k):
        m = k % 3
        if m == 0:
            return http(base, "GET", "/api/widget/agentfirst-w")
        if m == 1:
            return http(base, "GET", f"/api/organization/{ORG}/widget_status")
        return http(base, "POST", f"/api/organization/{ORG}/callback_status",
                    {"contact_number": f"+1555{7000000 + k % 500:07d}"})

    bad_requests = [
        lambda: http(base, "POST", "/api/widget/agentfirst-w/request_callback", raw=b"{not json"),
        lambda: http(base, "POST", "/api/widget/agentfirst-w/request_callback",
                     {"contact_number": 12345}),
        lambda: http(base, "POST", "/api/widget/agentfirst-w/request_callback", {}),
        lambda: http(base, "POST", "/api/widget/agentfirst-w/request_callback",
                     {"contact_number": "call me maybe"}),
        lambda: http(base, "GET", "/api/widget/no-such-widget"),
        lambda: http(base, "GET", f"/api/organization/{ORG}/widget_status", token=None),
        lambda: http(base, "POST", f"/api/organization/{ORG}/callback_status",
                     raw=b"\x00\xff" * 40),
        lambda: http(base, "POST", f"/api/organization/{ORG}/cancel_callback",
                     {"callback_id": "no-such-callback"}),
    ]

    def bad_one(k):
        return bad_requests[k % len(bad_requests)]()

    threads = []
    for name, rate, fn in (("register", reg, register), ("poll", poll, poll_one),
                           ("bad", bad, bad_one)):
        # Several workers per kind share the rate, so one slow answer does not stall it.
        workers = max(1, min(8, int(rate // 20) + 1))
        for w in range(workers):
            def run(fn=fn, name=name, w=w, workers=workers, rate=rate):
                paced(secs, rate / workers, lambda k: fn(k * workers + w), counts[name], lock)
            t = threading.Thread(target=run, daemon=True)
            t.start()
            threads.append(t)
    for t in threads:
        t.join()
    json.dump(counts, open(out, "w"))
    print("api:", json.dumps(counts))


def garbage_messages(rng, k):
    via = f"Via: SIP/2.0/UDP 127.0.0.8:5999;rport;branch=z9hG4bKsoak{k}\r\n"
    good = ("OPTIONS sip:127.0.0.1 SIP/2.0\r\n" + via +
            f"Max-Forwards: 70\r\nFrom: <sip:soak@127.0.0.8>;tag={k}\r\nTo: <sip:127.0.0.1>\r\n"
            f"Call-ID: soak-{k}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    kinds = [
        lambda: bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 600))),
        # Cut before Call-ID: a request missing mandatory headers (a cut further on can
        # leave a complete request, which UDP allows without Content-Length).
        lambda: good[: rng.randint(10, good.index("Call-ID"))].encode(),
        lambda: good.replace("CSeq: 1 OPTIONS", "CSeq: one OPTIONS").encode(),
        lambda: good.replace("Content-Length: 0", "Content-Length: 99999").encode(),
        lambda: good.replace("SIP/2.0\r\n", "SIP/7.0\r\n", 1).encode(),
        lambda: good.replace("Max-Forwards: 70", "Max-Forwards: " + "9" * 40).encode(),
        lambda: ("INVITE sip:+15550001000@127.0.0.1 SIP/2.0\r\n" + via +
                 f"From: <sip:x@127.0.0.8>;tag={k}\r\nTo: <sip:+15550001000@127.0.0.1>\r\n"
                 f"Call-ID: soak-inv-{k}\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
                 "Content-Length: 20\r\n\r\nv=0\r\nthis is no sdp!").encode(),
        lambda: good.replace("To: <sip:127.0.0.1>", "To <sip:127.0.0.1>").encode(),
    ]
    return kinds[k % len(kinds)]()


def garbage(host, port, secs, rate, out):
    secs, rate = float(secs), float(rate)
    rng = random.Random(4711)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.8", 0))
    s.setblocking(False)
    sent, answers = 0, {}
    t0 = time.monotonic()
    k = 0
    while time.monotonic() - t0 < secs:
        due = t0 + k / rate
        while time.monotonic() < due:
            try:
                data = s.recv(70000)
                first = data.split(b"\r\n", 1)[0].decode(errors="replace")
                code = first.split(" ")[1] if first.startswith("SIP/2.0 ") else "other"
                answers[code] = answers.get(code, 0) + 1
            except BlockingIOError:
                time.sleep(0.002)
        try:
            s.sendto(garbage_messages(rng, k), (host, int(port)))
            sent += 1
        except OSError:
            pass
        k += 1
    time.sleep(1)
    while True:
        try:
            data = s.recv(70000)
            first = data.split(b"\r\n", 1)[0].decode(errors="replace")
            code = first.split(" ")[1] if first.startswith("SIP/2.0 ") else "other"
            answers[code] = answers.get(code, 0) + 1
        except BlockingIOError:
            break
    r = {"sent": sent, "answers": answers}
    json.dump(r, open(out, "w"))
    print("garbage:", json.dumps(r))


def metrics(port):
    out = {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except Exception:
        return None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        base = name.split("{", 1)[0]
        try:
            out[base] = out.get(base, 0) + float(value)
            out[name] = float(value)
        except ValueError:
            pass
    return out


def cpu_ticks(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    except (OSError, IndexError, ValueError):
        return 0


def proc(pid):
    rss, fds = 0, 0
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        pass
    return rss, fds


def mon(out, stopfile, port, pid):
    t0 = time.monotonic()
    with open(out, "w") as f:
        f.write("t,rss_kb,fds,cpu_ticks," + ",".join(GAUGES + TOTALS) + "\n")
        while not os.path.exists(stopfile):
            m = metrics(port) or {}
            rss, fds = proc(pid)
            row = [f"{time.monotonic() - t0:.1f}", str(rss), str(fds), str(cpu_ticks(pid))]
            row += [f"{m.get(g, 0):.0f}" for g in GAUGES + TOTALS]
            f.write(",".join(row) + "\n")
            f.flush()
            time.sleep(2)


def sipp_failed(path):
    """Failed calls and successful calls from a SIPp -trace_stat CSV (last line)."""
    try:
        lines = [l for l in open(path) if l.strip()]
    except OSError:
        return None, None
    if len(lines) < 2:
        return None, None
    head = lines[0].strip().split(";")
    last = lines[-1].strip().split(";")
    col = {h: i for i, h in enumerate(head)}
    get = lambda k: int(last[col[k]]) if k in col and col[k] < len(last) else None
    return get("FailedCall(C)"), get("SuccessfulCall(C)")


def verdict(work, warmup, bound_mb, fd0):
    warmup, bound_mb, fd0 = float(warmup), float(bound_mb), int(fd0)
    fails = 0

    def line(ok, case, detail):
        nonlocal fails
        fails += 0 if ok else 1
        print(f"{'PASS' if ok else 'FAIL'} {case} {detail}")

    rows = []
    with open(os.path.join(work, "mon.csv")) as f:
        head = f.readline().strip().split(",")
        for l in f:
            v = l.strip().split(",")
            if len(v) == len(head):
                rows.append(dict(zip(head, map(float, v))))
    load_end = float(open(os.path.join(work, "load_end")).read())
    during = [r for r in rows if r["t"] <= load_end]
    after_warm = [r for r in during if r["t"] >= warmup]
    if after_warm:
        base = after_warm[0]["rss_kb"]
        peak = max(r["rss_kb"] for r in after_warm)
        end = after_warm[-1]["rss_kb"]
        grew = (end - base) / 1024
        line(grew <= bound_mb, "rss",
             f"RSS {base / 1024:.1f} MB after {warmup:.0f} s warm-up, {end / 1024:.1f} MB at the end "
             f"of the load (peak {peak / 1024:.1f}): grew {grew:+.1f} MB (bound {bound_mb:.0f})")
    else:
        line(False, "rss", "no samples after the warm-up")
    final = json.load(open(os.path.join(work, "final.json")))
    fds = int(final["fds"])
    line(fds <= fd0 + 2, "fds", f"open fds {fd0} before the load, {fds} after the drain")
    for g in GAUGES:
        v = final.get(g)
        line(v == 0, g.replace("holdless_", ""), f"{v:.0f} after the drain (want 0)" if v is not None else "missing")
    for name in ("bridge-uac", "bridge-cc", "menu-uac", "customer", "agent", "agentfirst-agent",
                 "agentfirst-customer"):
        failed, ok = sipp_failed(os.path.join(work, f"{name}_stat.csv"))
        line(failed == 0 and (ok or 0) > 0, f"sipp-{name}", f"{ok} calls completed, {failed} failed")
    api_counts = json.load(open(os.path.join(work, "api.json")))
    five = {k: {c: n for c, n in v.items() if c.startswith("5") or c == "0"} for k, v in api_counts.items()}
    n5 = sum(sum(v.values()) for v in five.values())
    line(n5 == 0, "api-5xx", f"{n5} answers 5xx or none ({json.dumps(api_counts)})")
    bad = api_counts.get("bad", {})
    line(all(c.startswith("4") for c in bad), "api-bad-input",
         f"malformed requests answered {json.dumps(bad)} (all 4xx wanted)")
    g = json.load(open(os.path.join(work, "garbage.json")))
    # A final answer to malformed input is a 4xx (or 505 for the wrong version); a 1xx
    # may come first (100 Trying to an INVITE); nothing else.
    odd = {c: n for c, n in g["answers"].items()
           if not (c.startswith("4") or c.startswith("1") or c == "505")}
    dropped = final.get("holdless_sip_dropped_total", 0)
    line(not odd, "malformed-sip",
         f"{g['sent']} sent, answers {json.dumps(g['answers'])}, the rest dropped and counted "
         f"(holdless_sip_dropped_total {dropped:.0f})")
    att = {k: v for k, v in final.items() if k.startswith("holdless_callback_attempts_total{")}
    regs = {k.split("{", 1)[1].rstrip("}"): v for k, v in final.items()
            if k.startswith("holdless_callback_registrations_total{")}
    total_att = sum(att.values())
    good = sum(v for k, v in att.items() if 'result="completed"' in k or "successful" in k)
    line(total_att > 0 and good == total_att, "callbacks",
         f"registrations {json.dumps(regs)}; {total_att:.0f} attempts: {json.dumps(att)}")
    # Every menu caller pressed 1 and heard the goodbye: each must have registered (a key
    # holdless missed would end in the same goodbye and BYE, and SIPp would count it ok).
    _, menu_ok = sipp_failed(os.path.join(work, "menu-uac_stat.csv"))
    menu_regs = sum(v for k, v in regs.items() if 'call_target="billing"' in k and 'outcome="registered"' in k)
    line(menu_ok is not None and menu_regs == menu_ok, "menu-registrations",
         f"{menu_ok} menu callers completed, {menu_regs:.0f} callbacks registered through the menu")
    if len(during) > 1 and "cpu_ticks" in during[0]:
        hz = os.sysconf("SC_CLK_TCK")
        span = during[-1]["t"] - during[0]["t"]
        cpu = (during[-1]["cpu_ticks"] - during[0]["cpu_ticks"]) / hz
        calls = max(r["holdless_calls_active"] for r in during)
        print(f"# holdless CPU over the load: {100 * cpu / span:.0f} % of one core on average; "
              f"at most {calls:.0f} calls at once")
    print(f"# {len(rows)} samples of RSS, fds and gauges over {load_end:.0f} s of load")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"csv": make_csv, "api": api, "garbage": garbage, "mon": mon, "verdict": verdict}[cmd](*args)
