#!/usr/bin/env bash
# The soak mix's capacity on this box: soak.sh's every-flow-at-once load at SCALE times its
# base rates (bridged 10/s, menu 3/s, API registrations 3/s, status polls 30/s; the injected
# faults stay at their base rates), one short run per scale, rising until a run fails. A run
# passes when every call at every SIPp completed, every callback attempt completed, no API
# answer was a 5xx and everything drained (soak.sh's checks, without the RSS bound, which a
# one-minute run at a new load level does not measure). The capacity is the highest passing
# scale; soak.sh's default rates are then meant to be about 60 % of it.
#
# usage: sip-tests/load/soak-capacity.sh [STEP_SECS=60] [SCALE...]     default scales 2 4 6 8 10
# Environment: HOLDLESS_BIN, KEEP_GOING=1 (run every scale even after a failure). Every run is
# soak.sh's, bounded the same way; everything on 127.0.0.0/8. Prints one line per scale and a
# summary; results: $WORK (printed).
set -euo pipefail
LOAD=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/holdless-soak-capacity.XXXXXX")
STEP=${1:-60}
shift || true
SCALES=("$@")
[ "${#SCALES[@]}" -gt 0 ] || SCALES=(2 4 6 8 10)

# Box CPU busy (all cores, in % of one core) between two /proc/stat readings.
cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$6+$7+$8, $5}' /proc/stat; }
best=0
ROWS=()
for k in "${SCALES[@]}"; do
    out=$WORK/scale-$k.log
    read -r b0 i0 < <(cpu_ticks)
    rc=0
    WARMUP=$((STEP / 3)) DRAIN_MAX=150 RSS_BOUND_MB=100000 \
        BRIDGE_CPS=$((10 * k)) MENU_CPS=$((3 * k)) API_REG=$((3 * k)) API_POLL=$((30 * k)) \
        bash "$LOAD/soak.sh" "$STEP" >"$out" 2>&1 || rc=$?
    read -r b1 i1 < <(cpu_ticks)
    busy=$(awk -v b="$((b1 - b0))" -v i="$((i1 - i0))" 'BEGIN{printf "%.0f", 200 * b / (b + i)}')
    fails=$(grep -c '^FAIL' "$out" || true)
    failed=$(grep '^FAIL' "$out" | awk '{print $2}' | tr '\n' ' ' || true)
    hl=$(sed -n 's/^# holdless CPU over the load: \([0-9]*\) %.*/\1/p' "$out" | tail -1)
    row="scale $k (bridged $((10 * k))/s, menu $((3 * k))/s, API $((3 * k))/s): $([ "$rc" = 0 ] && echo PASS || echo "FAIL ($fails: $failed)"); holdless ${hl:-?} % of a core, box ${busy} % of 200 %"
    echo "$row"
    ROWS+=("$row")
    if [ "$rc" = 0 ]; then
        best=$k
    elif [ "${KEEP_GOING:-0}" != 1 ]; then
        break
    fi
done
echo
echo "=== soak mix capacity ($STEP s per scale)"
printf '%s\n' "${ROWS[@]}"
echo "capacity: scale $best of the base mix; 60 % of it: scale $(awk -v b="$best" 'BEGIN{printf "%.1f", 0.6 * b}')"
echo "# results: $WORK"
