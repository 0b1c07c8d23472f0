#!/usr/bin/env bash
# Soak: every flow at once for a bounded time, then a drain, then proof that nothing leaked.
#
# For SECS seconds, against one holdless (release build, SQLite):
#   - bridged calls: SIPp caller (127.0.0.6) -> holdless -> SIPp contact center (127.0.0.3),
#     8 s calls with G.711 both ways (bridge/uac-call.xml, bridge/uas-answer.xml), BRIDGE_CPS/s;
#   - inbound transfers through the menu: SIPp callers (127.0.0.7, UUI, unique numbers) hear
#     the prompt and press 1 (RFC 4733), holdless registers a customer-first callback and
#     hangs up (inbound/uac-keys.xml), MENU_CPS/s;
#   - those callbacks dialled customer first: the customer (127.0.0.2, dialler/uas-customer.xml)
#     presses 1, the agent (127.0.0.4, dialler/uas-agent.xml) talks 8 s and hangs up;
#   - API registrations on an agent-first call target, API_REG/s, dialled agent first: the
#     agent (127.0.0.5, uas-agent-whisper.xml) accepts the whisper with 1, the customer
#     (127.0.0.9, uas-customer-talk.xml) is joined; status polls, API_POLL/s;
#   - injected faults: malformed SIP datagrams from 127.0.0.8 (BAD_SIP/s) and malformed API
#     requests (BAD_API/s): each must get a 4xx (or be dropped), never a 5xx.
# Then the loads stop and holdless drains (every callback dialled, every call ended, every
# transaction past its timers; at most DRAIN_MAX s). It fails on: a failed call at any SIPp
# (none is injected), a callback attempt that did not complete, a 5xx or no answer from the
# API, a malformed request not answered 4xx, RSS grown by more than RSS_BOUND_MB between the
# end of the warm-up (WARMUP s) and the end of the load, file descriptors not back to where
# they were, and calls, transactions, media sessions or callbacks left after the drain.
#
# The default rates are 60 % of the mix's capacity on this 2-core box beside its load
# generators, measured by soak-capacity.sh (the mix at 4x its base rates of bridged 10/s,
# menu 3/s, API 3/s, polls 30/s passed; at 5x an attempt failed): 2.4x the base.
#
# usage: sip-tests/load/soak.sh [SECS=600]
# Environment: BRIDGE_CPS (24), MENU_CPS (7), API_REG (7), API_POLL (72), BAD_SIP (20),
#   BAD_API (5), WARMUP (SECS/3), RSS_BOUND_MB (16), DRAIN_MAX (180), HOLDLESS_BIN,
#   RUST_LOG (warn). Everything is on 127.0.0.0/8; every SIPp has -m and timeout(1); every
#   process started here is stopped by PID. Results: $WORK (printed at the end).
set -euo pipefail
SUITE=soak
source "$(dirname "$0")/../lib.sh"
require_tools
holdless_bin
LOAD=$SIPT_DIR/load
PY="python3 $LOAD/soak.py"

SECS=${1:-600}
BRIDGE_CPS=${BRIDGE_CPS:-24}
MENU_CPS=${MENU_CPS:-7}
API_REG=${API_REG:-7}
API_POLL=${API_POLL:-72}
BAD_SIP=${BAD_SIP:-20}
BAD_API=${BAD_API:-5}
WARMUP=${WARMUP:-$((SECS / 3))}
RSS_BOUND_MB=${RSS_BOUND_MB:-16}
DRAIN_MAX=${DRAIN_MAX:-180}
export RUST_LOG=${RUST_LOG:-warn}
SIP_PORT=15500 HTTP_PORT=18500
CUST_IP=127.0.0.2 CUST_PORT=15590 CUST_MP=36000
BCC_IP=127.0.0.3 BCC_PORT=15591 BCC_MP=20000
AGENT_IP=127.0.0.4 AGENT_PORT=15592 AGENT_MP=36100
WAGENT_IP=127.0.0.5 WAGENT_PORT=15593 WAGENT_MP=36200
BUAC_IP=127.0.0.6 BUAC_PORT=15594 BUAC_MP=10000
MUAC_IP=127.0.0.7 MUAC_PORT=15595 MUAC_MP=36300
WCUST_IP=127.0.0.9 WCUST_PORT=15596 WCUST_MP=36400
MY_PIDS=()

soak_cleanup() {
    local p
    for p in "${MY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    on_exit
}
trap soak_cleanup EXIT
ulimit -n "$(ulimit -Hn)"


# ---------------------------------------------------------------- config
CFG=$WORK/soak.toml
FLOOD_MAX=100000000 ACL_ALLOW='["127.0.0.0/8"]' write_config "$CFG"
ZONE=$(noon_zone)
cat >>"$CFG" <<EOF
organization = "soak"
contact_center = "sip:+15550009998@$AGENT_IP:$AGENT_PORT"
caller_id = "+15550001000"
first_party = "customer"
pacing = 200
min_delay_secs = 0
max_requested = 100000
max_ecbt_secs = 31536000
prompts = "$REPO_ROOT/configs/prompts"
[call_targets.hours]
time_zone = "$ZONE"
daily = ["00:00-24:00"]
[call_targets.number_rules]
allowed = [{ country_code = "1", lengths = [10] }]
default_country_code = "1"
[call_targets.dialler]
customer_trunk = "customers"
customer_ring_timeout_secs = 30
agent_ring_timeout_secs = 30
press_timeout_secs = 10

[[call_targets]]
id = "agentfirst"
name = "Agent first"
numbers = ["+15550001002"]
organization = "soak"
contact_center = "sip:+15550009997@$WAGENT_IP:$WAGENT_PORT"
caller_id = "+15550001002"
first_party = "agent"
pacing = 200
min_delay_secs = 0
max_requested = 100000
max_ecbt_secs = 31536000
prompts = "$REPO_ROOT/configs/prompts"
[call_targets.hours]
time_zone = "$ZONE"
daily = ["00:00-24:00"]
[call_targets.number_rules]
allowed = [{ country_code = "1", lengths = [10] }]
default_country_code = "1"
[call_targets.dialler]
customer_trunk = "agentfirst-customers"
customer_ring_timeout_secs = 30
agent_ring_timeout_secs = 30
press_timeout_secs = 10
whisper = true

[[call_targets]]
id = "bridged"
name = "Bridged"
numbers = ["+15550001001"]
bridge_to = "sip:+15550009999@$BCC_IP:$BCC_PORT"

[[trunks]]
id = "customers"
uri = "sip:$CUST_IP:$CUST_PORT"
[[trunks]]
id = "agentfirst-customers"
uri = "sip:$WCUST_IP:$WCUST_PORT"

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
id = "soak"
name = "Soak"
api_tokens = ["soak-token"]
api_allow = ["127.0.0.0/8"]

[[widgets]]
id = "agentfirst-w"
call_target = "agentfirst"
EOF

$PY csv "$WORK/callers.csv" $((MENU_CPS * SECS + 10))
cp /usr/share/sip-tester/dtmf_2833_1.pcap "$WORK/keys.pcap"

# ---------------------------------------------------------------- run
hl_start soak "$CFG" "$SIP_PORT" "$HTTP_PORT" || { suite_finish; exit 1; }
FD0=$(ls "/proc/$HL_PID/fd" | wc -l)
rm -f "$WORK/stop"
$PY mon "$WORK/mon.csv" "$WORK/stop" "$HTTP_PORT" "$HL_PID" &
MY_PIDS+=("$!")

# uas NAME XML IP PORT MEDIA CALLS [sipp args...] -- a SIPp UAS in the background
uas() {
    local name=$1 xml=$2 ip=$3 port=$4 mp=$5 n=$6
    shift 6
    (cd "$WORK" && exec timeout -k 5 $((SECS + DRAIN_MAX + 120)) sipp -sf "$SIPT_DIR/$xml" \
        -i "$ip" -p "$port" -mi "$ip" -mp "$mp" -m "$n" -timeout $((SECS + DRAIN_MAX + 100))s \
        -trace_stat -stf "$WORK/${name}_stat.csv" -fd 5 -trace_err -error_file "$WORK/$name.err" \
        -nostdin "$@" >"$WORK/$name.out" 2>&1) &
    MY_PIDS+=("$!")
    eval "PID_${name//-/_}=$!"
}
uas bridge-cc bridge/uas-answer.xml "$BCC_IP" "$BCC_PORT" "$BCC_MP" $((BRIDGE_CPS * SECS))
uas customer dialler/uas-customer.xml "$CUST_IP" "$CUST_PORT" "$CUST_MP" 1000000 -d 2500
uas agent dialler/uas-agent.xml "$AGENT_IP" "$AGENT_PORT" "$AGENT_MP" 1000000 -d 8000
uas agentfirst-agent dialler/uas-agent-whisper.xml "$WAGENT_IP" "$WAGENT_PORT" "$WAGENT_MP" 1000000 -d 4000
uas agentfirst-customer dialler/uas-customer-talk.xml "$WCUST_IP" "$WCUST_PORT" "$WCUST_MP" 1000000
sleep 1

echo "# soak: $SECS s; bridged $BRIDGE_CPS/s, menu $MENU_CPS/s, API registrations $API_REG/s, polls $API_POLL/s, malformed SIP $BAD_SIP/s, API $BAD_API/s"
T0=$SECONDS
# uac NAME XML IP PORT MEDIA DIALLED RATE [sipp args...] -- a SIPp UAC for SECS seconds
uac() {
    local name=$1 xml=$2 ip=$3 port=$4 mp=$5 dialled=$6 rate=$7
    shift 7
    (cd "$WORK" && exec timeout -k 5 $((SECS + 120)) sipp -sf "$SIPT_DIR/$xml" -s "$dialled" \
        -i "$ip" -p "$port" -mi "$ip" -mp "$mp" -r "$rate" -m $((rate * SECS)) -l 5000 \
        -timeout $((SECS + 100))s -trace_stat -stf "$WORK/${name}_stat.csv" -fd 5 \
        -trace_err -error_file "$WORK/$name.err" -nostdin "$@" \
        "127.0.0.1:$SIP_PORT" >"$WORK/$name.out" 2>&1) &
    MY_PIDS+=("$!")
    eval "PID_${name//-/_}=$!"
}
uac bridge-uac bridge/uac-call.xml "$BUAC_IP" "$BUAC_PORT" "$BUAC_MP" +15550001001 "$BRIDGE_CPS"
uac menu-uac inbound/uac-keys.xml "$MUAC_IP" "$MUAC_PORT" "$MUAC_MP" +15550001000 "$MENU_CPS" \
    -inf "$WORK/callers.csv"
$PY api "http://127.0.0.1:$HTTP_PORT" "$SECS" "$API_REG" "$API_POLL" "$BAD_API" "$WORK/api.json" \
    >"$WORK/api.out" 2>&1 &
API_PID=$!
MY_PIDS+=("$API_PID")
$PY garbage 127.0.0.1 "$SIP_PORT" "$SECS" "$BAD_SIP" "$WORK/garbage.json" >"$WORK/garbage.out" 2>&1 &
GARBAGE_PID=$!
MY_PIDS+=("$GARBAGE_PID")

wait "$API_PID" "$GARBAGE_PID" || true
wait "$PID_bridge_uac" "$PID_menu_uac" || true
awk -v t="$(awk 'END{print $1}' FS=, "$WORK/mon.csv")" 'BEGIN{print t}' >"$WORK/load_end"
echo "# load done after $((SECONDS - T0)) s; draining (at most $DRAIN_MAX s)"

# ---------------------------------------------------------------- drain
gauge() { curl -fsS --max-time 2 "http://127.0.0.1:$HTTP_PORT/metrics" |
    awk -v n="$1" '$1 == n || index($1, n "{") == 1 {s += $2} END {print s + 0}'; }
t1=$SECONDS
while [ $((SECONDS - t1)) -lt "$DRAIN_MAX" ]; do
    busy=$(( $(gauge holdless_callbacks_pending) + $(gauge holdless_callbacks_in_progress) +
        $(gauge holdless_calls_active) + $(gauge holdless_media_sessions_active) ))
    [ "$busy" -eq 0 ] && break
    sleep 2
done
# Non-INVITE server transactions live 64 x T1 = 32 s after their answer (Timer J).
t2=$SECONDS
while [ $((SECONDS - t2)) -lt 60 ] && [ "$(gauge holdless_sip_transactions_active)" != 0 ]; do sleep 2; done
echo "# drained in $((SECONDS - t1)) s"
for p in "$PID_bridge_cc"; do wait "$p" 2>/dev/null || true; done
# The dialled parties ran with -m 1000000: stop them (their stat files are final every 5 s).
sleep 6
for n in customer agent agentfirst_agent agentfirst_customer; do
    eval "kill \$PID_$n" 2>/dev/null || true
done
curl -fsS --max-time 2 "http://127.0.0.1:$HTTP_PORT/metrics" >"$WORK/final.metrics" || true
python3 - "$WORK/final.metrics" "$HL_PID" "$WORK/final.json" <<'EOF'
import json, os, sys
m = {}
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    name, _, v = line.strip().rpartition(" ")
    m[name] = float(v)
    base = name.split("{", 1)[0]
    if base != name:
        m[base] = m.get(base, 0) + float(v)
m["fds"] = len(os.listdir(f"/proc/{sys.argv[2]}/fd"))
json.dump(m, open(sys.argv[3], "w"))
EOF
touch "$WORK/stop"
sleep 2

# ---------------------------------------------------------------- verdict
rc=0
$PY verdict "$WORK" "$WARMUP" "$RSS_BOUND_MB" "$FD0" >"$WORK/verdict.txt" || rc=$?
while read -r status case detail; do
    case $status in
        PASS) pass "$case" "$detail" ;;
        FAIL) fail_line "$case" "$detail" ;;
        *) echo "$status $case $detail" ;;
    esac
done <"$WORK/verdict.txt"
hl_alive soak-alive && pass soak-alive "holdless still running after the soak"
hl_stop
echo "# results: $WORK"
suite_finish
exit "$rc"
