#!/usr/bin/env bash
# A simulated contact center against a real holdless (issue 13): do the quotes come true?
#
#   bash sip-tests/sim/sim.sh [--short]
#
# Writes a holdless configuration (two call targets: "cust", customer first, and "agent",
# agent first, each with its widget), starts holdless, runs sim.py (callers transferred over
# SIP with User-to-User or registering through the API, a share choosing a callback, the
# rest keeping holding through holdless to the contact center; agents answering callback
# legs first; customers answering, busy or not answering), then fetches holdless's record of
# every callback and prints the report. Work dir (printed): params.json, holdless.toml,
# holdless.log, sim.log, events.json, report.json, report.md, sim.png, explain.md (per
# callback: the queue its quote was computed against and what happened, from the store). Exit 1 when an aim
# fails (the full day: >= 90 % of completed callbacks launched within +-20 % of the quote,
# or +-2 min under 10 min, and the quote following the peak within 5 min; --short: thresholds
# for a 2-hour day (>= 35 % within the aim), and the quotes must be informative: callbacks
# that waited >= 4 min must have been quoted on average 50-180 % of their wait, so quotes
# stuck at 0 or doubled fail).
#
# Time is compressed: every simulated duration is divided by SPEED on the wire, including the
# holdless settings that are durations of the model (min_delay_secs, retry delays,
# punctual_within_secs, reschedule_delay_secs, customer_ring_timeout_secs, ecbt initial
# values). SIP protocol timers (T1/T2, transaction timeouts) and the prompts are not scaled.
#
# Environment (simulated seconds unless said otherwise; defaults = the full day):
#   HOLDLESS_BIN     binary (default: as lib.sh, <repo>/target/release/holdless)
#   SPEED (30)       simulated seconds per real second
#   DAY_MIN (480)    simulated minutes of arrivals (09:00-17:00), then a drain
#   BASE_RATE (1.05) callers per simulated minute at load factor 1
#   SHAPE            JSON [[hour from opening, factor], ...] (default: peak 1.5 at 10:30-11:30,
#                    lunch dip 0.7 at 12:15-13:15)
#   AGENTS (9)  HANDLE_MEAN_S (360)  HANDLE_SIGMA (0.5)  CONNECT_S ("5,20")  CC_MODE (queue|busy)
#   CALLBACK_SHARE (0.4)  API_SHARE (0.3)  NO_ANSWER (0.10)  BUSY (0.05)  RING_S ("5,20")
#   PACING (2 per call target)  MIN_DELAY_S (60)  PUNCTUAL_S (120)  SEED (13)
#   HOLD_EARLY (0; 1: holdless's ecbt.hold_early, a callback whose turn comes early waits
#   for its quote's window)
#   MARGIN (0)       holdless's ecbt.margin: gap spreads (σ√k) added to each quote
#   ADAPTIVE (0)     1: holdless's ecbt.adaptive (G's weight from the tracking signal)
#   DRAIN_MAX_S (real seconds after the last arrival, default 120)
#   SIM_CHECK_ONLY=1 write the configuration and check it, then stop
#   OUT              work dir (default: a new /tmp/holdless-sim.XXXXXX)
#   LANE (0)         0-5: addresses +10 x LANE, ports +100 x LANE, so lanes run at once
# Addresses (LANE 0): holdless 127.0.0.61 (SIP 5360, HTTP 8360, media 41000-41999); callers
# 127.0.0.62:5362, customers' phones 127.0.0.63:5363, contact center 127.0.0.64:5364 (RTP
# sent to them lands in an unread socket on port 5370). Everything bounded by timeout(1).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
SHORT=0
[ "${1:-}" = --short ] && SHORT=1

if [ "$SHORT" = 1 ]; then
    : "${SPEED:=60}" "${DAY_MIN:=120}" "${DRAIN_MAX_S:=35}"
    : "${SHAPE:=[[0,1],[0.5,1],[0.75,1.6],[2,1.6]]}"
    PHASES='[["start",0,0.5],["ramp",0.5,1],["peak",1,2]]'
    AIMS='{"min_launched":15,"share":0.35,"track_min":null,"informative":{"wait_s":240,"ratio":0.5,"ratio_max":1.8}}'
else
    : "${SPEED:=30}" "${DAY_MIN:=480}" "${DRAIN_MAX_S:=120}"
    : "${SHAPE:=[[0,1],[1,1],[1.5,1.5],[2.5,1.5],[3,1],[3.25,0.7],[4.25,0.7],[4.5,1],[8,1]]}"
    PHASES='[["start (learning)",0,0.5],["base",0.5,1],["ramp-up",1,1.5],["peak",1.5,2.5],["ramp-down",2.5,3.25],["lunch dip",3.25,4.25],["afternoon",4.5,8]]'
    AIMS='{"min_launched":50,"share":0.9,"track_min":5,"informative":{"wait_s":240,"ratio":0.5,"ratio_max":1.8}}'
fi
: "${BASE_RATE:=1.05}" "${AGENTS:=9}" "${HANDLE_MEAN_S:=360}" "${HANDLE_SIGMA:=0.5}"
: "${CONNECT_S:=5,20}" "${CC_MODE:=queue}" "${CALLBACK_SHARE:=0.4}" "${API_SHARE:=0.3}"
: "${NO_ANSWER:=0.10}" "${BUSY:=0.05}" "${RING_S:=5,20}" "${PACING:=2}" "${MIN_DELAY_S:=60}"
: "${PUNCTUAL_S:=120}" "${SEED:=13}" "${HOLD_EARLY:=0}" "${MARGIN:=0}" "${ADAPTIVE:=0}"

source "$REPO_ROOT/sip-tests/lib.sh" >/dev/null  # holdless_bin; its WORK is not used
rm -rf "$WORK"
holdless_bin
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/holdless-sim.XXXXXX")}
mkdir -p "$OUT"
echo "sim: work dir $OUT"

# LANE n (0-5) moves every address up by 10n and every port by 100n (media by 1000n), so
# runs in different lanes can go on at once.
LANE=${LANE:-0}
case "$LANE" in [0-5]) ;; *) echo "sim: LANE must be 0-5" >&2; exit 2;; esac
net() { echo "127.0.0.$(( $1 + 10 * LANE ))"; }
pt() { echo $(( $1 + 100 * LANE )); }
HIP=$(net 61) SIP_PORT=$(pt 5360) HTTP_PORT=$(pt 8360)
API=http://$HIP:$HTTP_PORT
# a simulated duration in real seconds: integer keys rounded (at least 1), float keys exact
si() { python3 -c "import sys; print(max(1, round($1 / $SPEED)))"; }
sf() { python3 -c "print($1 / $SPEED)"; }

target() {  # ID NUMBER FIRST_PARTY
    cat <<EOF

[[call_targets]]
id = "$1"
name = "Simulated $1"
numbers = ["$2"]
organization = "sim"
contact_center = "sip:+15550069999@$(net 64):$(pt 5364)"
caller_id = "$2"
first_party = "$3"
min_delay_secs = $(si "$MIN_DELAY_S")
punctual_within_secs = $(si "$PUNCTUAL_S")
pacing = $PACING
max_requested = 1000
input_timeout_secs = 6
prompts = "$REPO_ROOT/configs/prompts"

[call_targets.ecbt]
initial_handle_secs = $(sf 420)
initial_connect_secs = $(sf 30)
smoothing = 0.2
hold_early = $([ "$HOLD_EARLY" = 1 ] && echo true || echo false)
$([ "$MARGIN" = 0 ] || echo "margin = $MARGIN")
$([ "$ADAPTIVE" = 1 ] && echo "adaptive = true")

[call_targets.dialler]
customer_ring_timeout_secs = $(si 60)
agent_ring_timeout_secs = 600
press_timeout_secs = 8
whisper = false
reschedule_delay_secs = $(si 900)

[call_targets.retry]
busy = { attempts = 3, delay_secs = $(si 120) }
no_answer = { attempts = 3, delay_secs = $(si 300) }
voicemail = { attempts = 2, delay_secs = $(si 600) }
error = { attempts = 2, delay_secs = $(si 60) }

[[widgets]]
id = "w-$1"
call_target = "$1"
EOF
}
CFG=$OUT/holdless.toml
{
    cat <<EOF
# written by sip-tests/sim/sim.sh (SPEED=$SPEED)
[sip]
udp = ["$HIP:$SIP_PORT"]

[http]
listen = "$HIP:$HTTP_PORT"

[store]
data_dir = "$OUT/data"

[acl]
allow = ["127.0.0.0/8"]

[flood]
max_requests = 1000000

[egress]
allow = ["127.0.0.0/8"]

[calls]
outbound_trunk = "sip:$(net 63):$(pt 5363)"
ring_timeout_secs = 600
drain_secs = 0

[media]
address = "$HIP"
port_min = $(( 41000 + 1000 * LANE ))
port_max = $(( 41999 + 1000 * LANE ))
timeout_secs = 3600

[[organizations]]
id = "sim"
name = "Simulation"
api_tokens = ["sim-token"]
api_allow = ["127.0.0.0/8"]
EOF
    target cust +15550061001 customer
    target agent +15550061002 agent
} >"$CFG"

python3 - "$OUT/params.json" <<EOF
import json, sys
p = {"speed": $SPEED, "day_min": $DAY_MIN, "base_rate": $BASE_RATE, "shape": json.loads('$SHAPE'),
     "agents": $AGENTS, "handle_mean_s": $HANDLE_MEAN_S, "handle_sigma": $HANDLE_SIGMA,
     "connect_s": [$CONNECT_S], "cc_mode": "$CC_MODE", "callback_share": $CALLBACK_SHARE,
     "api_share": $API_SHARE, "customer_no_answer": $NO_ANSWER, "customer_busy": $BUSY,
     "ring_s": [$RING_S], "think_s": [5, 15], "press_s": [3, 8], "pacing": $PACING,
     "min_delay_s": $MIN_DELAY_S, "punctual_within_real_s": $(si "$PUNCTUAL_S"),
     "seed": $SEED, "hold_early": $HOLD_EARLY, "margin": $MARGIN, "adaptive": $ADAPTIVE, "drain_max_real_s": $DRAIN_MAX_S, "caller_max_real_s": 600,
     "open_hour": 9, "phases": json.loads('$PHASES'), "aims": json.loads('$AIMS'),
     "holdless_ip": "$HIP", "holdless_port": $SIP_PORT, "api": "$API", "token": "sim-token",
     "org": "sim", "caller_ip": "$(net 62)", "caller_port": $(pt 5362),
     "customer_ip": "$(net 63)", "customer_port": $(pt 5363), "cc_ip": "$(net 64)",
     "cc_port": $(pt 5364), "sink_port": $(pt 5370),
     "targets": [{"id": "cust", "number": "+15550061001", "widget": "w-cust", "first_party": "customer"},
                 {"id": "agent", "number": "+15550061002", "widget": "w-agent", "first_party": "agent"}]}
json.dump(p, open(sys.argv[1], "w"), indent=1)
EOF

# ---------------------------------------------------------------- holdless
for port in $SIP_PORT $HTTP_PORT; do
    if [ -n "$(ss -Hlnut "sport = :$port" 2>/dev/null)" ]; then
        echo "sim: port $port is in use (another run?)" >&2
        exit 2
    fi
done
"$HOLDLESS_BIN" check-config "$CFG" >/dev/null
[ "${SIM_CHECK_ONLY:-0}" = 1 ] && { echo "sim: configuration checked"; exit 0; }
NO_COLOR=1 RUST_LOG=${RUST_LOG:-info} "$HOLDLESS_BIN" run --config "$CFG" >"$OUT/holdless.log" 2>&1 &
HL_PID=$!
for i in $(seq 150); do
    kill -0 "$HL_PID" 2>/dev/null || { echo "sim: holdless exited during start-up" >&2; tail "$OUT/holdless.log" >&2; exit 2; }
    curl -fsS --max-time 1 "$API/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

# ---------------------------------------------------------------- the day
BOUND=$(python3 -c "print(int($DAY_MIN * 60 / $SPEED + $DRAIN_MAX_S + 60))")
rc=0
echo "sim: speed $SPEED, $DAY_MIN simulated minutes ($((DAY_MIN * 60 / SPEED)) real s + drain <= ${DRAIN_MAX_S} s)"
timeout -k 5 "$BOUND" python3 "$HERE/sim.py" run "$OUT/params.json" "$OUT" 2>&1 | tee "$OUT/sim.log" || rc=$?
if [ ! -s "$OUT/events.json" ]; then
    echo "sim: the simulation did not finish (status $rc); see $OUT/sim.log" >&2
else
    # (not for --short, which the suite runs within its time limit: no plot without it)
    if [ "$SHORT" = 0 ] && ! python3 -c "import matplotlib" 2>/dev/null; then
        timeout 120 pip install -q matplotlib >/dev/null 2>&1 || echo "sim: no matplotlib (no plot)"
    fi
    timeout -k 5 300 python3 "$HERE/sim.py" report "$OUT/params.json" "$OUT" || rc=$?
fi
kill -TERM "$HL_PID" 2>/dev/null || true
timeout 15 tail --pid="$HL_PID" -f /dev/null 2>/dev/null || kill -KILL "$HL_PID" 2>/dev/null || true
wait "$HL_PID" 2>/dev/null || true
HL_PID=
if [ -s "$OUT/report.json" ]; then   # the queue each quote was computed against, from the store
    timeout 120 python3 "$HERE/sim.py" explain "$OUT/params.json" "$OUT" >/dev/null 2>&1 &&
        echo "sim: $OUT/explain.md" || echo "sim: no explain.md"
fi
[ -s "$OUT/events.json" ] || rc=1
echo "sim: work dir $OUT (exit $rc)"
exit "$rc"
