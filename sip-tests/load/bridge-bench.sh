#!/usr/bin/env bash
# Bridged-call benchmark (issue 3): holdless bridging SIPp caller -> holdless -> SIPp contact
# center with G.711 RTP both ways on both legs, next to the Kamailio + rtpengine baseline of
# ../shared/bench/peer (its run-media.sh / run-signaling.sh, called unchanged), step by step
# in the same run on the same machine.
#
# usage: sip-tests/load/bridge-bench.sh [SECONDS=15] [STEP...]
#   STEP: mN = N calls/s of 8 s calls with RTP; sN = N calls/s of 1 s calls, signalling only;
#         a bare N is m below 500 and s from 500 on.
#   default steps: 50 100 150 200 500 1000 2000 3000 (~8-10 min);  QUICK=1: 5 s, 50 1000 (<2 min)
# The peer's media steps run Kamailio + rtpengine from the peer's own configuration but under
# exactly holdless's load (the same SIPp scenarios and rtp-endpoint streams, so both relays see
# identical packets and the load side costs the same); PEER_LOAD=own runs the peer's own
# run-media.sh instead (SIPp playing pcaps into a sink: a heavier load side, no latency).
# Environment: HOLDLESS_BIN, MEDIA_THREADS / MEDIA_PRIO (holdless's media.threads /
#   media.realtime_priority, default 0 / 0), PEER_DIR (default <repo>/../shared/bench/peer), SKIP_PEER=1, PEER_LOAD,
#   SKIP_AFTER_FAIL=0 (default 1: after a failed step, a side skips its higher steps of that
#   kind), QUIET_MAX (s to wait for a quiet box before each run, default 10), RUST_LOG (warn).
# Everything is on 127.0.0.0/8. Every SIPp run has -m, -timeout and timeout(1); holdless,
# rtp-endpoint and the monitors are stopped by PID. Results: $WORK (printed at the end).
set -euo pipefail
SUITE=bridge-bench
source "$(dirname "$0")/../lib.sh"
require_tools
holdless_bin
LOAD=$SIPT_DIR/load
PY="python3 $LOAD/bridge-bench.py"

if [ "${QUICK:-0}" = 1 ]; then DEF_SECS=5; DEF_STEPS=(50 1000); else DEF_SECS=15; DEF_STEPS=(50 100 150 200 500 1000 2000 3000); fi
SECS=${1:-$DEF_SECS}
shift || true
STEPS=("$@")
[ "${#STEPS[@]}" -gt 0 ] || STEPS=("${DEF_STEPS[@]}")
export RUST_LOG=${RUST_LOG:-warn}
SIP_PORT=15260 HTTP_PORT=18260 UAC_PORT=25280 UAS_PORT=15290
UAC_IP=127.0.0.2 UAS_IP=127.0.0.3 UAC_MP=10000 UAS_MP=30000
HOLD_MEDIA=8000 HOLD_SIG=1000
PEER_SRC=${PEER_DIR:-$REPO_ROOT/../shared/bench/peer}
PEER=$WORK/peer
MY_PIDS=()

bench_cleanup() {
    local p
    for p in "${MY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    on_exit
}
trap bench_cleanup EXIT
ulimit -n "$(ulimit -Hn)"

# ---------------------------------------------------------------- setup
gcc -O2 -Wall -o "$WORK/rtp-endpoint" "$LOAD/rtp-endpoint.c"
$PY kick "$WORK/kick.pcap"
sed "s#@KICK_PCAP@#$WORK/kick.pcap#" "$LOAD/bridge-uac.xml" >"$WORK/uac-media.xml"
sed "s#@KICK_PCAP@#$WORK/kick.pcap#" "$LOAD/bridge-uas.xml" >"$WORK/uas-media.xml"
sed "/<nop><action><exec play_pcap_audio/d" "$WORK/uac-media.xml" >"$WORK/uac-sig.xml"
sed "/<nop><action><exec play_pcap_audio/d" "$WORK/uas-media.xml" >"$WORK/uas-sig.xml"

if [ "${SKIP_PEER:-0}" != 1 ]; then
    if ! command -v kamailio >/dev/null || ! command -v rtpengine >/dev/null; then
        echo "kamailio/rtpengine missing: apt-get install -y kamailio rtpengine-daemon" >&2
        apt-get install -y kamailio rtpengine-daemon >"$WORK/apt.log" 2>&1 ||
            { echo "apt-get failed (see $WORK/apt.log); run with SKIP_PEER=1 for holdless only" >&2; exit 1; }
    fi
    [ -x "$PEER_SRC/run-media.sh" ] || { echo "no peer harness at $PEER_SRC (set PEER_DIR)" >&2; exit 1; }
    # run the peer scripts from a private copy: they write results/ next to themselves
    cp -r "$PEER_SRC" "$PEER"
    chmod -R u+w "$PEER"
    rm -rf "$PEER"/results/* "$PEER"/udp-relay/udpbench
fi

quiet() {  # wait (bounded) for the shared box to calm down, like the peer's sweep.sh
    python3 "$PEER_SRC/quiet.py" "${QUIET_MAX:-10}" 30 2>/dev/null | sed 's/^/  # /' || true
}
udp_snmp() { awk '/^Udp:/{if(h){print $2,$3,$4,$5,$6,$7; exit} h=1}' /proc/net/snmp; }
scrape() { curl -fsS --max-time 2 "http://127.0.0.1:$HTTP_PORT/metrics" >"$1" 2>/dev/null || true; }

hl_config() {  # FILE
    FLOOD_MAX=100000000 ACL_ALLOW='["127.0.0.0/8"]' write_config "$1"
    cat >>"$1" <<EOF
bridge_to = "sip:+15550009999@$UAS_IP:$UAS_PORT"

[calls]
max_calls = 100000
ring_timeout_secs = 30

[media]
address = "127.0.0.1"
port_min = 40000
port_max = 59999
timeout_secs = 30
latching = "strict"
threads = ${MEDIA_THREADS:-0}
realtime_priority = ${MEDIA_PRIO:-0}
EOF
}

# ---------------------------------------------------------------- one holdless step
hl_step() {  # MODE CPS
    local mode=$1 cps=$2 hold calls to lim d ep_pid=
    hold=$([ "$mode" = media ] && echo $HOLD_MEDIA || echo $HOLD_SIG)
    calls=$((cps * SECS))
    to=$((calls / cps + hold / 1000 + 30))
    lim=$((cps * (hold / 1000 + 4) + 100))
    d=$WORK/hl-$mode-$(printf %05d "$cps"); mkdir -p "$d"
    hl_config "$d/holdless.toml"
    WORK=$d hl_start "bench-$mode-$cps" "$d/holdless.toml" "$SIP_PORT" "$HTTP_PORT" || return 1
    udp_snmp >"$d/udp_snmp.txt"
    scrape "$d/metrics-start.txt"
    if [ "$mode" = media ]; then
        # caller side 127.0.0.2:10004..20000, contact center 127.0.0.3:30004..40000 (step 4)
        "$WORK/rtp-endpoint" -a "$UAC_IP" -A $((UAC_MP + 4)) -b "$UAS_IP" -B $((UAS_MP + 4)) \
            -n 2500 -s 4 -t $((to + 20)) >"$d/rtpep.log" 2>&1 &
        ep_pid=$!; MY_PIDS+=("$ep_pid")
        sleep 0.3
    fi
    (cd "$d" && exec timeout -k 5 $((to + 20)) sipp -sf "$WORK/uas-$mode.xml" -i "$UAS_IP" -p "$UAS_PORT" \
        -mi "$UAS_IP" -mp "$UAS_MP" -m $((calls * 2)) -timeout $((to + 10)) -nostdin \
        -trace_err -error_file "$d/uas_errors.log" -trace_stat -stf "$d/uas_stat.csv" -fd 1 \
        >"$d/uas.screen" 2>&1) &
    local uas_pid=$!; MY_PIDS+=("$uas_pid")
    sleep 0.5
    (cd "$d" && exec timeout -k 5 $((to + 10)) sipp "127.0.0.1:$SIP_PORT" -sf "$WORK/uac-$mode.xml" \
        -s +15550001000 -i "$UAC_IP" -p "$UAC_PORT" -mi "$UAC_IP" -mp "$UAC_MP" \
        -r "$cps" -rp 1000 -m "$calls" -l "$lim" -d "$hold" -timeout "$to" -timeout_error -nostdin \
        -trace_err -error_file "$d/uac_errors.log" -trace_stat -stf "$d/uac_stat.csv" -fd 1 \
        -trace_rtt -rtt_freq 1 >"$d/uac.screen" 2>&1) &
    local uac_pid=$!; MY_PIDS+=("$uac_pid")
    local mons=(holdless="$HL_PID" sipp_uac="$uac_pid" sipp_uas="$uas_pid")
    [ -n "$ep_pid" ] && mons+=(rtp_endpoint="$ep_pid")
    python3 "$PEER_SRC/cpumon.py" "$d/cpu.csv" $((to + 20)) "$d/.stop" "${mons[@]}" &
    local mon1=$!; MY_PIDS+=("$mon1")
    $PY mon "$d/metrics.csv" $((to + 20)) "$d/.stop" "$HTTP_PORT" "$HL_PID" &
    local mon2=$!; MY_PIDS+=("$mon2")
    local rc=0
    wait "$uac_pid" || rc=$?
    echo "$rc" >"$d/uac.rc"
    # the contact center: let it drain (timewait 4 s), then SIGINT (timeout forwards it)
    local i
    for i in $(seq 70); do kill -0 "$uas_pid" 2>/dev/null || break; sleep 0.1; done
    kill -INT "$uas_pid" 2>/dev/null || true
    wait "$uas_pid" 2>/dev/null || true
    if [ -n "$ep_pid" ]; then
        sleep 0.5
        kill -INT "$ep_pid" 2>/dev/null || true
        wait "$ep_pid" 2>/dev/null || true
    fi
    udp_snmp >>"$d/udp_snmp.txt"
    cp /proc/net/udp "$d/proc_net_udp.txt"
    sleep 1.2   # one more monitor sample
    scrape "$d/metrics-end.txt"
    touch "$d/.stop"
    wait "$mon1" "$mon2" 2>/dev/null || true
    WORK=$d hl_stop >"$d/stop.txt" || true
    $PY step "$d" "$mode" "$cps" "$calls" "$hold" | tee -a "$WORK/steps.txt"
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r.get('sipp_rc')=='0' and r.get('failed',1)==0 and r.get('ok',0)==r['calls'] else 1)" "$d/row.json"
}

# ---------------------------------------------------------------- one peer step
peer_step() {  # MODE CPS
    local mode=$1 cps=$2 calls d pd
    calls=$((cps * SECS))
    d=$WORK/kam-$mode-$(printf %05d "$cps"); mkdir -p "$d"
    if [ "$mode" = media ]; then
        "$PEER/run-media.sh" "$cps" "$calls" "$HOLD_MEDIA" >"$d/peer.out" 2>&1 || true
        pd=$(ls -td "$PEER/results/media-${cps}cps-${calls}c-"* 2>/dev/null | head -n 1)
    else
        "$PEER/run-signaling.sh" "$cps" "$calls" "$HOLD_SIG" >"$d/peer.out" 2>&1 || true
        pd=$(ls -td "$PEER/results/sig-${cps}cps-${calls}c-"* 2>/dev/null | head -n 1)
    fi
    [ -n "$pd" ] || { echo "kamailio $mode $cps: no result dir (see $d/peer.out)"; tail -n 5 "$d/peer.out"; return 1; }
    ROW_DIR=$d $PY peer "$pd" "$mode" "$cps" "$calls" | tee -a "$WORK/steps.txt"
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r.get('sipp_rc')=='0' and r.get('failed',1)==0 and r.get('ok',0)==r['calls'] else 1)" "$d/row.json"
}

# ---------------------------------------------------------------- one peer step, same load
# Kamailio + rtpengine started from the peer's own files (kamailio.cfg, rtpengine.conf,
# unchanged, with the command lines of its lib.sh), driven exactly like holdless: the same
# SIPp scenarios and rates, and the same rtp-endpoint streams on the media. Only the
# addresses differ: Kamailio listens on 127.0.0.1:5070 and sends every INVITE to
# 127.0.0.1:5090, where the contact center's SIPp then listens.
peer_same_step() {  # CPS
    local cps=$1 calls to lim d i rtpe kam ep_pid
    calls=$((cps * SECS))
    to=$((calls / cps + HOLD_MEDIA / 1000 + 30))
    lim=$((cps * (HOLD_MEDIA / 1000 + 4) + 100))
    d=$WORK/kam-media-$(printf %05d "$cps"); mkdir -p "$d"
    if ss -uln | grep -qE '127\.0\.0\.1:(5070|5090|2223|2224)\b'; then
        echo "kamailio media $cps: ports 5070/5090/2223/2224 busy"; return 1
    fi
    rtpengine --config-file="$PEER/rtpengine.conf" --config-section=rtpengine \
        --foreground --log-stderr --pidfile="$d/rtpengine.pid" >"$d/rtpengine.log" 2>&1 &
    rtpe=$!; MY_PIDS+=("$rtpe")
    for i in $(seq 50); do
        rtpengine-ctl -ip 127.0.0.1:2224 list numsessions >/dev/null 2>&1 && break
        sleep 0.1
    done
    kamailio -f "$PEER/kamailio.cfg" -DD -E -Y "$d" -P "$d/kamailio.pid" -m 1024 -M 16 \
        >"$d/kamailio.log" 2>&1 &
    kam=$!; MY_PIDS+=("$kam")
    for i in $(seq 50); do
        ss -uln | grep -q '127\.0\.0\.1:5070\b' && break
        sleep 0.1
    done
    sleep 0.3
    rtpe_total >"$d/rtpe_packets.txt"
    udp_snmp >"$d/udp_snmp.txt"
    "$WORK/rtp-endpoint" -a "$UAC_IP" -A $((UAC_MP + 4)) -b "$UAS_IP" -B $((UAS_MP + 4)) \
        -n 2500 -s 4 -t $((to + 20)) >"$d/rtpep.log" 2>&1 &
    ep_pid=$!; MY_PIDS+=("$ep_pid")
    sleep 0.3
    (cd "$d" && exec timeout -k 5 $((to + 20)) sipp -sf "$WORK/uas-media.xml" -i 127.0.0.1 -p 5090 \
        -mi "$UAS_IP" -mp "$UAS_MP" -m $((calls * 2)) -timeout $((to + 10)) -nostdin \
        -trace_err -error_file "$d/uas_errors.log" -trace_stat -stf "$d/uas_stat.csv" -fd 1 \
        >"$d/uas.screen" 2>&1) &
    local uas_pid=$!; MY_PIDS+=("$uas_pid")
    sleep 0.5
    (cd "$d" && exec timeout -k 5 $((to + 10)) sipp "127.0.0.1:5070" -sf "$WORK/uac-media.xml" \
        -s +15550001000 -i "$UAC_IP" -p "$UAC_PORT" -mi "$UAC_IP" -mp "$UAC_MP" \
        -r "$cps" -rp 1000 -m "$calls" -l "$lim" -d "$HOLD_MEDIA" -timeout "$to" -timeout_error -nostdin \
        -trace_err -error_file "$d/uac_errors.log" -trace_stat -stf "$d/uac_stat.csv" -fd 1 \
        -trace_rtt -rtt_freq 1 >"$d/uac.screen" 2>&1) &
    local uac_pid=$!; MY_PIDS+=("$uac_pid")
    python3 "$PEER_SRC/cpumon.py" "$d/cpu.csv" $((to + 20)) "$d/.stop" kamailio="$kam" \
        rtpengine="$rtpe" sipp_uac="$uac_pid" sipp_uas="$uas_pid" rtp_endpoint="$ep_pid" &
    local mon=$!; MY_PIDS+=("$mon")
    local rc=0
    wait "$uac_pid" || rc=$?
    echo "$rc" >"$d/uac.rc"
    for i in $(seq 70); do kill -0 "$uas_pid" 2>/dev/null || break; sleep 0.1; done
    kill -INT "$uas_pid" 2>/dev/null || true
    wait "$uas_pid" 2>/dev/null || true
    sleep 0.5
    kill -INT "$ep_pid" 2>/dev/null || true
    wait "$ep_pid" 2>/dev/null || true
    rtpe_total >>"$d/rtpe_packets.txt"
    udp_snmp >>"$d/udp_snmp.txt"
    cp /proc/net/udp "$d/proc_net_udp.txt"
    sleep 1.2
    touch "$d/.stop"
    wait "$mon" 2>/dev/null || true
    kill "$kam" "$rtpe" 2>/dev/null || true
    wait "$kam" "$rtpe" 2>/dev/null || true
    sleep 2  # rtpengine's delete-delay and kamailio's children
    ROW_DIR=$d $PY peer_same "$d" "$cps" "$calls" "$HOLD_MEDIA" | tee -a "$WORK/steps.txt"
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r.get('sipp_rc')=='0' and r.get('failed',1)==0 and r.get('ok',0)==r['calls'] else 1)" "$d/row.json"
}
rtpe_total() {
    rtpengine-ctl -ip 127.0.0.1:2224 list totals 2>/dev/null |
        awk -F: '/Total relayed packets  /{gsub(/ /,"",$2); print $2; exit}'
}

# ---------------------------------------------------------------- run
echo "# bridge-bench $(date -u +%FT%TZ): $(nproc) CPUs, loadavg $(cut -d' ' -f1-3 /proc/loadavg), $SECS s of calls per step"
echo "# holdless: $HOLDLESS_BIN ($(stat -c %y "$HOLDLESS_BIN" | cut -d. -f1)); work dir $WORK"
echo "# latency with no relay: rtp-endpoint streams to itself (400 streams, 3 s)"
"$WORK/rtp-endpoint" -a 127.0.0.5 -A 50000 -b 127.0.0.6 -B 52000 -n 400 -s 2 -c 90 -t 4 -k 400 >"$WORK/probe.log" 2>&1
grep summary "$WORK/probe.log" | sed 's/^/  # /'
HL_FAIL_media=0 HL_FAIL_sig=0 KAM_FAIL_media=0 KAM_FAIL_sig=0
for s in "${STEPS[@]}"; do
    case $s in
        m*) mode=media; cps=${s#m} ;;
        s*) mode=sig; cps=${s#s} ;;
        *) cps=$s; if [ "$cps" -lt 500 ]; then mode=media; else mode=sig; fi ;;
    esac
    echo "== step $mode $cps calls/s, $((cps * SECS)) calls"
    v=HL_FAIL_$mode
    if [ "${!v}" = 1 ] && [ "${SKIP_AFTER_FAIL:-1}" = 1 ]; then
        echo "holdless $mode $cps: skipped (a lower step failed)"
    else
        quiet
        hl_step "$mode" "$cps" || printf -v "$v" 1
    fi
    v=KAM_FAIL_$mode
    if [ "${SKIP_PEER:-0}" = 1 ]; then
        :
    elif [ "${!v}" = 1 ] && [ "${SKIP_AFTER_FAIL:-1}" = 1 ]; then
        echo "kamailio $mode $cps: skipped (a lower step failed)"
    else
        quiet
        if [ "$mode" = media ] && [ "${PEER_LOAD:-same}" = same ]; then
            peer_same_step "$cps" || printf -v "$v" 1
        else
            peer_step "$mode" "$cps" || printf -v "$v" 1
        fi
    fi
done
$PY table "$WORK"
if ls "$WORK"/*/row.json >/dev/null 2>&1 && grep -qs '"media"' "$WORK"/*/row.json; then
    python3 -c "import matplotlib" 2>/dev/null || pip install -q matplotlib >"$WORK/pip.log" 2>&1 || true
    $PY plot "$WORK" || echo "no plot (matplotlib missing? see $WORK/pip.log)"
fi
echo
echo "results kept in $WORK (report.md, steps.txt, hl-*/ and kam-*/ per step, peer/results/)"
