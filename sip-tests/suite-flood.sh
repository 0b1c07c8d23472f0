#!/usr/bin/env bash
# Flood guard (per source address, max_requests per window_ms):
#   max_requests = 20 per 1000 ms, action "reject", retry_after_secs = 5.
#   60 OPTIONS from 127.0.0.1 within ~0.2 s (so within at most two windows):
#   every one gets 200 or 503 with Retry-After: 5, at least 20 of them 503
#   and between 20 and 40 of them 200.
#   Another source (127.0.0.2) is not limited by 127.0.0.1's flood, and after
#   1.5 s 127.0.0.1 gets 200 again.
# Ports: SIP 15120, HTTP 18120.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_tools
holdless_bin

SIP_PORT=15120 HTTP_PORT=18120
FLOOD_MAX=20 FLOOD_WINDOW_MS=1000 FLOOD_ACTION=reject ACL_ALLOW='["127.0.0.0/8"]' \
    write_config "$WORK/flood.toml"

flood_counts() {  # LOGFILE -- "got 200" lines in 20..40, "Retry-After 5" lines >= 20
    local ok busy
    ok=$(grep -c '^got 200' "$1" || true)
    busy=$(grep -c '^got 503 Retry-After 5$' "$1" || true)
    echo "$ok x 200, $busy x 503 with Retry-After: 5 (other lines: $(grep -vc -e '^got 200' -e '^got 503 Retry-After 5$' "$1" || true))"
    [ "$ok" -ge 20 ] && [ "$ok" -le 40 ] && [ "$busy" -ge 20 ] && [ $((ok + busy)) -eq 60 ]
}

if hl_start flood "$WORK/flood.toml" "$SIP_PORT" "$HTTP_PORT"; then
    sipp_case flood-burst 0 "60 OPTIONS in ~0.2 s from 127.0.0.1 -> each answered 200 or 503" \
        -sf "$SCEN/options-flood.xml" -m 60 -r 300 "127.0.0.1:$SIP_PORT"
    if [ "$SIPP_RC" -eq 0 ]; then
        check flood-limit "20..40 x 200, the rest 503 with Retry-After: 5" \
            flood_counts "$WORK/flood-burst.log"
    fi
    sipp_case flood-other-source 0 "OPTIONS from 127.0.0.2 right after the burst -> 200" \
        -sf "$SCEN/options.xml" -i 127.0.0.2 -m 1 "127.0.0.1:$SIP_PORT"
    sleep 1.5
    sipp_case flood-recovered 0 "1.5 s later, OPTIONS from 127.0.0.1 -> 200 again" \
        -sf "$SCEN/options.xml" -m 1 "127.0.0.1:$SIP_PORT"
    hl_stop
fi
suite_finish
