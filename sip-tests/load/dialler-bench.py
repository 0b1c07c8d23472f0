#!/usr/bin/env python3
"""Helpers of dialler-bench.sh (standard library only; reuses bridge-bench.py's).

  pending METRICS_FILE               pending callbacks in a /metrics dump
  mon OUT.csv MAX_S STOPFILE HTTP_PORT PID
                                     every 0.5 s: attempts by result, queue gauges, calls,
                                     RTP forwarded, holdless CPU ticks, VmRSS, VmHWM
  wait HTTP_PORT N all|completed MAX_S
                                     until N attempts are recorded (or completed); exit 1 on timeout
  step DIR PACING CALLS BACKLOG CALL_SECS
                                     summarise one step -> DIR/row.json, one line
  table WORK                         the tables -> WORK/report.md
"""
import csv
import glob
import importlib.util
import json
import os
import re
import statistics
import sys
import time

_spec = importlib.util.spec_from_file_location(
    "bridge_bench", os.path.join(os.path.dirname(os.path.abspath(__file__)), "bridge-bench.py"))
bb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bb)
f0 = bb.f0
HZ = os.sysconf("SC_CLK_TCK")
ATT = "holdless_callback_attempts_total"


def mfile(path):
    m = {}
    if os.path.exists(path):
        for line in open(path):
            if line and not line.startswith("#"):
                k, _, v = line.strip().rpartition(" ")
                try:
                    m[k] = float(v)
                except ValueError:
                    pass
    return m


def attempts(m):
    out = {}
    for k, v in m.items():
        if k.split("{")[0] == ATT and v:
            res = re.sub(r'.*result="([^"]*)".*', r"\1", k)
            out[res] = out.get(res, 0) + int(v)
    return out


def pending(path):
    print(int(bb.msum(mfile(path), "holdless_callbacks_pending")))


def ticks(pid):
    try:
        s = open(f"/proc/{pid}/stat").read()
        f = s[s.rindex(")") + 2:].split()
        return int(f[11]) + int(f[12])
    except (OSError, ValueError, IndexError):
        return -1


COLS = ["t", "completed", "other_results", "pending", "in_progress", "calls_active", "rtp_forwarded",
        "cpu_ticks", "vmrss_kb", "vmhwm_kb"]


def mon(out, maxs, stopfile, port, pid):
    t0 = time.monotonic()
    nxt = t0
    with open(out, "w") as f:
        f.write(",".join(COLS) + "\n")
        while True:
            now = time.monotonic()
            try:
                m = bb.metrics(port)
            except Exception:
                m = {}
            a = attempts(m)
            row = [f"{now - t0:.2f}", a.get("completed", 0), sum(v for k, v in a.items() if k != "completed"),
                   int(bb.msum(m, "holdless_callbacks_pending")), int(bb.msum(m, "holdless_callbacks_in_progress")),
                   int(m.get("holdless_calls_active", -1)), int(bb.msum(m, "holdless_rtp_forwarded_total")),
                   ticks(pid), bb.status_kb(pid, "VmRSS"), bb.status_kb(pid, "VmHWM")]
            f.write(",".join(str(x) for x in row) + "\n")
            f.flush()
            if now - t0 >= maxs or os.path.exists(stopfile):
                break
            nxt += 0.5
            time.sleep(max(0, nxt - time.monotonic()))


def wait(port, n, mode, maxs):
    n, maxs = int(n), float(maxs)
    t0 = time.monotonic()
    while time.monotonic() - t0 < maxs:
        try:
            a = attempts(bb.metrics(port))
        except Exception:
            a = {}
        got = a.get("completed", 0) if mode == "completed" else sum(a.values())
        if got >= n:
            return 0
        time.sleep(0.25)
    return 1


def kv(path):
    out = {}
    if os.path.exists(path):
        for line in open(path):
            p = line.split()
            if len(p) == 2:
                try:
                    out[p[0]] = int(p[1])
                except ValueError:
                    pass
    return out


def status(path):
    out = {}
    if os.path.exists(path):
        for line in open(path):
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])
    return out


def rtd(d, prefix, which):
    xs = []
    for fn in glob.glob(os.path.join(d, f"*{prefix}*_rtt.csv")) + glob.glob(os.path.join(d, "*_rtt.csv")):
        for line in open(fn):
            p = line.strip().split(";")
            if len(p) >= 3 and p[2].strip() in (str(which), f"rtd{which}"):
                try:
                    xs.append(float(p[1]))
                except ValueError:
                    pass
        break
    if not xs:
        return None
    xs.sort()
    q = lambda p: xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
    return [q(50), q(99), xs[-1]]


def first_at(ms, key, value):
    return next((x for x in ms if x[key] >= value), None)


def step(d, pacing, calls, backlog, call_secs):
    pacing, calls, backlog, call_secs = int(pacing), int(calls), int(backlog), int(call_secs)
    r = dict(pacing=pacing, calls=calls, backlog=backlog, call_secs=call_secs, name=os.path.basename(d))
    st = kv(os.path.join(d, "step.txt"))
    r.update({k: st[k] for k in ("registration_s", "rss_before_kb", "rss_pending_kb", "idle_cpu_ticks_5s", "wait_rc")
              if k in st})
    r["idle_cpu_pct"] = st.get("idle_cpu_ticks_5s", 0) * 100.0 / HZ / 5
    reg = mfile(os.path.join(d, "metrics-registered.txt"))
    r["registered"] = int(bb.msum(reg, "holdless_callbacks_pending"))
    end = mfile(os.path.join(d, "metrics-end.txt"))
    r["attempts"] = attempts(end)
    r["completed"] = r["attempts"].get("completed", 0)
    r["failed_attempts"] = sum(v for k, v in r["attempts"].items() if k != "completed")
    r["pending_end"] = int(bb.msum(end, "holdless_callbacks_pending"))
    r["cust"] = bb.sipp_summary(d, "cust")
    r["agent"] = bb.sipp_summary(d, "agent")
    for side in ("cust", "agent"):
        p = os.path.join(d, f"{side}.rc")
        r[f"{side}_rc"] = open(p).read().strip() if os.path.exists(p) else "?"
    r["call_len"] = rtd(d, "cust", 1)
    r["party"] = bb.kv_line(os.path.join(d, "party.log"), "summary:")
    sx = status(os.path.join(d, "status-end.txt"))
    r["hwm_kb"], r["rss_end_kb"] = sx.get("VmHWM"), sx.get("VmRSS")
    ms = []
    mp = os.path.join(d, "metrics.csv")
    if os.path.exists(mp):
        with open(mp) as f:
            ms = [{k: float(v) for k, v in x.items()} for x in csv.DictReader(f)]
        ms = [x for x in ms if x["cpu_ticks"] >= 0]
    if ms:
        r["rss_dial_start_kb"] = ms[0]["vmrss_kb"]
        r["hwm_kb"] = r["hwm_kb"] or max(x["vmhwm_kb"] for x in ms)
        r["peak_in_progress"] = max(x["in_progress"] for x in ms)
        r["peak_calls"] = max(x["calls_active"] for x in ms)
        # steady state: from the 25 % to the 85 % completion mark
        a, b = first_at(ms, "completed", 0.25 * calls), first_at(ms, "completed", 0.85 * calls)
        if a and b and b["t"] > a["t"]:
            dc = b["completed"] - a["completed"]
            dt = b["t"] - a["t"]
            r["window"] = [a["t"], b["t"]]
            r["rate"] = dc / dt
            r["cpu_pct"] = (b["cpu_ticks"] - a["cpu_ticks"]) * 100.0 / HZ / dt
            r["us_per_cb"] = (b["cpu_ticks"] - a["cpu_ticks"]) / HZ * 1e6 / dc if dc else None
            pk = b["rtp_forwarded"] - a["rtp_forwarded"]
            r["pps"] = pk / dt
            r["us_per_pkt"] = (b["cpu_ticks"] - a["cpu_ticks"]) / HZ * 1e6 / pk if pk else None
            inw = [x for x in ms if a["t"] <= x["t"] <= b["t"]]
            r["in_progress_avg"] = statistics.mean(x["in_progress"] for x in inw)
        last = first_at(ms, "completed", r["completed"]) if r["completed"] else None
        if last and last["t"] > 0:
            r["rate_overall"] = r["completed"] / last["t"]
        r["cpu_total_s"] = (ms[-1]["cpu_ticks"] - ms[0]["cpu_ticks"]) / HZ
    rows = bb.cpu_rows(d)
    if rows and r.get("window"):
        lo, hi = r["window"]
        w = [x for x in rows if lo < x["t"] <= hi + 0.05] or rows
        r["box_busy"] = statistics.mean(200 - x["sys_idle"] for x in w)
        ours = [c for c in rows[0] if c != "t" and not c.startswith("sys_")]
        r["others_cpu"] = {c: round(statistics.mean(x[c] for x in w)) for c in ours if c != "holdless"}
        r["noise"] = r["box_busy"] - statistics.mean(sum(x[c] for c in ours) for x in w)
    p = r["party"]
    if p:
        n = p.get("cust_started") or 0
        # frames each party sent per call; an agent talks ~CALL_SECS (mean) at 50 frames/s
        r["cust_frames"] = p["tx_cust"] / n if n else None
        r["agent_frames"] = p["tx_agent"] / p["agent_started"] if p.get("agent_started") else None
        r["full_media"] = bool(r["agent_frames"] and r["agent_frames"] >= 0.9 * call_secs * 50)
        r["c2a_pct"] = 100.0 * p["c2a_rx"] / p["c2a_expected"] if p.get("c2a_expected") else None
        r["a2c_pct"] = 100.0 * p["a2c_rx"] / p["a2c_expected"] if p.get("a2c_expected") else None
    u = bb.udp_snmp(d)
    if u:
        r["udp_rcvbuf_drops"] = u[4]
    try:
        r["log_warnings"] = int(open(os.path.join(d, "log-warnings.txt")).read().split()[0])
    except (OSError, ValueError, IndexError):
        r["log_warnings"] = None
    audio_ok = bool(p) and (r.get("c2a_pct") or 0) >= 99.9 and (r.get("a2c_pct") or 0) >= 99.9
    if backlog:
        r["clean"] = r["completed"] >= calls and r["failed_attempts"] == 0
    else:
        r["clean"] = (r["completed"] == calls and r["failed_attempts"] == 0
                      and r["cust"].get("failed", 1) == 0 and r["agent"].get("failed", 1) == 0
                      and bool(p) and p.get("cust_bridged", 0) >= calls and p.get("agent_started", 0) >= calls
                      and p.get("cust_no_agent_audio", 1) == 0 and p.get("agent_no_cust_audio", 1) == 0 and audio_ok)
    json.dump(r, open(os.path.join(d, "row.json"), "w"), indent=1)
    print(line_of(r))


def line_of(r):
    p = r.get("party") or {}
    return (f"{r['name']}: pacing={r['pacing']} calls={r['calls']} registered={r['registered']} "
            f"completed={r['completed']} attempts={r['attempts']} rate={f0(r.get('rate'), '{:.1f}')}/s "
            f"(overall {f0(r.get('rate_overall'), '{:.1f}')}) in_progress~{f0(r.get('in_progress_avg'))} "
            f"hl_cpu={f0(r.get('cpu_pct'))}% us/cb={f0(r.get('us_per_cb'))} us/pkt={f0(r.get('us_per_pkt'), '{:.1f}')} "
            f"pps={f0(r.get('pps'))} hwm={f0((r.get('hwm_kb') or 0) / 1024, '{:.1f}')}MB "
            f"rss_pending={f0((r.get('rss_pending_kb') or 0) / 1024, '{:.1f}')}MB idle_cpu={r.get('idle_cpu_pct', 0):.1f}% "
            f"sipp_cust={r['cust'].get('ok')}/{r['cust'].get('failed')} ({r['cust'].get('retrans')}) "
            f"sipp_agent={r['agent'].get('ok')}/{r['agent'].get('failed')} ({r['agent'].get('retrans')}) "
            f"audio c2a={f0(r.get('c2a_pct'), '{:.2f}')}% a2c={f0(r.get('a2c_pct'), '{:.2f}')}% "
            f"lat c2a={f0(p.get('c2a_p50_us'))}/{f0(p.get('c2a_p99_us'))}us a2c={f0(p.get('a2c_p50_us'))}/{f0(p.get('a2c_p99_us'))}us "
            f"key->agent={f0(p.get('key_to_agent_p50_ms'))}/{f0(p.get('key_to_agent_p99_ms'))}ms "
            f"box={f0(r.get('box_busy'))}% noise={f0(r.get('noise'))}% warn_lines={r.get('log_warnings')} "
            f"{'clean' if r['clean'] else 'NOT CLEAN'}")


def table(work):
    rows = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(work, "*", "row.json")))]
    steps = sorted((r for r in rows if not r.get("backlog") and "pacing" in r), key=lambda r: r["pacing"])
    back = [r for r in rows if r.get("backlog")]
    out = []
    P = out.append
    P("\n## callbacks end to end (customer rings 0-2 s, prompt, 1 as RFC 4733, agent answers, "
      "bridged with G.711 both ways, agent hangs up)")
    P("| pacing | callbacks | completed / failed attempts | completed/s steady (overall) | in progress avg "
      "| SIPp customer / agent ok/failed (retrans) | holdless CPU % of a core | µs CPU per callback "
      "| relayed pkt/s | µs CPU per relayed pkt | frames sent per call c / a | audio delivered c→a / a→c % | one-way c→a p50/p99 µs "
      "| a→c p50/p99 µs | key → agent audio p50/p99 ms | RSS at start / peak MB | box busy / noise % |")
    P("|" + "---|" * 17)

    def row(r):
        p = r.get("party") or {}
        c, a = r["cust"], r["agent"]
        fa = f"{r['completed']} / {r['failed_attempts']}"
        if not r["clean"]:
            fa = f"**{fa}**" + (f" {r['attempts']}" if r["failed_attempts"] else "")
        P(f"| {r['pacing']} | {r['calls']}{' of ' + str(r['registered']) + ' pending' if r.get('backlog') else ''} | {fa} "
          f"| {f0(r.get('rate'), '{:.1f}')} ({f0(r.get('rate_overall'), '{:.1f}')}) | {f0(r.get('in_progress_avg'))} "
          f"| {c.get('ok')}/{c.get('failed')} ({c.get('retrans')}) / {a.get('ok')}/{a.get('failed')} ({a.get('retrans')}) "
          f"| {f0(r.get('cpu_pct'))} | {f0(r.get('us_per_cb'))} | {f0(r.get('pps'))} | {f0(r.get('us_per_pkt'), '{:.1f}')} "
          f"| {f0(r.get('cust_frames'))} / {f0(r.get('agent_frames'))}{'' if r.get('full_media') else ' (short)'} "
          f"| {f0(r.get('c2a_pct'), '{:.2f}')} / {f0(r.get('a2c_pct'), '{:.2f}')} "
          f"| {f0(p.get('c2a_p50_us'))}/{f0(p.get('c2a_p99_us'))} | {f0(p.get('a2c_p50_us'))}/{f0(p.get('a2c_p99_us'))} "
          f"| {f0(p.get('key_to_agent_p50_ms'))}/{f0(p.get('key_to_agent_p99_ms'))} "
          f"| {f0((r.get('rss_dial_start_kb') or 0) / 1024, '{:.1f}')} / {f0((r.get('hwm_kb') or 0) / 1024, '{:.1f}')} "
          f"| {f0(r.get('box_busy'))} / {f0(r.get('noise'))} |")
    for r in steps + back:
        row(r)
    if back:
        P("\n## the dialler with a backlog pending (registered through the API on a node that dials nothing, "
          "then dialled after a restart)")
        P("| pending | registration s | RSS before / with them pending MB | per pending callback | "
          "idle CPU with them pending % of a core | dialling: µs CPU per callback (pacing, same run, no backlog) |")
        P("|---|---|---|---|---|---|")
        for r in back:
            same = next((s for s in steps if s["pacing"] == r["pacing"]), None)
            rb, rp = r.get("rss_before_kb") or 0, r.get("rss_pending_kb") or 0
            per = (rp - rb) * 1024 / r["registered"] if r.get("registered") else None
            P(f"| {r['registered']} | {f0(r.get('registration_s'))} | {rb / 1024:.1f} / {rp / 1024:.1f} | {f0(per)} B "
              f"| {r.get('idle_cpu_pct', 0):.1f} | {f0(r.get('us_per_cb'))} (pacing {r['pacing']}"
              + (f"; {f0(same.get('us_per_cb'))} with only {same['calls']} queued)" if same else ")") + " |")
    br = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(work, "bridge", "hl-media-*", "row.json")))]
    if br:
        b = br[0]
        ep = b.get("ep") or {}
        P("\n## bridged calls, same run (bridge-bench.sh, holdless only; 8 s calls, 30 ms packets)")
        P("| CPS | calls ok/failed | peak calls | holdless CPU % plateau | µs CPU per call | relayed pkt/s "
          "| µs CPU per relayed pkt | peak RSS MB |")
        P("|---|---|---|---|---|---|---|---|")
        P(f"| {b['cps']:.0f} | {b.get('ok')}/{b.get('failed')} | {b.get('peak_cc')} | {f0(b.get('cpu_plateau'))} "
          f"| {f0(b.get('us_per_call'))} | {f0(b.get('pps_plateau'))} | {f0(b.get('us_per_pkt'), '{:.1f}')} "
          f"| {f0((b.get('hwm_kb') or 0) / 1024, '{:.1f}')} |")
    clean = [r["pacing"] for r in steps if r["clean"]]
    best = max((r for r in steps if r["clean"]), key=lambda r: r.get("rate") or 0, default=None)
    full = [r for r in steps if r["clean"] and r.get("full_media")]
    bfull = max(full, key=lambda r: r["pacing"], default=None)
    P("")
    P(f"highest pacing with every callback completed, zero failed attempts and >= 99.9 % of the audio "
      f"delivered both ways: {max(clean) if clean else 'none'} (of {len(steps)} steps)"
      + (f": {best.get('rate', 0):.1f} callbacks completed/s" if best else ""))
    P(f"of these, with the parties sending their full audio (an agent >= 90 % of CALL_SECS x 50 frames; "
      f"'short' = the load generator fell behind, e.g. on a saturated box): "
      + (f"pacing {bfull['pacing']}, {bfull.get('rate', 0):.1f} callbacks completed/s" if bfull else "none"))
    txt = "\n".join(out)
    print(txt)
    open(os.path.join(work, "report.md"), "w").write(txt + "\n")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "pending":
        pending(*args)
    elif cmd == "mon":
        mon(args[0], float(args[1]), args[2], int(args[3]), int(args[4]))
    elif cmd == "wait":
        sys.exit(wait(*args))
    elif cmd == "step":
        step(*args)
    elif cmd == "table":
        table(*args)
    else:
        sys.exit(__doc__)
