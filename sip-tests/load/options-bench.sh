#!/usr/bin/env bash
# OPTIONS transactions per second over UDP: SIPp (127.0.0.2) -> holdless
# (127.0.0.1:15100), one rate step after another.
#
# usage: options-bench.sh [SECONDS_PER_STEP] [RATE...]
#        default: 5 s per step, rates 2000 5000 10000 20000 (OPTIONS/s)
# Each step sends exactly RATE*SECONDS OPTIONS (-m) and is hard-stopped after
# SECONDS+20 s (-timeout -timeout_error, and timeout(1)). Packets go to
# loopback only. Environment: HOLDLESS_BIN, KEEP_WORK=1 (keep the logs).
set -euo pipefail
SUITE=options-bench
source "$(dirname "$0")/../lib.sh"
require_tools
holdless_bin

SECS=${1:-5}
shift || true
RATES=("$@")
[ "${#RATES[@]}" -gt 0 ] || RATES=(2000 5000 10000 20000)
SIP_PORT=15100 HTTP_PORT=18100
HZ=$(getconf CLK_TCK)

# a flood limit far above any step, and the whole 127/8 allowed
FLOOD_MAX=100000000 ACL_ALLOW='["127.0.0.0/8"]' write_config "$WORK/bench.toml"

ticks() {  # PID -> utime+stime of all its threads, in clock ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
hwm_kb() {  # PID -> peak resident set (VmHWM) in kB
    awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"
}
udp_rcvbuf_errors() {  # box-wide UDP receive-buffer drops so far
    awk '/^Udp:/ { if (h) { print $6; exit } h = 1 }' /proc/net/snmp
}
port_drops() {  # PORT -> drops counted on the UDP sockets bound to that local port
    awk -v p="$(printf '%04X' "$1")" 'NR > 1 { split($2, a, ":"); if (a[2] == p) d += $NF }
        END { print d + 0 }' /proc/net/udp /proc/net/udp6
}
hl_dropped() {  # messages holdless discarded (/metrics), not counting absorbed
                # request retransmissions (what="retransmission"); or "?"
    local m
    m=$(curl -fsS --max-time 2 "http://127.0.0.1:$HTTP_PORT/metrics" 2>/dev/null) || { echo "?"; return; }
    awk '/^holdless_sip_dropped_total/ && !/"retransmission"/ { s += $NF } END { print s + 0 }' <<<"$m"
}
stat_col() {  # CSV NAME -> that column of the last line of a SIPp -trace_stat file
    awk -F';' -v n="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i }
        END { print (c ? $c : "?") }' "$1"
}

echo "holdless: $HOLDLESS_BIN"
echo "box: $(nproc) CPUs, loadavg $(cut -d' ' -f1-3 /proc/loadavg) before the run"
hl_start bench "$WORK/bench.toml" "$SIP_PORT" "$HTTP_PORT" || { suite_finish; exit 1; }

printf '\n%-7s %-7s %-7s %-6s %-7s %-9s %-8s %-7s %-7s %-8s %-8s %-8s %-8s %-8s %-8s\n' \
    rate/s calls ok failed retrans achieved hl_cpu_s hl_%cpu us/msg sipp_cpu load1 VmHWM_MB hl_drop hl_mdrop sipp_drop
BEST=0
for rate in "${RATES[@]}"; do
    calls=$((rate * SECS))
    name=step-$rate
    hl_alive "$name" || break
    t0=$(ticks "$HL_PID") e0=$(udp_rcvbuf_errors) d0=$(port_drops "$SIP_PORT") m0=$(hl_dropped) w0=$(date +%s.%N)
    sipp_cpu=$( (cd "$WORK" && timeout -k 5 $((SECS + 25)) sipp 127.0.0.1:$SIP_PORT \
        -sf "$SIPT_DIR/load/options-uac.xml" -i 127.0.0.2 \
        -r "$rate" -rp 1000 -m "$calls" -l $((rate > 1000 ? rate : 1000)) \
        -timeout $((SECS + 20))s -timeout_error -nostdin -default_behaviors none \
        -trace_err -error_file "$WORK/$name.err" \
        -trace_stat -stf "$WORK/$name.csv" -fd 1 >"$WORK/$name.out" 2>&1
        echo "rc=$?" >"$WORK/$name.rc"; times) | awk 'NR == 2 {
            split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.2f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }')
    w1=$(date +%s.%N) t1=$(ticks "$HL_PID") e1=$(udp_rcvbuf_errors) d1=$(port_drops "$SIP_PORT") m1=$(hl_dropped)
    load1=$(cut -d' ' -f1 /proc/loadavg)
    mdrop="?"
    [ "$m0" = "?" ] || [ "$m1" = "?" ] || mdrop=$((m1 - m0))
    rc=$(sed 's/rc=//' "$WORK/$name.rc")
    ok=$(stat_col "$WORK/$name.csv" 'SuccessfulCall(C)')
    failed=$(stat_col "$WORK/$name.csv" 'FailedCall(C)')
    retrans=$(stat_col "$WORK/$name.csv" 'Retransmissions(C)')
    created=$(stat_col "$WORK/$name.csv" 'OutgoingCall(C)')
    awk -v rate="$rate" -v calls="$calls" -v ok="$ok" -v failed="$failed" -v re="$retrans" \
        -v created="$created" \
        -v w0="$w0" -v w1="$w1" -v hz="$HZ" -v dt="$((t1 - t0))" -v sipp="$sipp_cpu" \
        -v load1="$load1" \
        -v hwm="$(hwm_kb "$HL_PID")" -v hd="$((d1 - d0))" -v md="$mdrop" -v rb="$((e1 - e0))" 'BEGIN {
        wall = w1 - w0; cpu = dt / hz; msgs = created + re
        printf "%-7d %-7d %-7s %-6s %-7s %-9.0f %-8.2f %-7.0f %-7.1f %-8.2f %-8s %-8.1f %-8d %-8s %-8d\n",
            rate, calls, ok, failed, re, ok / wall, cpu, cpu / wall * 100,
            (msgs > 0 ? cpu * 1e6 / msgs : 0), sipp, load1, hwm / 1024, hd, md, rb - hd }'
    if [ "$rc" = 0 ] && [ "$failed" = 0 ] && [ "$ok" = "$calls" ]; then
        BEST=$rate
    else
        echo "        (step $rate/s: sipp exit $rc; see $WORK/$name.err)"
        KEEP_WORK=1
    fi
    sleep 2
done

cat <<EOT

columns: ok/failed/retrans = SIPp's counts (retrans = OPTIONS SIPp had to resend);
achieved = successful OPTIONS per wall second of the step; hl_cpu_s = holdless
user+sys CPU during the step (/proc/PID/stat), hl_%cpu = that in % of one core;
us/msg = holdless CPU per OPTIONS received (first sends + retransmissions);
sipp_cpu = SIPp's own user+sys CPU seconds; load1 = 1-minute load average at
the end of the step (well above what holdless+SIPp explain = other jobs running,
a noisy result: the box has 2 cores); VmHWM_MB = holdless peak RSS so far;
hl_drop = OPTIONS dropped by the kernel because holdless's UDP socket buffer was
full; hl_mdrop = messages holdless itself discarded (holdless_sip_dropped_total
in /metrics, e.g. engine queue full, but not absorbed retransmissions); sipp_drop = the other UDP receive-buffer
drops on the box (mostly 200s lost at SIPp's socket).
EOT
echo
echo "highest rate with zero failures: $BEST OPTIONS/s (${SECS} s steps)"
hl_stop
suite_finish
