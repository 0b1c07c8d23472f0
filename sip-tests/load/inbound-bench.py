#!/usr/bin/env python3
"""Helpers of inbound-bench.sh (standard library only; reuses bridge-bench.py's).

  csv OUT N FIRST PORT STEP PORTS    SIPp injection file: N callers +1555<FIRST+i>;<port>
  mon OUT.csv MAX_S STOPFILE HTTP_PORT PID
                                     once a second: holdless /metrics counters, VmRSS, VmHWM
  step DIR KIND N CPS KEY_MS         summarise one step -> DIR/row.json, one line
  table WORK MENU_HOLD               the tables and the summary -> WORK/report.md
"""
import csv
import glob
import importlib.util
import json
import os
import statistics
import sys

_spec = importlib.util.spec_from_file_location(
    "bridge_bench", os.path.join(os.path.dirname(os.path.abspath(__file__)), "bridge-bench.py"))
bb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bb)

CONFIRM_S = 6  # the confirmation prompt (5.8 s) before holdless's BYE


def make_csv(out, n, first, port, step, ports):
    n, first, port, step, ports = map(int, (n, first, port, step, ports))
    with open(out, "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(n):
            f.write(f"+1555{first + i:07d};{port + step * (i % ports)};\n")


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


def deltas(a, b, prefix, label):
    out = {}
    for k in b:
        if k.split("{")[0] == prefix:
            d = b[k] - a.get(k, 0)
            if d:
                lab = k.split(f'{label}="', 1)[-1].split('"', 1)[0] if f'{label}="' in k else k
                out[lab] = out.get(lab, 0) + int(d)
    return out


def rtd(d, which):
    """rtd WHICH p50/p99/max (ms) from SIPp's *_rtt.csv."""
    xs = []
    for fn in glob.glob(os.path.join(d, "*_rtt.csv")):
        for line in open(fn):
            p = line.strip().split(";")
            if len(p) >= 3 and p[2].strip() in (str(which), f"rtd{which}"):
                try:
                    xs.append(float(p[1]))
                except ValueError:
                    pass
    if not xs:
        return None
    xs.sort()
    q = lambda p: xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
    return [q(50), q(99), xs[-1]]


def status_start(d):
    out = {}
    p = os.path.join(d, "rss-start.txt")
    if os.path.exists(p):
        for line in open(p):
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])
    return out


def step(d, kind, n, cps, key_ms):
    n, cps, key_ms = int(n), float(cps), int(key_ms)
    r = dict(kind=kind, calls=n, cps=cps, key_ms=key_ms)
    r.update(bb.sipp_summary(d))
    r["sipp_rc"] = open(os.path.join(d, "uac.rc")).read().strip() if os.path.exists(os.path.join(d, "uac.rc")) else "?"
    r["inv_rt"] = rtd(d, 1)
    r["call_len"] = rtd(d, 2)
    r["died"] = os.path.exists(os.path.join(d, "died.txt"))
    try:
        r["log_warnings"] = int(open(os.path.join(d, "log-warnings.txt")).read().split()[0])
    except (OSError, ValueError, IndexError):
        r["log_warnings"] = None
    a, b = mfile(os.path.join(d, "metrics-start.txt")), mfile(os.path.join(d, "metrics-end.txt"))
    r["registrations"] = deltas(a, b, "holdless_callback_registrations_total", "outcome")
    r["registered"] = r["registrations"].get("registered", 0) + r["registrations"].get("accepted", 0)
    r["outcomes"] = deltas(a, b, "holdless_calls_total", "outcome")
    r["sip_dropped"] = deltas(a, b, "holdless_sip_dropped_total", "what")
    r["pending_end"] = sum(v for k, v in b.items() if k.startswith("holdless_callbacks_pending"))
    r["calls_active_end"] = b.get("holdless_calls_active", -1)
    gen = n / cps
    rows = bb.cpu_rows(d)
    if rows:
        r["cpu_total_s"] = sum(x["holdless"] for x in rows) / 100.0
        busy_end = gen + key_ms / 1000 + CONFIRM_S + 1
        load = [x for x in rows if x["t"] <= busy_end] or rows
        r["cpu_avg"] = statistics.mean(x["holdless"] for x in load)
        r["cpu_max"] = max(x["holdless"] for x in load)
        r["caller_cpu"] = statistics.mean(x["menu_caller"] for x in load)
        r["box_busy"] = statistics.mean(200 - x["sys_idle"] for x in load)
        r["noise"] = r["box_busy"] - statistics.mean(x["holdless"] + x["menu_caller"] for x in load)
    ms = []
    mp = os.path.join(d, "metrics.csv")
    if os.path.exists(mp):
        with open(mp) as f:
            ms = [{k: float(v) for k, v in x.items()} for x in csv.DictReader(f)]
    st = status_start(d)
    r["rss_start_kb"] = st.get("VmRSS", ms[0]["vmrss_kb"] if ms else 0)
    if ms:
        r["hwm_kb"] = max(x["vmhwm_kb"] for x in ms)
        r["peak_active"] = max(x["calls_active"] for x in ms)
    if kind == "menu" and rows and ms:
        # the seconds when every call is in the menu: after the last call is set up (+1 s),
        # before the first call's key (its first frame came ~0.1 s after the monitors started)
        lo, hi = gen + 1.0, key_ms / 1000.0 - 0.2
        win = [x for x in rows if lo < x["t"] <= hi]
        mwin = [x for x in ms if lo <= x["t"] <= hi]
        r["window"] = [round(lo, 1), round(hi, 1)]
        if win:
            r["menu_cpu"] = statistics.mean(x["holdless"] for x in win)
            r["menu_caller_cpu"] = statistics.mean(x["menu_caller"] for x in win)
            r["menu_box"] = statistics.mean(200 - x["sys_idle"] for x in win)
            r["menu_noise"] = r["menu_box"] - statistics.mean(x["holdless"] + x["menu_caller"] for x in win)
        if mwin:
            r["menu_active_min"] = min(x["calls_active"] for x in mwin)
            r["menu_active_max"] = max(x["calls_active"] for x in mwin)
            r["menu_rss_kb"] = max(x["vmrss_kb"] for x in mwin)
            r["rss_per_call_kb"] = (r["menu_rss_kb"] - r["rss_start_kb"]) / n
        if "menu_cpu" in r:
            r["cpu_per_call"] = r["menu_cpu"] / n
        # late and skipped frames per second at the caller (its clock starts ~0.3 s earlier)
        lw = [0, 0, 0, 0]
        cl = os.path.join(d, "caller.log")
        if os.path.exists(cl):
            for line in open(cl):
                p = line.split()
                if len(p) == 10 and p[0].isdigit():
                    t = float(p[0]) - 0.3
                    i = 0 if lo < t <= hi else 2
                    lw[i] += int(p[8])
                    lw[i + 1] += int(p[9])
        r["late_in_window"], r["skipped_in_window"], r["late_outside"], r["skipped_outside"] = lw
    ep = bb.kv_line(os.path.join(d, "caller.log"), "summary:")
    if ep:
        r["ep"] = ep
    u = bb.udp_snmp(d)
    if u:
        r["udp_rcvbuf_drops"] = u[4]
    if r.get("ok", 0) > 0 and "cpu_total_s" in r:
        r["us_per_call"] = r["cpu_total_s"] * 1e6 / r["ok"]
    r["clean"] = bool(r["sipp_rc"] == "0" and r.get("failed", 1) == 0 and r.get("ok", 0) == n
                      and r["registered"] == n and not r["died"])
    json.dump(r, open(os.path.join(d, "row.json"), "w"), indent=1)
    print(line_of(r))


f0 = bb.f0


def line_of(r):
    rt = r.get("inv_rt") or [None] * 3
    ep = r.get("ep") or {}
    s = (f"{r['kind']:4s} calls={r['calls']} cps={r['cps']:.0f} ok={r.get('ok', '?')} failed={r.get('failed', '?')} "
         f"retrans={r.get('retrans', '?')} registered={r['registered']} regs={r['registrations']} "
         f"peak_calls={r.get('peak_cc', '?')} inv200={f0(rt[0])}/{f0(rt[1])}/{f0(rt[2])}ms "
         f"hl_cpu={f0(r.get('cpu_avg'))}/{f0(r.get('cpu_max'))}% us/call={f0(r.get('us_per_call'))} "
         f"hwm={f0(r.get('hwm_kb', 0) / 1024, '{:.1f}')}MB")
    if r["kind"] == "menu":
        s += (f" menu_cpu={f0(r.get('menu_cpu'), '{:.1f}')}% per_call={f0(r.get('cpu_per_call'), '{:.3f}')}%"
              f" in_menu={f0(r.get('menu_active_min'))}-{f0(r.get('menu_active_max'))}"
              f" rss/call={f0(r.get('rss_per_call_kb'), '{:.1f}')}KiB")
    if ep:
        s += (f" keys={ep['keys']:.0f} frames={ep['frames_rx']:.0f}/{ep['frames_expected']:.0f}"
              f" lost={ep['frames_lost']:.0f} skipped={ep.get('frames_missing', 0):.0f} stalls={ep.get('stalls', 0):.0f}"
              f" max_gap={ep.get('max_gap_ms', 0):.0f}ms late={ep['late']:.0f}/{ep['late_vs_earliest']:.0f}"
              f" worst_late={ep['worst_late_ms']:.1f}ms ended_before_key={ep['ended_before_key']:.0f}")
    s += (f" outcomes={r['outcomes']} box={f0(r.get('box_busy'))}% noise={f0(r.get('noise'))}%"
          f" udp_drops={r.get('udp_rcvbuf_drops', '?')} warn_log_lines={r.get('log_warnings')} sipp_rc={r['sipp_rc']}"
          f"{' HOLDLESS DIED' if r['died'] else ''}")
    return s


def frames_cols(r):
    ep = r.get("ep")
    if not ep:
        return "-", "-", "-", "-"
    exp = ep["frames_expected"]
    pct = 100.0 * ep["frames_rx"] / exp if exp else 0
    return (f"{ep['frames_rx']:.0f}/{exp:.0f} ({pct:.2f} %)",
            f"{ep['frames_lost']:.0f} / {ep.get('frames_missing', 0):.0f} ({ep['calls_lost']:.0f} / {ep.get('calls_missing', 0):.0f} calls)"
            f" | {ep.get('stalls', 0):.0f} ({ep.get('calls_stalled', 0):.0f} calls) / {ep.get('max_gap_ms', 0):.0f}",
            f"{ep['late']:.0f} / {ep['late_vs_earliest']:.0f} ({ep['calls_late']:.0f} / {ep['calls_late_vs_earliest']:.0f} calls)",
            f"{ep['worst_late_ms']:.1f} / {ep['off_p99_ms']:.0f} / {ep['off_p999_ms']:.0f}")


def ok_col(r):
    s = f"{r.get('ok')}/{r.get('failed')} ({r.get('retrans')})"
    if not r["clean"]:
        s = f"**{s}** rc={r['sipp_rc']}" + (" DIED" if r["died"] else "")
    return s


def bridge_row(work):
    rows = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(work, "bridge", "hl-media-*", "row.json")))]
    return rows[0] if rows else None


def table(work, menu_hold):
    rows = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(work, "*", "row.json")))]
    out = []
    P = out.append
    rr = sorted((r for r in rows if r["kind"] == "rate"), key=lambda r: r["cps"])
    mr = sorted((r for r in rows if r["kind"] == "menu"), key=lambda r: r["calls"])
    if rr:
        P("\n## inbound transfers to registration (INVITE → prompts → DTMF 1 after 0.5 s → registered → confirmation → BYE from holdless)")
        P("| calls/s | calls | ok/failed (retrans) | registered (other outcomes) | registrations/s | peak calls "
          "| INVITE→200 p50/p99/max ms | ACK→BYE p50/max s | holdless CPU % of a core avg/peak | µs CPU per call "
          "| peak RSS MB | prompt frames rx/expected | lost / skipped by holdless (calls) | stalls >100 ms (calls) / longest gap ms | late >20 ms: vs first / vs earliest frame (calls) "
          "| lateness worst / p99 / p99.9 ms | box busy / noise % |")
        P("|" + "---|" * 17)
        for r in rr:
            rt = r.get("inv_rt") or [None] * 3
            cl = r.get("call_len") or [None] * 3
            other = {k: v for k, v in r["registrations"].items() if k not in ("registered", "accepted")}
            regs = f"{r['registered']}" + (f" ({other})" if other else "")
            gen = r["created"] / r["offered"] if r.get("created") and r.get("offered") else None
            fr, lost, late, worst = frames_cols(r)
            P(f"| {r['cps']:.0f} | {r['calls']} | {ok_col(r)} | {regs} | {f0(r['registered'] / gen if gen else None, '{:.1f}')} "
              f"| {r.get('peak_cc')} | {f0(rt[0])}/{f0(rt[1])}/{f0(rt[2])} "
              f"| {f0(cl[0] / 1000 if cl[0] else None, '{:.1f}')}/{f0(cl[2] / 1000 if cl[2] else None, '{:.1f}')} "
              f"| {f0(r.get('cpu_avg'))}/{f0(r.get('cpu_max'))} | {f0(r.get('us_per_call'))} "
              f"| {f0(r.get('hwm_kb', 0) / 1024, '{:.1f}')} | {fr} | {lost} | {late} | {worst} "
              f"| {f0(r.get('box_busy'))} / {f0(r.get('noise'))} |")
    if mr:
        P(f"\n## concurrent callers in the menu (held {menu_hold} s each, sending noise; then 1 and the confirmation)")
        P("| calls | ok/failed (retrans) | registered | in menu (calls active in the window) | window s "
          "| holdless CPU % of a core (window) | CPU per menu call, % of a core | RSS in menu − at start MB | RSS per menu call KiB "
          "| prompt frames rx/expected | lost / skipped by holdless (calls) | stalls >100 ms (calls) / longest gap ms | late >20 ms: vs first / vs earliest frame (calls) "
          "| lateness worst / p99 / p99.9 ms | menu-caller CPU % | box busy / noise % |")
        P("|" + "---|" * 16)
        for r in mr:
            fr, lost, late, worst = frames_cols(r)
            rss = (r["menu_rss_kb"] - r["rss_start_kb"]) / 1024 if r.get("menu_rss_kb") else None
            w = r.get("window") or [None, None]
            P(f"| {r['calls']} | {ok_col(r)} | {r['registered']} | {f0(r.get('menu_active_min'))}–{f0(r.get('menu_active_max'))} "
              f"| {f0(w[0], '{:.1f}')}–{f0(w[1], '{:.1f}')} | {f0(r.get('menu_cpu'), '{:.1f}')} "
              f"| {f0(r.get('cpu_per_call'), '{:.3f}')} | {f0(rss, '{:.1f}')} | {f0(r.get('rss_per_call_kb'), '{:.1f}')} "
              f"| {fr} | {lost} | {late} | {worst} | {f0(r.get('menu_caller_cpu'))} "
              f"| {f0(r.get('menu_box'))} / {f0(r.get('menu_noise'))} |")
    br = bridge_row(work)
    bper = None
    if br:
        P("\n## bridged calls, same run (bridge-bench.sh, holdless only)")
        P("| CPS | calls | ok/failed | peak concurrent calls | holdless CPU % plateau | CPU per bridged call, % of a core "
          "| RTP pps relayed | peak RSS MB (KiB per concurrent call) |")
        P("|---|---|---|---|---|---|---|---|")
        peak = br.get("peak_cc")
        if br.get("cpu_plateau") and peak:
            bper = br["cpu_plateau"] / peak
        per = (br["hwm_kb"] - br.get("rss_start_kb", 0)) / peak if br.get("hwm_kb") and peak else None
        P(f"| {br['cps']:.0f} | {br['calls']} | {br.get('ok')}/{br.get('failed')} | {peak} | {f0(br.get('cpu_plateau'))} "
          f"| {f0(bper, '{:.3f}')} | {f0(br.get('pps_plateau'))} | {f0(br.get('hwm_kb', 0) / 1024, '{:.1f}')} ({f0(per, '{:.1f}')}) |")
        P("(a bridged call: 2 × 33 pps in and out through the relay, plus the plateau's call set-ups and tear-downs)")
    P("")
    P("### summary against the aims")
    clean_rates = [r["cps"] for r in rr if r["clean"] and r.get("ep") and r["ep"]["frames_lost"] == 0
                   and r["ep"].get("frames_missing", 0) == 0 and r["ep"].get("late", 0) == 0]
    best = max((r["cps"] for r in rr if r["clean"]), default=None)
    P(f"- registrations: highest rate with every call registered and zero failures: "
      f"{f0(best)} /s (of {len(rr)} steps up to {f0(max((r['cps'] for r in rr), default=None))}); aim ≥ 150/s"
      + (f"; also with no prompt frame lost, skipped or late > 20 ms: {f0(max(clean_rates))}/s" if clean_rates
         else "; no step without a prompt frame lost, skipped or late > 20 ms"))
    for r in mr:
        ep = r.get("ep") or {}
        perfect = r["clean"] and ep and ep.get("frames_lost") == 0 and ep.get("late") == 0 \
            and ep.get("frames_missing", 0) == 0
        P(f"- {r['calls']} menu calls: {'clean' if r['clean'] else 'NOT clean'}; frames lost {f0(ep.get('frames_lost'))}, "
          f"skipped by holdless {f0(ep.get('frames_missing'))}, stalls >100 ms {f0(ep.get('stalls'))}, "
          f"late >20 ms {f0(ep.get('late'))} (vs earliest {f0(ep.get('late_vs_earliest'))}), worst {f0(ep.get('worst_late_ms'), '{:.1f}')} ms; "
          f"CPU {f0(r.get('cpu_per_call'), '{:.3f}')} % of a core per call"
          + (f" vs {bper:.3f} per bridged call ({'≤' if r.get('cpu_per_call', 1e9) <= bper else '>'})" if bper else "")
          + f"; RSS {f0(r.get('rss_per_call_kb'), '{:.1f}')} KiB per call (aim ≤ 64)"
          + (f"; of the late/skipped frames, {r['late_in_window']}/{r['skipped_in_window']} in the all-in-menu window, "
             f"{r['late_outside']}/{r['skipped_outside']} during set-up or keys and confirmations" if "late_in_window" in r else "")
          + ("; meets the no-loss/no-late aim" if perfect else ""))
    mm = [r for r in mr if r.get("menu_rss_kb")]
    if len(mm) >= 2 and mm[-1]["calls"] > mm[0]["calls"]:
        marg = (mm[-1]["menu_rss_kb"] - mm[0]["menu_rss_kb"]) / (mm[-1]["calls"] - mm[0]["calls"])
        P(f"- RSS per additional menu call, {mm[0]['calls']} → {mm[-1]['calls']} calls (fixed costs cancel): {marg:.1f} KiB")
    txt = "\n".join(out)
    print(txt)
    open(os.path.join(work, "report.md"), "w").write(txt + "\n")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "csv":
        make_csv(*args)
    elif cmd == "mon":
        bb.mon(args[0], float(args[1]), args[2], int(args[3]), int(args[4]))
    elif cmd == "step":
        step(*args)
    elif cmd == "table":
        table(*args)
    else:
        sys.exit(__doc__)
