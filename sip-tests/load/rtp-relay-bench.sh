#!/usr/bin/env bash
# RTP relay throughput, CPU per relayed packet and added latency on loopback: holdless's
# relay (examples/rtp_relay_bench.rs, release build) next to the bare C relay of
# ../shared/bench/peer/udp-relay (udpbench.c, gcc -O2) in the same run. The relay under test
# runs alone on CPU1, the generator and sink on CPU0, as in run-relay.sh.
#
# usage: sip-tests/load/rtp-relay-bench.sh [SECONDS=10] [CALLS=500]
# SRTP rows: the caller leg (or both legs) SRTP, AES_CM_128_HMAC_SHA1_80 (SDES); each relayed
# packet is decrypted and/or encrypted once.
# Environment: BENCH_BIN (a built rtp_relay_bench; skips cargo build), CARGO_TARGET_DIR.
# Every process stops by itself (bounded by SECONDS); only PIDs started here are killed.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
T=${1:-10}
CALLS=${2:-500}
PEER=${PEER_DIR:-$ROOT/../shared/bench/peer}
WORK=$(mktemp -d /tmp/rtp-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ -z "${BENCH_BIN:-}" ]; then
    cargo build --release --example rtp_relay_bench >&2
    BENCH_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/rtp_relay_bench
fi
UDPBENCH=$WORK/udpbench
if [ -f "$PEER/udp-relay/udpbench.c" ]; then
    gcc -O2 -Wall -o "$UDPBENCH" "$PEER/udp-relay/udpbench.c"
fi

# Waits (up to 60 s) for the shared box to go quiet, as the peer baseline's sweep does.
quiet() {
    [ -f "$PEER/quiet.py" ] && python3 "$PEER/quiet.py" 60 30 | sed 's/^/# /' || true
}
# How busy CPU1 was between two samples (all processes), to spot other jobs on the relay's CPU.
cpu1() { awk '/^cpu1 /{t=0; for(i=2;i<=NF;i++) t+=$i; print t, $5+$6}' /proc/stat; }
busy() { echo "$1 $2" | awk '{dt=$3-$1; di=$4-$2; printf "%.2f", (dt>0 ? (dt-di)/dt : 0)}'; }

# holdless: LABEL CALLS PPS [flags] -- one run; prints the relay's and the generator's line.
holdless() {
    local label=$1 calls=$2 pps=$3
    shift 3
    local plan=$WORK/plan
    rm -f "$plan"
    quiet
    taskset -c 1 "$BENCH_BIN" relay --calls "$calls" --secs $((T + 2)) --plan "$plan" "$@" \
        >"$WORK/relay.out" 2>&1 &
    local rp=$!
    PIDS+=("$rp")
    for _ in $(seq 100); do [ -s "$plan" ] && break; sleep 0.1; done
    [ -s "$plan" ] || { cat "$WORK/relay.out" >&2; return 1; }
    local a b
    a=$(cpu1)
    taskset -c 0 "$BENCH_BIN" gen --plan "$plan" --pps "$pps" --secs "$T" "$@" >"$WORK/gen.out" 2>&1
    b=$(cpu1)
    wait "$rp" || true
    printf '%-44s %s cpu1_busy=%s\n    %s\n' "$label" "$(cat "$WORK/relay.out")" "$(busy "$a" "$b")" \
        "$(cat "$WORK/gen.out")"
}

# direct: LABEL PPS -- the same endpoints talking to each other, no relay (latency baseline).
direct() {
    local label=$1 pps=$2 plan=$WORK/plan
    rm -f "$plan"
    quiet
    for i in $(seq 0 $((CALLS - 1))); do
        echo "1 1 $((20000 + 2 * i)) $((20000 + 2 * (CALLS + i)))" >>"$plan"
    done
    taskset -c 0 "$BENCH_BIN" gen --plan "$plan" --pps "$pps" --secs "$T" --direct >"$WORK/gen.out" 2>&1
    printf '%-44s %s\n' "$label" "$(cat "$WORK/gen.out")"
}

# c_latency: LABEL STREAMS PPS -- our generator through the C relay (batch 1), for latency.
c_latency() {
    local label=$1 n=$2 pps=$3
    [ -x "$UDPBENCH" ] || return 0
    quiet
    taskset -c 1 "$UDPBENCH" relay -l 127.0.0.1 -p 27000 -n "$n" -u -b 1 -d 127.0.0.1 -P 26000 \
        -t $((T + 1)) >"$WORK/crelay.out" 2>&1 &
    local rp=$!
    PIDS+=("$rp")
    sleep 0.5
    taskset -c 0 "$BENCH_BIN" gen --c-relay 27000 --flows "$n" --sink 26000 --pps "$pps" \
        --secs "$T" >"$WORK/gen.out" 2>&1
    wait "$rp" || true
    printf '%-44s %s\n' "$label" "$(cat "$WORK/gen.out")"
}

# c_relay: LABEL STREAMS PPS BATCH -- udpbench relay over STREAMS flows (gen -> relay -> sink).
c_relay() {
    local label=$1 n=$2 pps=$3 b=$4
    [ -x "$UDPBENCH" ] || { echo "$label: udpbench.c not found, skipped"; return 0; }
    local rate=()
    [ "$pps" != max ] && rate=(-r "$pps")
    quiet
    taskset -c 0 "$UDPBENCH" sink -l 127.0.0.1 -p 26000 -t $((T + 2)) -i 100 >"$WORK/sink.out" 2>&1 &
    local sp=$!
    PIDS+=("$sp")
    taskset -c 1 "$UDPBENCH" relay -l 127.0.0.1 -p 27000 -n "$n" -u -b "$b" -d 127.0.0.1 -P 26000 \
        -t $((T + 1)) >"$WORK/crelay.out" 2>&1 &
    local rp=$!
    PIDS+=("$rp")
    sleep 0.5
    local a b
    a=$(cpu1)
    taskset -c 0 "$UDPBENCH" gen -d 127.0.0.1 -p 27000 -n "$n" -b 32 "${rate[@]}" -t "$T" \
        >"$WORK/cgen.out" 2>&1
    b=$(cpu1)
    wait "$rp" "$sp" || true
    awk -v l="$label" -v busy="$(busy "$a" "$b")" '/^relay:/{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%-44s relayed=%s pps=%s cpu=%s us_per_pkt=%.3f pps_per_core=%s cpu1_busy=%s\n",
            l, v["packets"], v["pps"], v["cpu"], (v["packets"] > 0 ? v["cpu"] * 1e6 / v["packets"] : 0), v["pps_per_core"], busy
    }' "$WORK/crelay.out"
}

LOW=$((CALLS / 2))
echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) cpus; $T s a run; 172-byte G.711 packets, 50 pps a stream"
echo "# relays alone on CPU1 (holdless: 1 media thread), generator and sink on CPU0;"
echo "# cpu1_busy above the relay's cpu_frac is other jobs on the relay's CPU (noise)"
holdless "holdless, $LOW calls, $((LOW * 100)) pps" "$LOW" $((LOW * 100))
holdless "holdless, $CALLS calls, $((CALLS * 100)) pps" "$CALLS" $((CALLS * 100))
holdless "holdless, $CALLS calls, PCMU<->PCMA" "$CALLS" $((CALLS * 100)) --transcode
holdless "holdless, $CALLS calls, SRTP caller leg" "$CALLS" $((CALLS * 100)) --srtp caller
holdless "holdless, $CALLS calls, SRTP both legs" "$CALLS" $((CALLS * 100)) --srtp both
holdless "holdless, $CALLS calls, 150k pps offered" "$CALLS" 150000
direct "no relay (endpoint to endpoint)" $((CALLS * 100))
c_latency "C relay latency, $((2 * LOW)) flows, $((LOW * 100)) pps" $((2 * LOW)) $((LOW * 100))
c_latency "C relay latency, $((2 * CALLS)) flows, $((CALLS * 100)) pps" $((2 * CALLS)) $((CALLS * 100))
c_relay "C relay, $((2 * LOW)) flows, $((LOW * 100)) pps, batch 1" $((2 * LOW)) $((LOW * 100)) 1
c_relay "C relay, $((2 * CALLS)) flows, $((CALLS * 100)) pps, batch 1" $((2 * CALLS)) $((CALLS * 100)) 1
c_relay "C relay, $((2 * CALLS)) flows, $((CALLS * 100)) pps, batch 32" $((2 * CALLS)) $((CALLS * 100)) 32
c_relay "C relay, $((2 * CALLS)) flows, saturated, batch 1" $((2 * CALLS)) max 1
