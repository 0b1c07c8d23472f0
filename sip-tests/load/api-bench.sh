#!/usr/bin/env bash
# Scheduler API load benchmark: requests per second and p50/p99 latency of the routes a
# contact-center flow calls on every inbound call (widget status) and when a caller
# accepts (request_callback), plus organization widget_status and callback_status.
#
#   cargo build --release                     # or set HOLDLESS_BIN=/path/to/holdless
#   bash sip-tests/load/api-bench.sh          # 10 s per route, 32 connections
#   bash sip-tests/load/api-bench.sh 20 64    # 20 s per route, 64 connections
#
# wrk (Debian package `wrk`, installed when missing) runs one thread against a holdless
# on 127.0.0.1:18210 (SIP 15210); nothing leaves loopback. Each step is bounded by wrk's
# -d and timeout(1); holdless is stopped by PID at the end. request_callback registers a
# new number per request (api-register.lua), so every request is a durable registration
# (group-committed to SQLite, synchronous=FULL). The box has 2 cores shared by wrk and
# holdless: numbers are a floor, compare runs on the same machine only.
set -euo pipefail
SUITE=api-bench
source "$(dirname "$0")/../lib.sh"
holdless_bin
DUR=${1:-10}
CONNS=${2:-32}
LOAD=$SIPT_DIR/load

if ! command -v wrk >/dev/null 2>&1; then
    echo "wrk not found: installing the Debian package"
    apt-get install -y wrk >"$WORK/apt.log" 2>&1 || { apt-get update >>"$WORK/apt.log" 2>&1 && apt-get install -y wrk >>"$WORK/apt.log" 2>&1; }
fi

SIP_PORT=15210 HTTP_PORT=18210
CFG=$WORK/api-bench.toml
write_config "$CFG"
cat "$SIPT_DIR/api/config-tail.toml" >>"$CFG"
hl_start api-bench "$CFG" "$SIP_PORT" "$HTTP_PORT" || { suite_finish; exit 1; }
base=http://127.0.0.1:$HTTP_PORT
auth="Authorization: Bearer demo-token"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$HL_PID/stat"; }
TCK=$(getconf CLK_TCK)

printf '%-34s %9s %9s %9s %9s %8s %9s\n' route "req/s" "p50_ms" "p99_ms" "errors" "non2xx" "hl_%cpu"
step() {  # NAME URL [wrk args...]
    local name=$1 url=$2 out c0 c1
    shift 2
    out=$WORK/$(printf %s "$name" | tr -c "a-zA-Z0-9" _).out
    c0=$(cpu_ticks)
    timeout -k 5 $((DUR + 30)) wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -H "$auth" "$@" "$url" >"$out" 2>&1 || true
    c1=$(cpu_ticks)
    awk -v name="$name" -v cpu="$(( (c1 - c0) * 100 / TCK / DUR ))" '
        /Requests\/sec/ { rps = $2 }
        /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
        /Non-2xx/ { non2xx = $NF }
        /Socket errors/ { errs = $0; gsub(/[^0-9 ]/, " ", errs); split(errs, e, " "); errors = e[1] + e[2] + e[3] + e[4] }
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        END { printf "%-34s %9.0f %9.2f %9.2f %9d %8d %8s%%\n", name, rps, ms(p50), ms(p99), errors, non2xx, cpu }' "$out"
}

step "GET widget/{id}" "$base/api/widget/billing-widget"
step "GET organization/{id}/widget_status" "$base/api/organization/demo/widget_status"
step "POST widget/{id}/request_callback" "$base/api/widget/billing-widget/request_callback" -s "$LOAD/api-register.lua"
step "POST organization/{id}/callback_status" "$base/api/organization/demo/callback_status" -s "$LOAD/api-status.lua"
pending=$(curl -fsS "$base/metrics" | awk '/^holdless_callbacks_pending\{call_target="billing"\}/ {print $2}')
echo "pending callbacks after the run: $pending (one per request_callback request)"
if curl -fsS "$base/metrics" | grep -qE 'holdless_api_requests_total\{.*status="5'; then
    fail_line api-bench "some requests were answered 5xx (see $base/metrics)"
fi
hl_stop
KEEP_WORK=${KEEP_WORK:-0} suite_finish
