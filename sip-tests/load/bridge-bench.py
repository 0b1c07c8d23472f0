#!/usr/bin/env python3
"""Helpers of bridge-bench.sh (standard library only).

  kick OUT.pcap                      the first packet of g711a.pcap as a one-packet pcap
  mon OUT.csv MAX_S STOPFILE HTTP_PORT PID
                                     once a second: holdless /metrics counters, VmRSS, VmHWM
  step DIR MODE CPS CALLS HOLD_MS    summarise one holdless step -> DIR/row.json, one line
  peer DIR MODE CPS CALLS            summarise one peer (kamailio) run dir -> row.json
  table WORK                         the final tables from WORK/*/row.json
"""
import csv
import glob
import json
import os
import re
import statistics
import sys
import time
import urllib.request

HZ = os.sysconf("SC_CLK_TCK")
G711A = "/usr/share/sip-tester/g711a.pcap"
PKTS = 236  # packets per stream (g711a.pcap; rtp-endpoint sends as many)


def kick(out):
    d = open(G711A, "rb").read()
    incl = int.from_bytes(d[32:36], "little")
    open(out, "wb").write(d[:24] + d[24:40 + incl])


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        txt = r.read().decode()
    m = {}
    for line in txt.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                m[k] = float(v)
            except ValueError:
                pass
    return m


def msum(m, prefix, exclude=None):
    return sum(v for k, v in m.items() if k.split("{")[0] == prefix and not (exclude and exclude in k))


def status_kb(pid, key):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def mon(out, maxs, stopfile, port, pid):
    cols = ["t", "calls_active", "rtp_received", "rtp_forwarded", "rtp_dropped", "relayed_caller",
            "relayed_callee", "vmrss_kb", "vmhwm_kb"]
    t0 = time.monotonic()
    nxt = t0
    with open(out, "w") as f:
        f.write(",".join(cols) + "\n")
        while True:
            nxt += 1.0
            time.sleep(max(0, nxt - time.monotonic()))
            now = time.monotonic()
            try:
                m = metrics(port)
            except Exception:
                m = {}
            row = [f"{now - t0:.1f}", m.get("holdless_calls_active", -1),
                   msum(m, "holdless_rtp_received_total"), msum(m, "holdless_rtp_forwarded_total"),
                   msum(m, "holdless_rtp_dropped_total"),
                   m.get('holdless_rtp_relayed_packets_total{from="caller"}', 0),
                   m.get('holdless_rtp_relayed_packets_total{from="callee"}', 0),
                   status_kb(pid, "VmRSS"), status_kb(pid, "VmHWM")]
            f.write(",".join(str(int(x)) if isinstance(x, float) else str(x) for x in row) + "\n")
            f.flush()
            if now - t0 >= maxs or os.path.exists(stopfile):
                break


def sipp_stat(path):
    if not os.path.exists(path):
        return None, []
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    return (rows[-1] if rows else None), rows


def elapsed(r):
    h, m, s = r["ElapsedTime(C)"].split(":")[:3]
    return int(h) * 3600 + int(m) * 60 + float(s)


def sipp_summary(d, prefix="uac"):
    last, rows = sipp_stat(os.path.join(d, f"{prefix}_stat.csv"))
    if not last:
        return {}
    created = int(last["TotalCallCreated"])
    out = dict(created=created, ok=int(last["SuccessfulCall(C)"]), failed=int(last["FailedCall(C)"]),
               retrans=int(last["Retransmissions(C)"]),
               peak_cc=max(int(r["CurrentCall"]) for r in rows))
    out["offered"] = float("nan")
    for r in rows:  # calls created / seconds until the last one was created (1-s rows)
        if int(r["TotalCallCreated"]) >= created > 0 and elapsed(r) > 0:
            out["offered"] = created / elapsed(r)
            break
    return out


def inv_rt(d):
    """INVITE->200 p50/p99/max (ms) from SIPp's *_rtt.csv (rtd 1)."""
    xs = []
    for fn in glob.glob(os.path.join(d, "*_rtt.csv")):
        for line in open(fn):
            p = line.strip().split(";")
            if len(p) >= 3 and p[2].strip() in ("1", "rtd1"):
                try:
                    xs.append(float(p[1]))
                except ValueError:
                    pass
    if not xs:
        return None
    xs.sort()
    q = lambda p: xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
    return [q(50), q(99), xs[-1]]


def cpu_rows(d):
    p = os.path.join(d, "cpu.csv")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def windows(rows, cps, calls, hold_ms):
    gen = calls / cps
    hold = hold_ms / 1000.0
    load = [r for r in rows if r["t"] <= gen + hold + 1.0] or rows
    plat = [r for r in rows if hold + 1.0 <= r["t"] <= gen] if hold >= 3 else []
    return load, plat


def udp_snmp(d):
    p = os.path.join(d, "udp_snmp.txt")
    if not os.path.exists(p):
        return None
    v = [list(map(int, l.split())) for l in open(p) if l.strip()]
    return [b - a for a, b in zip(v[0], v[1])] if len(v) == 2 else None


def kv_line(path, tag):
    if not os.path.exists(path):
        return {}
    for line in open(path):
        if line.startswith(tag):
            return {k: float(v) for k, v in re.findall(r"(\w+)=([-\d.]+)", line)}
    return {}


def step(d, mode, cps, calls, hold_ms):
    cps, calls, hold_ms = float(cps), int(calls), int(hold_ms)
    r = dict(side="holdless", mode=mode, cps=cps, calls=calls, hold_ms=hold_ms)
    r.update(sipp_summary(d))
    uas = sipp_summary(d, "uas")
    r["uas_failed"] = uas.get("failed", -1)
    rc = open(os.path.join(d, "uac.rc")).read().strip() if os.path.exists(os.path.join(d, "uac.rc")) else "?"
    r["sipp_rc"] = rc
    r["inv_rt"] = inv_rt(d)
    rows = cpu_rows(d)
    load, plat = windows(rows, cps, calls, hold_ms)
    if rows:
        r["cpu_total_s"] = sum(x["holdless"] for x in rows) / 100.0  # 1-s samples
        r["cpu_avg"] = statistics.mean(x["holdless"] for x in load)
        r["cpu_max"] = max(x["holdless"] for x in load)
        r["box_busy"] = statistics.mean(200 - x["sys_idle"] for x in load)
        ours = [c for c in rows[0] if c not in ("t",) and not c.startswith("sys_")]
        r["others_cpu"] = {c: round(statistics.mean(x[c] for x in load)) for c in ours if c != "holdless"}
        r["noise"] = r["box_busy"] - statistics.mean(sum(x[c] for c in ours) for x in load)
        if plat:
            r["cpu_plateau"] = statistics.mean(x["holdless"] for x in plat)
            r["box_plateau"] = statistics.mean(200 - x["sys_idle"] for x in plat)
            r["others_plateau"] = {c: round(statistics.mean(x[c] for x in plat)) for c in ours if c != "holdless"}
    # holdless counters, 1-s samples
    mp = os.path.join(d, "metrics.csv")
    if os.path.exists(mp):
        with open(mp) as f:
            ms = [{k: float(v) for k, v in x.items()} for x in csv.DictReader(f)]
        if ms:
            r["hl_peak_active"] = max(x["calls_active"] for x in ms)
            r["rss_start_kb"] = ms[0]["vmrss_kb"]
            r["hwm_kb"] = max(x["vmhwm_kb"] for x in ms)
            fw = [x["rtp_forwarded"] for x in ms]
            r["pps_peak"] = max((b - a for a, b in zip(fw, fw[1:])), default=0)
            mp_ = windows(ms, cps, calls, hold_ms)[1]
            if len(mp_) >= 2:
                dt = mp_[-1]["t"] - mp_[0]["t"]
                r["pps_plateau"] = (mp_[-1]["rtp_forwarded"] - mp_[0]["rtp_forwarded"]) / dt
                # CPU over the same seconds (cpu.csv rows are the second *ending* at t)
                cp = [x for x in rows if mp_[0]["t"] < x["t"] <= mp_[-1]["t"] + 0.05]
                if cp:
                    cpu_s = sum(x["holdless"] for x in cp) / 100.0
                    pk = mp_[-1]["rtp_forwarded"] - mp_[0]["rtp_forwarded"]
                    r["us_per_pkt"] = cpu_s * 1e6 / pk if pk else None
    def mfile(name):
        p = os.path.join(d, name)
        m = {}
        if os.path.exists(p):
            for line in open(p):
                if line and not line.startswith("#"):
                    k, _, v = line.strip().rpartition(" ")
                    try:
                        m[k] = float(v)
                    except ValueError:
                        pass
        return m
    a, b = mfile("metrics-start.txt"), mfile("metrics-end.txt")
    if b:
        delta = lambda k: b.get(k, 0) - a.get(k, 0)
        r["rtp_forwarded"] = msum(b, "holdless_rtp_forwarded_total") - msum(a, "holdless_rtp_forwarded_total")
        r["rtp_received"] = msum(b, "holdless_rtp_received_total") - msum(a, "holdless_rtp_received_total")
        r["rtp_dropped"] = msum(b, "holdless_rtp_dropped_total") - msum(a, "holdless_rtp_dropped_total")
        r["outcomes"] = {re.sub(r'.*outcome="([^"]*)".*', r"\1", k): int(delta(k)) for k in b
                         if k.startswith("holdless_calls_total") and delta(k)}
        r["sip_dropped"] = {k.split("{", 1)[-1].rstrip("}"): int(delta(k)) for k in b
                            if k.startswith("holdless_sip_dropped_total") and delta(k)}
        r["rtp_dropped_by"] = {k.split("{", 1)[-1].rstrip("}"): int(delta(k)) for k in b
                               if k.startswith("holdless_rtp_dropped_total") and delta(k)}
        r["calls_active_end"] = b.get("holdless_calls_active", -1)
    ep = kv_line(os.path.join(d, "rtpep.log"), "summary:")
    if ep:
        r["ep"] = ep
    u = udp_snmp(d)
    if u:
        r["udp_rcvbuf_drops"] = u[4]
    if r.get("ok", 0) > 0 and "cpu_total_s" in r:
        r["us_per_call"] = r["cpu_total_s"] * 1e6 / r["ok"]
    if r.get("rtp_forwarded") and "cpu_total_s" in r:
        r["us_per_pkt_all"] = r["cpu_total_s"] * 1e6 / r["rtp_forwarded"]
    json.dump(r, open(os.path.join(d, "row.json"), "w"), indent=1)
    print(line_of(r))


def peer(d, mode, cps, calls):
    cps, calls = float(cps), int(calls)
    hold_ms = 8000 if mode == "media" else 1000
    r = dict(side="kamailio", mode=mode, cps=cps, calls=calls, hold_ms=hold_ms, dir=d)
    r.update(sipp_summary(d))
    rc = open(os.path.join(d, "uac.rc")).read().strip() if os.path.exists(os.path.join(d, "uac.rc")) else "?"
    r["sipp_rc"] = rc.replace("uac exit=", "")
    r["inv_rt"] = inv_rt(d)
    rows = cpu_rows(d)
    load, plat = windows(rows, cps, calls, hold_ms)
    if rows:
        r["kam_cpu_total_s"] = sum(x["kamailio"] for x in rows) / 100.0
        r["kam_cpu_avg"] = statistics.mean(x["kamailio"] for x in load)
        r["box_busy"] = statistics.mean(200 - x["sys_idle"] for x in load)
        ours = [c for c in rows[0] if c != "t" and not c.startswith("sys_")]
        r["noise"] = r["box_busy"] - statistics.mean(sum(x[c] for c in ours) for x in load)
        if "rtpengine" in rows[0]:
            r["rtpe_cpu_total_s"] = sum(x["rtpengine"] for x in rows) / 100.0
            r["rtpe_cpu_avg"] = statistics.mean(x["rtpengine"] for x in load)
        if plat:
            r["others_plateau"] = {c: round(statistics.mean(x[c] for x in plat)) for c in ours}
            r["box_plateau"] = statistics.mean(200 - x["sys_idle"] for x in plat)
    sink = os.path.join(d, "sink.log")
    if os.path.exists(sink):
        pk = [float(l.split()[2]) for l in open(sink) if len(l.split()) == 3 and l[0].isdigit()]
        r["pps_peak"] = max(pk, default=0)
    if os.path.exists(sink) and plat:
        # sink.log "t total pps", t from sink start (~1 s before the first call), as report.py
        hold = hold_ms / 1000.0
        gen = calls / cps
        pl = []
        for line in open(sink):
            p = line.split()
            if len(p) == 3 and p[0][0].isdigit() and hold + 2.0 <= float(p[0]) <= gen + 1.0:
                pl.append(float(p[2]))
        if pl:
            r["pps_plateau"] = statistics.mean(pl)
            rt = statistics.mean(x["rtpengine"] for x in plat)
            r["rtpe_cpu_plateau"] = rt
            r["us_per_pkt"] = rt / 100.0 * 1e6 / r["pps_plateau"]
    s = os.path.join(d, "summary.txt")
    if os.path.exists(s):
        m = re.search(r"rtpengine_relayed=(\d+) delivered_to_sink=(\d+)", open(s).read())
        if m:
            r["rtp_forwarded"] = int(m.group(1))
            r["rtp_delivered"] = int(m.group(2))
            if r["rtp_forwarded"] and "rtpe_cpu_total_s" in r:
                r["us_per_pkt_all"] = r["rtpe_cpu_total_s"] * 1e6 / r["rtp_forwarded"]
                r["us_per_pkt_all_kam"] = (r["rtpe_cpu_total_s"] + r["kam_cpu_total_s"]) * 1e6 / r["rtp_forwarded"]
    if r.get("ok", 0) > 0 and "kam_cpu_total_s" in r:
        r["us_per_call"] = r["kam_cpu_total_s"] * 1e6 / r["ok"]
    u = udp_snmp(d)
    if u:
        r["udp_rcvbuf_drops"] = u[4]
    json.dump(r, open(os.path.join(os.environ.get("ROW_DIR", d), "row.json"), "w"), indent=1)
    print(line_of(r))


def ep_rate(d, lo, hi):
    """Packets a second the rtp-endpoint received (both sides) between seconds lo and hi of
    its log: what the relay delivered."""
    p = os.path.join(d, "rtpep.log")
    if not os.path.exists(p):
        return None
    rows = []
    for line in open(p):
        f = line.split()
        if len(f) >= 3 and f[0].isdigit():
            rows.append((float(f[0]), int(f[1]) + int(f[2])))
    w = [x for x in rows if lo <= x[0] <= hi]
    if len(w) < 2 or w[-1][0] <= w[0][0]:
        return None
    return (w[-1][1] - w[0][1]) / (w[-1][0] - w[0][0])


def peer_same(d, cps, calls, hold_ms):
    """Kamailio + rtpengine under holdless's own load (SIPp scenarios and rtp-endpoint)."""
    cps, calls, hold_ms = float(cps), int(calls), int(hold_ms)
    r = dict(side="kamailio", mode="media", cps=cps, calls=calls, hold_ms=hold_ms, dir=d, load="same")
    r.update(sipp_summary(d))
    rc = open(os.path.join(d, "uac.rc")).read().strip() if os.path.exists(os.path.join(d, "uac.rc")) else "?"
    r["sipp_rc"] = rc
    r["inv_rt"] = inv_rt(d)
    rows = cpu_rows(d)
    load, plat = windows(rows, cps, calls, hold_ms)
    if rows:
        r["kam_cpu_total_s"] = sum(x["kamailio"] for x in rows) / 100.0
        r["kam_cpu_avg"] = statistics.mean(x["kamailio"] for x in load)
        r["rtpe_cpu_total_s"] = sum(x["rtpengine"] for x in rows) / 100.0
        r["rtpe_cpu_avg"] = statistics.mean(x["rtpengine"] for x in load)
        r["box_busy"] = statistics.mean(200 - x["sys_idle"] for x in load)
        ours = [c for c in rows[0] if c != "t" and not c.startswith("sys_")]
        r["noise"] = r["box_busy"] - statistics.mean(sum(x[c] for c in ours) for x in load)
        if plat:
            r["others_plateau"] = {c: round(statistics.mean(x[c] for x in plat)) for c in ours}
            r["box_plateau"] = statistics.mean(200 - x["sys_idle"] for x in plat)
            r["rtpe_cpu_plateau"] = statistics.mean(x["rtpengine"] for x in plat)
            pps = ep_rate(d, plat[0]["t"], plat[-1]["t"])
            if pps:
                r["pps_plateau"] = pps
                r["us_per_pkt"] = r["rtpe_cpu_plateau"] / 100.0 * 1e6 / pps
    tot = os.path.join(d, "rtpe_packets.txt")
    if os.path.exists(tot):
        v = [int(x) for x in open(tot).read().split() if x.isdigit()]
        if len(v) == 2:
            r["rtp_forwarded"] = v[1] - v[0]
            if r["rtp_forwarded"] and "rtpe_cpu_total_s" in r:
                r["us_per_pkt_all"] = r["rtpe_cpu_total_s"] * 1e6 / r["rtp_forwarded"]
                r["us_per_pkt_all_kam"] = (r["rtpe_cpu_total_s"] + r["kam_cpu_total_s"]) * 1e6 / r["rtp_forwarded"]
    ep = kv_line(os.path.join(d, "rtpep.log"), "summary:")
    if ep:
        r["ep"] = ep
    if r.get("ok", 0) > 0 and "kam_cpu_total_s" in r:
        r["us_per_call"] = r["kam_cpu_total_s"] * 1e6 / r["ok"]
    u = udp_snmp(d)
    if u:
        r["udp_rcvbuf_drops"] = u[4]
    json.dump(r, open(os.path.join(os.environ.get("ROW_DIR", d), "row.json"), "w"), indent=1)
    print(line_of(r))


def f0(x, fmt="{:.0f}", dash="-"):
    return dash if x is None or (isinstance(x, float) and x != x) else fmt.format(x)


def rtp_delivered(r):
    """Share of the expected RTP (2 streams x 236 packets per call) that reached the far end."""
    if r["mode"] != "media" or not r.get("calls"):
        return None
    exp = 2 * PKTS * r["calls"]
    if r["side"] == "holdless" or r.get("ep"):
        ep = r.get("ep")
        return (ep["rx_a"] + ep["rx_b"]) / exp if ep else None
    return r["rtp_delivered"] / exp if r.get("rtp_delivered") is not None else None


def clean(r):
    """Every call succeeded (and, with media, >= 99.9 % of the RTP arrived)."""
    ok = r.get("sipp_rc") in ("0", "uac exit=0") and r.get("failed", 1) == 0 and r.get("ok", 0) == r["calls"]
    d = rtp_delivered(r)
    return ok and (d is None or d >= 0.999)


def line_of(r):
    rt = r.get("inv_rt") or [None] * 3
    s = (f"{r['side']:8s} {r['mode']:5s} cps={r['cps']:.0f} offered={f0(r.get('offered'), '{:.1f}')} "
         f"ok={r.get('ok', '?')} failed={r.get('failed', '?')} retrans={r.get('retrans', '?')} "
         f"peak_calls={r.get('peak_cc', '?')} inv200_p50/p99/max={f0(rt[0])}/{f0(rt[1])}/{f0(rt[2])}ms "
         f"pps={f0(r.get('pps_plateau'))}/{f0(r.get('pps_peak'))} us/pkt={f0(r.get('us_per_pkt'), '{:.1f}')}/{f0(r.get('us_per_pkt_all'), '{:.1f}')} "
         f"us/call={f0(r.get('us_per_call'))} box={f0(r.get('box_busy'))}% noise={f0(r.get('noise'))}%")
    ep = r.get("ep")
    if ep:
        s += (f" ep_tx={ep['tx_a'] + ep['tx_b']:.0f} ep_rx={ep['rx_a'] + ep['rx_b']:.0f}"
              f" lat_p50/p99/p99.9={ep['lat_p50_us']:.0f}/{ep['lat_p99_us']:.0f}/{ep.get('lat_p999_us', 0):.0f}us")
    if r["side"] == "holdless":
        s += (f" hl_cpu={f0(r.get('cpu_avg'))}/{f0(r.get('cpu_max'))}% plateau={f0(r.get('cpu_plateau'))}%"
              f" hwm={f0(r.get('hwm_kb', 0) / 1024, '{:.1f}')}MB")
        if r.get("sip_dropped"):
            s += f" sip_dropped={r['sip_dropped']}"
        if r.get("rtp_dropped_by"):
            s += f" rtp_dropped={r['rtp_dropped_by']}"
        s += f" outcomes={r.get('outcomes')}"
    else:
        s += f" kamailio={f0(r.get('kam_cpu_avg'))}% rtpengine_plateau={f0(r.get('rtpe_cpu_plateau'))}%"
    s += f" udp_drops={r.get('udp_rcvbuf_drops', '?')} sipp_rc={r.get('sipp_rc')}"
    return s


def table(work):
    rows = []
    for p in sorted(glob.glob(os.path.join(work, "*", "row.json"))):
        rows.append(json.load(open(p)))
    probe = kv_line(os.path.join(work, "probe.log"), "summary:")
    out = []
    P = out.append
    for mode, title in (("media", "bridged calls with G.711 RTP both ways on both legs (8 s calls)"),
                        ("sig", "signalling only (1 s calls, no RTP)")):
        mr = [r for r in rows if r["mode"] == mode]
        if not mr:
            continue
        P(f"\n## {title}")
        P("| CPS | side | offered/achieved CPS | ok/failed (retrans) | peak calls | INVITE→200 p50/p99/max ms "
          "| RTP delivered % | RTP pps relayed plateau/peak | CPU % of a core avg/plateau | µs CPU per relayed pkt plateau/all-in "
          "| µs CPU per call | peak RSS MB (KB per concurrent call / per call made) | RTP one-way p50/p99/p99.9 µs "
          "| box busy / noise % |")
        P("|" + "---|" * 14)
        for cps in sorted({r["cps"] for r in mr}):
            for side in ("holdless", "kamailio"):
                for r in [x for x in mr if x["cps"] == cps and x["side"] == side]:
                    rt = r.get("inv_rt") or [None] * 3
                    ach = r["ok"] / (r["created"] / r["offered"]) if r.get("created") and r.get("offered") else None
                    if side == "holdless":
                        cpu = f"{f0(r.get('cpu_avg'))}/{f0(r.get('cpu_plateau'))}"
                        peak = r.get("peak_cc")
                        rss = r.get("hwm_kb")
                        per = ((rss - r.get("rss_start_kb", 0)) / peak) if rss and peak else None
                        per2 = ((rss - r.get("rss_start_kb", 0)) / r["ok"]) if rss and r.get("ok") else None
                        mem = f"{f0(rss / 1024 if rss else None, '{:.1f}')} ({f0(per, '{:.1f}')} / {f0(per2, '{:.1f}')})"
                        ep = r.get("ep")
                        lat = (f"{ep['lat_p50_us']:.0f}/{ep['lat_p99_us']:.0f}/{ep.get('lat_p999_us', 0):.0f}"
                               if ep and ep.get("lat_n") else "-")
                        name = "holdless"
                    else:
                        cpu = (f"kam {f0(r.get('kam_cpu_avg'))}, rtpe {f0(r.get('rtpe_cpu_avg'))}/"
                               f"{f0(r.get('rtpe_cpu_plateau'))}" if mode == "media" else f"kam {f0(r.get('kam_cpu_avg'))}")
                        mem = "-"
                        ep = r.get("ep")
                        lat = (f"{ep['lat_p50_us']:.0f}/{ep['lat_p99_us']:.0f}/{ep.get('lat_p999_us', 0):.0f}"
                               if ep and ep.get("lat_n") else "-")
                        name = "kamailio+rtpengine" if mode == "media" else "kamailio"
                    ok = f"{r.get('ok')}/{r.get('failed')} ({r.get('retrans')})"
                    if not clean(r):
                        ok = f"**{ok}**" + (" RTP lost" if r.get("failed") == 0 and r.get("sipp_rc") == "0"
                                            else f" rc={r.get('sipp_rc')}")
                    P(f"| {cps:.0f} | {name} | {f0(r.get('offered'))}/{f0(ach)} | {ok} | {r.get('peak_cc')} "
                      f"| {f0(rt[0])}/{f0(rt[1])}/{f0(rt[2])} | {f0(rtp_delivered(r) and 100 * rtp_delivered(r), '{:.1f}')} "
                      f"| {f0(r.get('pps_plateau'))}/{f0(r.get('pps_peak'))} | {cpu} "
                      f"| {f0(r.get('us_per_pkt'), '{:.1f}')}/{f0(r.get('us_per_pkt_all'), '{:.1f}')} "
                      f"| {f0(r.get('us_per_call'))} | {mem} | {lat} "
                      f"| {f0(r.get('box_busy'))} / {f0(r.get('noise'))} |")
    P("")
    for mode in ("media", "sig"):
        best = {}
        for side in ("holdless", "kamailio"):
            ok = [r["cps"] for r in rows if r["mode"] == mode and r["side"] == side and clean(r)]
            tried = [r["cps"] for r in rows if r["mode"] == mode and r["side"] == side]
            best[side] = (f"{max(ok):.0f}" if ok else "none") + (f" (of {len(tried)} steps up to {max(tried):.0f})" if tried else " (not run)")
        P(f"highest CPS with zero failed calls{' and >= 99.9 % of the RTP delivered' if mode == 'media' else ''}, {mode:5s}: holdless {best['holdless']:30s} kamailio{'+rtpengine' if mode == 'media' else ''} {best['kamailio']}")
    hm = [r for r in rows if r["side"] == "holdless" and r["mode"] == "media" and r.get("us_per_pkt_all")]
    km = [r for r in rows if r["side"] == "kamailio" and r["mode"] == "media" and r.get("us_per_pkt_all") and clean(r)]
    sig = [r for r in rows if r["side"] == "holdless" and r["mode"] == "sig" and r.get("us_per_call") and clean(r)]
    if hm:
        P("µs of CPU per relayed RTP packet (media plateau; lower is better):")
        sig_cost = min((r["us_per_call"] for r in sig), default=None)
        for r in hm:
            net = ""
            if sig_cost and r.get("pps_plateau") and r.get("cpu_plateau"):
                # take out the SIP work of the calls set up and torn down during the plateau
                media_cpu = r["cpu_plateau"] / 100.0 - r["cps"] * sig_cost / 1e6
                net = f", {media_cpu * 1e6 / r['pps_plateau']:.1f} net of SIP ({sig_cost:.0f} µs/call from the signalling steps)"
            pl = f"plateau {r['us_per_pkt']:.1f} µs/pkt (SIP work of the plateau's calls included){net}; " if r.get("us_per_pkt") else ""
            P(f"  holdless @ {r['cps']:.0f} CPS{'' if clean(r) else ' (not clean)'}: {pl}whole step "
              f"{r['us_per_pkt_all']:.1f} µs/pkt (all holdless CPU incl. SIP / packets relayed)")
        for r in km:
            pl = f"plateau {r['us_per_pkt']:.1f} µs/pkt; " if r.get("us_per_pkt") else ""
            P(f"  rtpengine @ {r['cps']:.0f} CPS (this run): {pl}whole step {r['us_per_pkt_all']:.1f} µs/pkt "
              f"(rtpengine CPU only; {r['us_per_pkt_all_kam']:.1f} with kamailio's)")
        P("  references: rtpengine userspace ~22 µs/pkt, bare C relay (udp-relay/udpbench) ~6 µs/pkt "
          "(../shared/bench/peer/README.md); the aim is at most half of rtpengine's, ~11 µs")
    if probe:
        P(f"latency with no relay (rtp-endpoint to itself, {probe.get('lat_n', 0):.0f} pkts): p50/p99 "
          f"{probe['lat_p50_us']:.0f}/{probe['lat_p99_us']:.0f} µs; the relay's share is the difference")
    txt = "\n".join(out)
    print(txt)
    open(os.path.join(work, "report.md"), "w").write(txt + "\n")


def plot(work, out=None):
    """RTP delivered %, one-way p99 latency and CPU per relayed packet against calls/s, holdless
    and Kamailio + rtpengine on the same axes (media steps that ran under the same load)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(work, "*", "row.json")))]
    rows = [r for r in rows if r["mode"] == "media" and (r["side"] == "holdless" or r.get("load") == "same")]
    probe = kv_line(os.path.join(work, "probe.log"), "summary:")
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for side, label, mark in (("holdless", "holdless", "o-"), ("kamailio", "Kamailio + rtpengine", "s--")):
        rs = sorted((r for r in rows if r["side"] == side), key=lambda r: r["cps"])
        if not rs:
            continue
        x = [r["cps"] for r in rs]
        dl = [100 * (rtp_delivered(r) or 0) for r in rs]
        p99 = [r["ep"]["lat_p99_us"] / 1000 if r.get("ep") else float("nan") for r in rs]
        cpu = [r.get("us_per_pkt") or float("nan") for r in rs]
        ax[0].plot(x, dl, mark, label=label)
        ax[1].plot(x, p99, mark, label=label)
        ax[2].plot(x, cpu, mark, label=label)
    ax[0].set_title("RTP delivered (%)")
    ax[0].axhline(99.9, color="grey", lw=0.8, ls=":")
    ax[1].set_title("one-way latency p99 through the relay (ms)")
    ax[1].set_yscale("log")
    ax[1].axhline(5, color="grey", lw=0.8, ls=":")
    if probe:
        ax[1].axhline(probe["lat_p99_us"] / 1000, color="green", lw=0.8, ls=":", label="no relay (p99)")
    ax[2].set_title("CPU per relayed packet, plateau (µs)")
    ax[2].set_ylim(bottom=0)
    for a in ax:
        a.set_xlabel("calls/s (8 s calls, G.711 both ways)")
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle(f"bridge-bench media steps, 2-CPU box ({os.path.basename(work.rstrip('/'))})", fontsize=10)
    fig.tight_layout()
    out = out or os.path.join(work, "bridge-bench.png")
    fig.savefig(out, dpi=90)
    print(f"plot: {out}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "kick":
        kick(*args)
    elif cmd == "mon":
        mon(args[0], float(args[1]), args[2], int(args[3]), int(args[4]))
    elif cmd == "step":
        step(*args)
    elif cmd == "plot":
        plot(*args)
    elif cmd == "peer_same":
        peer_same(*args)
    elif cmd == "peer":
        peer(*args)
    elif cmd == "table":
        table(*args)
    else:
        sys.exit(__doc__)
