#!/usr/bin/env bash
# Dialler benchmark: callbacks completed per second end to end, beside a bridged-call step of
# bridge-bench.sh in the same run, and the dialler with 100,000 callbacks pending.
#
# Each step (pacing P, M = P x ROUNDS callbacks):
#  1. a holdless that dials nothing (calls.dial_callbacks = false) takes M callbacks (or
#     PENDING for the backlog step) through POST request_callback (wrk, api-register.lua;
#     max_requested = that count, so the queue holds exactly it);
#     its RSS and idle CPU with them pending are noted; it stops;
#  2. the customer (SIPp dialler-customer.xml behind the outbound trunk, 127.0.0.2) and the
#     contact center (SIPp dialler-agent.xml, 127.0.0.3) are started, with callback-party
#     owning both sides' RTP ports;
#  3. holdless starts again on the same store with dialling on: it restores the queue and
#     dials P callbacks at a time: the customer rings 0-2 s, answers; holdless plays the
#     callback prompt; callback-party presses 1 (RFC 4733) KEY_MS in; holdless calls the
#     contact center, which answers at once; holdless joins the legs and relays G.711 both
#     ways (20 ms frames, timestamped); the agent hangs up after CALL_SECS +- 2 s; holdless
#     ends the customer leg and records the attempt.
#  The step ends when M attempts are recorded (holdless_callback_attempts_total), or for the
#  backlog step when M have completed (holdless is then stopped with ~PENDING still queued).
#
# usage: sip-tests/load/dialler-bench.sh [ROUNDS=4] [PACING...]      default pacing: 100 200 400
# Environment: CALL_SECS (8: agent talk time after its answer, uniform +-2 s; as bridge-bench's
#   8 s calls), KEY_MS (300), PENDING (100000; 0 skips the backlog step), PENDING_PACING (100),
#   PENDING_CALLS (2 x PENDING_PACING), BRIDGE_STEP (m25: 25 calls/s of 8 s calls = 200 at
#   once, like pacing 200), BRIDGE_SECS (15), SKIP_BRIDGE=1, SKIP_AFTER_FAIL=0, QUICK=1
#   (rounds 2, pacing 20, CALL_SECS 3, backlog 10000 at pacing 20, no bridge step), QUIET_MAX (10),
#   HOLDLESS_BIN, RUST_LOG (warn).
# Everything is on 127.0.0.0/8. Every SIPp and wrk run has -m/-d, -timeout and timeout(1);
# holdless, callback-party and the monitors are stopped by PID. Results: $WORK (printed).
set -euo pipefail
SUITE=dialler-bench
source "$(dirname "$0")/../lib.sh"
require_tools
holdless_bin
LOAD=$SIPT_DIR/load
PY="python3 $LOAD/dialler-bench.py"
PEER_SRC=${PEER_DIR:-$REPO_ROOT/../shared/bench/peer}

if [ "${QUICK:-0}" = 1 ]; then
    D_ROUNDS=2 D_PACING="20" D_CALL=3 D_PENDING=10000 D_PP=20 D_SKIPB=1
else
    D_ROUNDS=4 D_PACING="100 200 400" D_CALL=8 D_PENDING=100000 D_PP=100 D_SKIPB=0
fi
ROUNDS=${1:-$D_ROUNDS}
shift || true
PACINGS=("$@")
[ "${#PACINGS[@]}" -gt 0 ] || read -r -a PACINGS <<<"$D_PACING"
CALL_SECS=${CALL_SECS:-$D_CALL}
KEY_MS=${KEY_MS:-300}
PENDING=${PENDING:-$D_PENDING}
PENDING_PACING=${PENDING_PACING:-$D_PP}
PENDING_CALLS=${PENDING_CALLS:-$((2 * PENDING_PACING))}
SKIP_BRIDGE=${SKIP_BRIDGE:-$D_SKIPB}
export RUST_LOG=${RUST_LOG:-warn}
SIP_PORT=15402 HTTP_PORT=18402   # (not 10004 + 4k: callback-party owns those on 127.0.0.2)
CUST_IP=127.0.0.2 CUST_PORT=15490 CUST_MP=10000
AGENT_IP=127.0.0.3 AGENT_PORT=15491 AGENT_MP=30000
MY_PIDS=()

bench_cleanup() {
    local p
    for p in "${MY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    on_exit
}
trap bench_cleanup EXIT
ulimit -n "$(ulimit -Hn)"

if ! command -v wrk >/dev/null 2>&1; then
    echo "wrk not found: installing the Debian package"
    apt-get install -y wrk >"$WORK/apt.log" 2>&1 || { apt-get update >>"$WORK/apt.log" 2>&1 && apt-get install -y wrk >>"$WORK/apt.log" 2>&1; }
fi
gcc -O2 -Wall -o "$WORK/callback-party" "$LOAD/callback-party.c" -lm
# a customer waits for holdless's BYE at most the whole call plus a margin
sed "s#@BYE_TIMEOUT_MS@#$(((CALL_SECS + 60) * 1000))#" "$LOAD/dialler-customer.xml" >"$WORK/customer.xml"
# the customer rings 0-2 s (uniform) before answering, the agent talks CALL_SECS +- 2 s, so
# the pacing's waves of launches spread out after the first
python3 - "$WORK/customer.xml" "$LOAD/dialler-agent.xml" "$WORK/agent.xml" "$CALL_SECS" <<'EOF'
import sys
c, a, out, secs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = open(c).read().replace('<recv request="INVITE" crlf="true"></recv>',
    '<recv request="INVITE" crlf="true"></recv>\n\n  <pause distribution="uniform" min="0" max="2000"/>', 1)
open(c, "w").write(s)
lo, hi = max(1000, secs * 1000 - 2000), secs * 1000 + 2000
s = open(a).read().replace("<pause/>", f'<pause distribution="uniform" min="{lo}" max="{hi}"/>', 1)
open(out, "w").write(s)
EOF
AGENT_FRAMES=$(((CALL_SECS + 10) * 50))   # at most: an agent talks until the customer's audio stops

quiet() {
    [ -f "$PEER_SRC/quiet.py" ] || return 0
    python3 "$PEER_SRC/quiet.py" "${QUIET_MAX:-10}" 30 2>/dev/null | sed 's/^/  # /' || true
}
scrape() { curl -fsS --max-time 2 "http://127.0.0.1:$HTTP_PORT/metrics" >"$1" 2>/dev/null || true; }
udp_snmp() { awk '/^Udp:/{if(h){print $2,$3,$4,$5,$6,$7; exit} h=1}' /proc/net/snmp; }


hl_config() {  # FILE PACING DIAL(true|false) QUEUE -- the store is FILE's data-<name> directory
    FLOOD_MAX=100000000 ACL_ALLOW='["127.0.0.0/8"]' write_config "$1"
    cat >>"$1" <<EOF
organization = "bench"
contact_center = "sip:+15550009999@$AGENT_IP:$AGENT_PORT"
caller_id = "+15550001000"
first_party = "customer"
pacing = $2                      # callbacks in progress at once: the step's knob
min_delay_secs = 0
max_requested = $4               # the step's callbacks exactly: registrations beyond are refused
max_ecbt_secs = 31536000         # every registration is offered, however long the queue
prompts = "$REPO_ROOT/configs/prompts"

[call_targets.hours]
time_zone = "$(noon_zone)"
daily = ["00:00-24:00"]

[call_targets.number_rules]
allowed = [{ country_code = "1", lengths = [10] }]
default_country_code = "1"

[call_targets.dialler]
customer_ring_timeout_secs = 30
agent_ring_timeout_secs = 30
press_timeout_secs = 10

[calls]
outbound_trunk = "sip:$CUST_IP:$CUST_PORT"
dial_callbacks = $3
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

[[widgets]]
id = "bench-widget"
call_target = "billing"
EOF
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---------------------------------------------------------------- one step
# dl_step NAME PACING CALLS BACKLOG -- BACKLOG 0: CALLS callbacks registered, all dialled;
# BACKLOG N: N registered, holdless stopped once CALLS have completed.
dl_step() {
    local name=$1 pacing=$2 calls=$3 backlog=$4 d reg to i rc=0 c0 c1 r0 r1 sipp_m
    d=$WORK/$name; mkdir -p "$d"
    reg=$calls; [ "$backlog" -gt 0 ] && reg=$backlog
    echo "$name pacing=$pacing calls=$calls registered=$reg" >"$d/step.txt"
    # -- phase A: registration on a node that dials nothing (same config file, so the same
    #    store, as phase B)
    hl_config "$d/holdless.toml" "$pacing" false "$reg"
    WORK=$d hl_start "$name-register" "$d/holdless.toml" "$SIP_PORT" "$HTTP_PORT" || return 1
    r0=$(rss_kb "$HL_PID")
    local t_reg=$SECONDS wrk_pid
    # api-register.lua registers a new number per request; max_requested = the count wanted
    # refuses any beyond it (maxRequested), and wrk is stopped by PID once they are in
    API_TOKEN=bench-token timeout -k 5 $((reg / 500 + 60)) \
        wrk -t1 -c16 -d$((reg / 500 + 30))s -s "$LOAD/api-register.lua" \
        "http://127.0.0.1:$HTTP_PORT/api/widget/bench-widget/request_callback" >"$d/wrk.out" 2>&1 &
    wrk_pid=$!; MY_PIDS+=("$wrk_pid")
    for i in $(seq $((4 * (reg / 500 + 60)))); do
        scrape "$d/metrics-registered.txt"
        [ "$($PY pending "$d/metrics-registered.txt")" -ge "$reg" ] && break
        kill -0 "$wrk_pid" 2>/dev/null || break
        sleep 0.25
    done
    kill -INT "$wrk_pid" 2>/dev/null || true
    wait "$wrk_pid" 2>/dev/null || true
    sleep 0.5
    scrape "$d/metrics-registered.txt"
    echo "registration_s $((SECONDS - t_reg))" >>"$d/step.txt"
    r1=$(rss_kb "$HL_PID"); c0=$(cpu_ticks "$HL_PID"); sleep 5; c1=$(cpu_ticks "$HL_PID")
    echo "rss_before_kb $r0" >>"$d/step.txt"
    echo "rss_pending_kb $r1" >>"$d/step.txt"
    echo "idle_cpu_ticks_5s $((c1 - c0))" >>"$d/step.txt"
    WORK=$d hl_stop >"$d/stop-register.txt" || true
    # -- phase B: the parties, then holdless dialling
    to=$((calls / pacing * (CALL_SECS + 8) + 60))
    sipp_m=$calls; [ "$backlog" -gt 0 ] && sipp_m=$((calls + pacing))
    "$WORK/callback-party" -a "$CUST_IP" -A $((CUST_MP + 4)) -b "$AGENT_IP" -B $((AGENT_MP + 4)) -n 2500 -s 4 \
        -d "$KEY_MS" -f "$AGENT_FRAMES" -m $((CALL_SECS + 40)) -t $((to + 30)) -o "$d/calls.csv" \
        >"$d/party.log" 2>&1 &
    local party=$!; MY_PIDS+=("$party")
    (cd "$d" && exec timeout -k 5 $((to + 20)) sipp -sf "$WORK/customer.xml" -i "$CUST_IP" -p "$CUST_PORT" \
        -mi "$CUST_IP" -mp "$CUST_MP" -m "$sipp_m" -timeout $((to + 10)) -nostdin \
        -trace_err -error_file "$d/cust_errors.log" -trace_stat -stf "$d/cust_stat.csv" -fd 1 \
        -trace_rtt -rtt_freq 1 >"$d/cust.screen" 2>&1) &
    local cust=$!; MY_PIDS+=("$cust")
    (cd "$d" && exec timeout -k 5 $((to + 20)) sipp -sf "$WORK/agent.xml" -i "$AGENT_IP" -p "$AGENT_PORT" \
        -mi "$AGENT_IP" -mp "$AGENT_MP" -m "$sipp_m" -timeout $((to + 10)) -nostdin \
        -trace_err -error_file "$d/agent_errors.log" -trace_stat -stf "$d/agent_stat.csv" -fd 1 \
        >"$d/agent.screen" 2>&1) &
    local agent=$!; MY_PIDS+=("$agent")
    sleep 0.5
    cp "$d/holdless.toml" "$d/register.toml"
    hl_config "$d/holdless.toml" "$pacing" true "$reg"
    udp_snmp >"$d/udp_snmp.txt"
    WORK=$d hl_start "$name-dial" "$d/holdless.toml" "$SIP_PORT" "$HTTP_PORT" || return 1
    python3 "$PEER_SRC/cpumon.py" "$d/cpu.csv" $((to + 30)) "$d/.stop" holdless="$HL_PID" party="$party" \
        sipp_cust="$cust" sipp_agent="$agent" &
    local mon1=$!; MY_PIDS+=("$mon1")
    $PY mon "$d/metrics.csv" $((to + 30)) "$d/.stop" "$HTTP_PORT" "$HL_PID" &
    local mon2=$!; MY_PIDS+=("$mon2")
    # until CALLS attempts are recorded (backlog: completed), bounded
    $PY wait "$HTTP_PORT" "$calls" "$([ "$backlog" -gt 0 ] && echo completed || echo all)" "$to" || rc=$?
    echo "wait_rc $rc" >>"$d/step.txt"
    scrape "$d/metrics-end.txt"
    if [ "$backlog" -gt 0 ]; then
        grep -E '^Vm(RSS|HWM)' "/proc/$HL_PID/status" >"$d/status-end.txt" || true
        WORK=$d hl_stop >"$d/stop.txt" || true
    fi
    # the parties: SIPp ends after its calls (4 s timewait), then callback-party
    for i in $(seq 150); do kill -0 "$cust" 2>/dev/null || kill -0 "$agent" 2>/dev/null || break; sleep 0.1; done
    kill -INT "$cust" "$agent" 2>/dev/null || true
    wait "$cust" 2>/dev/null && echo 0 >"$d/cust.rc" || echo $? >"$d/cust.rc"
    wait "$agent" 2>/dev/null && echo 0 >"$d/agent.rc" || echo $? >"$d/agent.rc"
    sleep 1
    kill -INT "$party" 2>/dev/null || true
    wait "$party" 2>/dev/null || true
    udp_snmp >>"$d/udp_snmp.txt"
    sleep 0.6
    touch "$d/.stop"
    wait "$mon1" "$mon2" 2>/dev/null || true
    if [ "$backlog" -eq 0 ]; then
        grep -E '^Vm(RSS|HWM)' "/proc/$HL_PID/status" >"$d/status-end.txt" || true
        scrape "$d/metrics-end.txt"
        WORK=$d hl_stop >"$d/stop.txt" || true
    fi
    grep -c -E ' (WARN|ERROR) ' "$d/holdless-$name-dial.log" >"$d/log-warnings.txt" 2>/dev/null || true
    $PY step "$d" "$pacing" "$calls" "$backlog" "$CALL_SECS" | tee -a "$WORK/steps.txt"
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r.get('clean') else 1)" "$d/row.json"
}

# ---------------------------------------------------------------- run
echo "# dialler-bench $(date -u +%FT%TZ): $(nproc) CPUs, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# holdless: $HOLDLESS_BIN ($(stat -c %y "$HOLDLESS_BIN" | cut -d. -f1)); work dir $WORK"
echo "# pacing steps: ${PACINGS[*]} x $ROUNDS rounds; agent talks ${CALL_SECS} +- 2 s; key after ${KEY_MS} ms; backlog step: ${PENDING} pending, pacing ${PENDING_PACING}, ${PENDING_CALLS} callbacks"
FAILED=0
for p in "${PACINGS[@]}"; do
    echo "== pacing $p: $((p * ROUNDS)) callbacks"
    if [ "$FAILED" = 1 ] && [ "${SKIP_AFTER_FAIL:-1}" = 1 ]; then echo "skipped (a lower step failed)"; continue; fi
    quiet
    dl_step "pacing-$(printf %04d "$p")" "$p" $((p * ROUNDS)) 0 || FAILED=1
done
if [ "$PENDING" -gt 0 ]; then
    echo "== $PENDING pending, pacing $PENDING_PACING: $PENDING_CALLS callbacks dialled from the queue"
    quiet
    dl_step "backlog-$PENDING" "$PENDING_PACING" "$PENDING_CALLS" "$PENDING" || true
fi
if [ "$SKIP_BRIDGE" != 1 ]; then
    echo "== bridged calls: bridge-bench.sh ${BRIDGE_SECS:-15} ${BRIDGE_STEP:-m25} (SKIP_PEER=1)"
    SKIP_PEER=1 HOLDLESS_BIN=$HOLDLESS_BIN RUST_LOG=$RUST_LOG bash "$LOAD/bridge-bench.sh" "${BRIDGE_SECS:-15}" "${BRIDGE_STEP:-m25}" \
        >"$WORK/bridge.out" 2>&1 || true
    bdir=$(sed -n 's/^results kept in \([^ ]*\) .*/\1/p' "$WORK/bridge.out" | tail -n 1)
    if [ -n "$bdir" ] && [ -d "$bdir" ]; then
        mv "$bdir" "$WORK/bridge" && echo "  # bridge-bench work dir moved to $WORK/bridge"
    else
        echo "  bridge-bench.sh gave no result (see $WORK/bridge.out)"; tail -n 5 "$WORK/bridge.out"
    fi
fi
$PY table "$WORK"
echo
echo "results kept in $WORK (report.md, steps.txt, pacing-*/ and backlog-*/ per step, bridge/)"
