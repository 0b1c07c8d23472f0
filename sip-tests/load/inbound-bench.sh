#!/usr/bin/env bash
# Inbound-transfer benchmark: holdless answering transferred callers itself (prompts, DTMF,
# callback registration), in one run beside a bridged-call step of bridge-bench.sh.
#
#  1. registration rate: SIPp callers (127.0.0.2) transfer to holdless's call target
#     (+15550001000, no bridge_to) at RATE calls/s for RATE_SECS s (-m RATE x RATE_SECS);
#     menu-caller hears the prompts and presses 1 (RFC 4733) 0.5 s in; holdless registers a
#     callback for the caller's number (unique per call, from the injection CSV), plays the
#     confirmation and sends BYE, SIPp answers 200. Registrations counted from /metrics.
#  2. concurrent callers in the menu: N calls set up at MENU_CPS/s, each held in the menu
#     MENU_HOLD s (prompts playing, the caller sending noise so in-band DTMF detection runs),
#     then 1 and the confirmation as above. holdless CPU and RSS per menu call over the
#     seconds when all N are in the menu; at the caller, prompt frames received / expected,
#     lost (sequence gaps) and late by more than 20 ms against the RTP timestamp schedule.
#  3. one bridged-call step, `bridge-bench.sh BRIDGE_SECS BRIDGE_STEP` (SKIP_PEER=1), for its
#     CPU per concurrent bridged call on the same box in the same run.
#
# usage: sip-tests/load/inbound-bench.sh [RATE_SECS=10]
# Environment: RATES ("50 100 150 200"), MENU_CALLS ("250 500 1000"), MENU_HOLD (20 s),
#   MENU_CPS (200), BRIDGE_STEP (m100), BRIDGE_SECS (15), SKIP_BRIDGE=1, QUICK=1 (5 s, rate 50,
#   80 menu calls held 8 s, no bridge step), QUIET_MAX (s to wait for a quiet box, 10),
#   HOLDLESS_BIN, KEEP_WORK=1, RUST_LOG (warn).
# Everything is on 127.0.0.0/8. Every SIPp run has -m, -timeout and timeout(1); holdless,
# menu-caller and the monitors are stopped by PID. Results: $WORK (printed at the end).
set -euo pipefail
SUITE=inbound-bench
source "$(dirname "$0")/../lib.sh"
require_tools
holdless_bin
LOAD=$SIPT_DIR/load
PY="python3 $LOAD/inbound-bench.py"
PEER_SRC=${PEER_DIR:-$REPO_ROOT/../shared/bench/peer}

if [ "${QUICK:-0}" = 1 ]; then
    D_SECS=5 D_RATES="50" D_MENU="80" D_HOLD=8 D_SKIPB=1
else
    D_SECS=10 D_RATES="50 100 150 200" D_MENU="250 500 1000" D_HOLD=20 D_SKIPB=0
fi
RATE_SECS=${1:-$D_SECS}
read -r -a RATE_STEPS <<<"${RATES:-$D_RATES}"
read -r -a MENU_STEPS <<<"${MENU_CALLS:-$D_MENU}"
MENU_HOLD=${MENU_HOLD:-$D_HOLD}
MENU_CPS=${MENU_CPS:-200}
SKIP_BRIDGE=${SKIP_BRIDGE:-$D_SKIPB}
export RUST_LOG=${RUST_LOG:-warn}
SIP_PORT=15300 HTTP_PORT=18300 UAC_PORT=25300 UAC_IP=127.0.0.2
EP_PORT=10000 EP_STEP=2 SIPP_MP=9000
KEY_MS=500              # rate steps: 1 is pressed this long after the first prompt frame
CONFIRM_S=6             # the confirmation prompt (registered.wav, 5.8 s) before holdless's BYE
MY_PIDS=()

bench_cleanup() {
    local p
    for p in "${MY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    on_exit
}
trap bench_cleanup EXIT
ulimit -n "$(ulimit -Hn)"

gcc -O2 -Wall -o "$WORK/menu-caller" "$LOAD/menu-caller.c" -lm
sed "s#@BYE_TIMEOUT_MS@#$(((MENU_HOLD + CONFIRM_S + 30) * 1000))#" "$LOAD/inbound-uac.xml" >"$WORK/inbound-uac.xml"

quiet() {  # wait (bounded) for the shared box to calm down
    [ -f "$PEER_SRC/quiet.py" ] || return 0
    python3 "$PEER_SRC/quiet.py" "${QUIET_MAX:-10}" 30 2>/dev/null | sed 's/^/  # /' || true
}
scrape() { curl -fsS --max-time 2 "http://127.0.0.1:$HTTP_PORT/metrics" >"$1" 2>/dev/null || true; }
udp_snmp() { awk '/^Udp:/{if(h){print $2,$3,$4,$5,$6,$7; exit} h=1}' /proc/net/snmp; }


hl_config() {  # FILE
    FLOOD_MAX=100000000 ACL_ALLOW='["127.0.0.0/8"]' write_config "$1"
    # (the last table write_config writes is the call target's: these keys go into it)
    cat >>"$1" <<EOF
organization = "bench"
contact_center = "sip:+15550009999@127.0.0.3:15390"   # never dialled: min_delay_secs below
caller_id = "+15550001000"
max_requested = 10000000         # no limit the bench could reach
pacing = 1000000                 # so the ECBT stays min_delay_secs whatever is queued
max_ecbt_secs = 7200
min_delay_secs = 3600            # no callback is launched during the bench
ivr = "menu"
not_offering = "reject"          # callbacks not offered: 480, a visible SIPp failure
reject_status = 480
input_timeout_secs = 60          # the menu waits for the key (the menu calls hold ~${MENU_HOLD} s)
menu_retries = 1
prompts = "$REPO_ROOT/configs/prompts"

[call_targets.hours]
time_zone = "$(noon_zone)"
daily = ["00:00-24:00"]

[call_targets.scheduled]         # as configs/holdless.toml: the menu offers slots too
enabled = true
slot_minutes = 30
max_per_slot = 5
days_ahead = 2

[call_targets.number_rules]
allowed = [{ country_code = "1", lengths = [10] }]
default_country_code = "1"

[calls]
max_calls = 100000
ring_timeout_secs = 30

[media]
address = "127.0.0.1"
port_min = 40000
port_max = 59999
timeout_secs = 30
latching = "strict"

[[organizations]]
id = "bench"
name = "Bench"
api_tokens = ["bench-token"]
api_allow = ["127.0.0.0/8"]
EOF
}

# ---------------------------------------------------------------- one step
# in_step KIND N CPS KEY_MS -- KIND rate: N calls at CPS/s, 1 pressed KEY_MS in;
#                              KIND menu: N calls at CPS/s, held KEY_MS in the menu.
in_step() {
    local kind=$1 n=$2 cps=$3 key_ms=$4 d gen to ep_n lim rc=0 i
    d=$WORK/$kind-$(printf %05d "$n"); mkdir -p "$d"
    gen=$(((n + cps - 1) / cps))
    to=$((gen + key_ms / 1000 + CONFIRM_S + 40))
    if [ "$kind" = rate ]; then ep_n=4000; lim=$((cps * (key_ms / 1000 + CONFIRM_S + 4) + 200)); else ep_n=$n; lim=$((n + 10)); fi
    hl_config "$d/holdless.toml"
    # unique caller numbers across the whole run: +1555 2xx xxxx, a block of 100000 per step
    STEP_NO=$((${STEP_NO:-0} + 1))
    $PY csv "$d/callers.csv" "$n" $((2000000 + STEP_NO * 100000)) "$EP_PORT" "$EP_STEP" "$ep_n"
    WORK=$d hl_start "$kind-$n" "$d/holdless.toml" "$SIP_PORT" "$HTTP_PORT" || return 1
    udp_snmp >"$d/udp_snmp.txt"
    scrape "$d/metrics-start.txt"
    grep -E '^Vm(RSS|HWM)' "/proc/$HL_PID/status" >"$d/rss-start.txt" || true
    "$WORK/menu-caller" -a "$UAC_IP" -A "$EP_PORT" -s "$EP_STEP" -n "$ep_n" -d "$key_ms" \
        -m $((key_ms / 1000 + CONFIRM_S + 20)) -t $((to + 15)) -o "$d/calls.csv" >"$d/caller.log" 2>&1 &
    local ep_pid=$!; MY_PIDS+=("$ep_pid")
    sleep 0.3
    python3 "$PEER_SRC/cpumon.py" "$d/cpu.csv" $((to + 20)) "$d/.stop" holdless="$HL_PID" menu_caller="$ep_pid" &
    local mon1=$!; MY_PIDS+=("$mon1")
    $PY mon "$d/metrics.csv" $((to + 20)) "$d/.stop" "$HTTP_PORT" "$HL_PID" &
    local mon2=$!; MY_PIDS+=("$mon2")
    (cd "$d" && exec timeout -k 5 $((to + 10)) sipp "127.0.0.1:$SIP_PORT" -sf "$WORK/inbound-uac.xml" \
        -s +15550001000 -i "$UAC_IP" -p "$UAC_PORT" -mi "$UAC_IP" -mp "$SIPP_MP" -inf "$d/callers.csv" \
        -r "$cps" -rp 1000 -m "$n" -l "$lim" -timeout "$to" -timeout_error -nostdin \
        -trace_err -error_file "$d/uac_errors.log" -trace_stat -stf "$d/uac_stat.csv" -fd 1 \
        -trace_rtt -rtt_freq 1 >"$d/uac.screen" 2>&1) &
    local uac_pid=$!; MY_PIDS+=("$uac_pid")
    wait "$uac_pid" || rc=$?
    echo "$rc" >"$d/uac.rc"
    # let the last calls' streams end (menu-caller ends a call 2 s after holdless goes quiet)
    for i in $(seq 40); do
        [ "$(tail -n 1 "$d/caller.log" | awk '{print $2}')" = 0 ] && break
        sleep 0.1
    done
    sleep 1
    kill -INT "$ep_pid" 2>/dev/null || true
    wait "$ep_pid" 2>/dev/null || true
    udp_snmp >>"$d/udp_snmp.txt"
    sleep 1.2   # one more monitor sample
    scrape "$d/metrics-end.txt"
    touch "$d/.stop"
    wait "$mon1" "$mon2" 2>/dev/null || true
    if ! kill -0 "$HL_PID" 2>/dev/null; then echo "holdless died during the step (see $HL_LOG)" >"$d/died.txt"; fi
    WORK=$d hl_stop >"$d/stop.txt" || true
    grep -c -E ' (WARN|ERROR) ' "$d/holdless-$kind-$n.log" >"$d/log-warnings.txt" 2>/dev/null || true
    $PY step "$d" "$kind" "$n" "$cps" "$key_ms" | tee -a "$WORK/steps.txt"
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r.get('clean') else 1)" "$d/row.json"
}

# ---------------------------------------------------------------- run
echo "# inbound-bench $(date -u +%FT%TZ): $(nproc) CPUs, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# holdless: $HOLDLESS_BIN ($(stat -c %y "$HOLDLESS_BIN" | cut -d. -f1)); work dir $WORK"
echo "# rate steps: ${RATE_STEPS[*]} calls/s x $RATE_SECS s; menu steps: ${MENU_STEPS[*]} calls at $MENU_CPS/s held $MENU_HOLD s"
FAILED_RATE=0
for r in "${RATE_STEPS[@]}"; do
    echo "== registration rate $r calls/s, $((r * RATE_SECS)) calls"
    if [ "$FAILED_RATE" = 1 ] && [ "${SKIP_AFTER_FAIL:-1}" = 1 ]; then echo "skipped (a lower step failed)"; continue; fi
    quiet
    in_step rate $((r * RATE_SECS)) "$r" "$KEY_MS" || FAILED_RATE=1
done
for n in "${MENU_STEPS[@]}"; do
    echo "== $n concurrent callers in the menu for $MENU_HOLD s"
    quiet
    in_step menu "$n" "$MENU_CPS" $((MENU_HOLD * 1000)) || true
done
if [ "$SKIP_BRIDGE" != 1 ]; then
    echo "== bridged calls: bridge-bench.sh ${BRIDGE_SECS:-15} ${BRIDGE_STEP:-m100} (SKIP_PEER=1)"
    SKIP_PEER=1 HOLDLESS_BIN=$HOLDLESS_BIN RUST_LOG=$RUST_LOG bash "$LOAD/bridge-bench.sh" "${BRIDGE_SECS:-15}" "${BRIDGE_STEP:-m100}" \
        >"$WORK/bridge.out" 2>&1 || true
    bdir=$(sed -n 's/^results kept in \([^ ]*\) .*/\1/p' "$WORK/bridge.out" | tail -n 1)
    if [ -n "$bdir" ] && [ -d "$bdir" ]; then
        mv "$bdir" "$WORK/bridge" && echo "  # bridge-bench work dir moved to $WORK/bridge"
        grep -E '^holdless +media' "$WORK/bridge.out" | sed 's/^/  /' || true
    else
        echo "  bridge-bench.sh gave no result (see $WORK/bridge.out)"; tail -n 5 "$WORK/bridge.out"
    fi
fi
$PY table "$WORK" "$MENU_HOLD"
echo
echo "results kept in $WORK (report.md, steps.txt, rate-*/ and menu-*/ per step, bridge/)"
