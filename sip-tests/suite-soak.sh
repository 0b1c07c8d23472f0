#!/usr/bin/env bash
# The soak (sip-tests/load/soak.sh), short: every flow at once for SOAK_SECS (45) s, a
# 15 s warm-up, then the drain and the leak checks, at the base rates (bridged 10/s, menu
# 3/s, API registrations 3/s, polls 30/s: about a sixth of the mix's capacity here, so the
# suite stays steady beside whatever else CI runs). The 10-minute run at ~60 % of capacity
# is the default of load/soak.sh itself (its figures are in the README).
exec env WARMUP="${WARMUP:-15}" DRAIN_MAX="${DRAIN_MAX:-100}" BRIDGE_CPS="${BRIDGE_CPS:-10}" \
    MENU_CPS="${MENU_CPS:-3}" API_REG="${API_REG:-3}" API_POLL="${API_POLL:-30}" \
    bash "$(dirname "$0")/load/soak.sh" "${SOAK_SECS:-45}"
