#!/usr/bin/env bash
# The soak (sip-tests/load/soak.sh), short: every flow at once for SOAK_SECS (45) s, a
# 15 s warm-up, then the drain and the leak checks. The 10-minute run is the default of
# load/soak.sh itself (its figures are in the README).
exec env WARMUP="${WARMUP:-15}" DRAIN_MAX="${DRAIN_MAX:-100}" \
    bash "$(dirname "$0")/load/soak.sh" "${SOAK_SECS:-45}"
