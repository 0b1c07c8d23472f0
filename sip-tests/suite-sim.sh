#!/usr/bin/env bash
# The simulated contact center (sip-tests/sim/sim.sh --short): a two-hour day at speed 60
# (two real minutes, a load step to 1.6x after 45 min), callers over SIP and the API, agents
# and customers simulated; PASS per check of the report (enough callbacks launched, a share
# of them within +-20 % / +-2 min of their quote, quotes informative: callbacks that waited
# 4 min or more were quoted 50-180 % of their wait on average, so quotes stuck at 0 or
# doubled fail).
# The full day (16 real minutes) is `bash sip-tests/sim/sim.sh`; its figures are in the
# README. Environment: as sim.sh (HOLDLESS_BIN, SPEED, DAY_MIN, ...), KEEP_WORK=1.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
holdless_bin
OUT=$WORK/sim
rc=0
OUT=$OUT HOLDLESS_BIN=$HOLDLESS_BIN timeout -k 10 250 bash "$SIPT_DIR/sim/sim.sh" --short \
    >"$WORK/sim.out" 2>&1 || rc=$?
if [ -s "$OUT/report.json" ]; then
    while IFS=$'\t' read -r ok name detail; do
        if [ "$ok" = True ]; then pass "$name" "$detail"; else fail_line "$name" "$detail"; fi
    done < <(python3 -c '
import json, sys
for c in json.load(open(sys.argv[1]))["checks"]:
    name = c["name"].replace("+-", "").replace("/ ", "").replace(" ", "-")
    print("%s\t%s\t%s" % (c["ok"], name, c["detail"]))
' "$OUT/report.json")
    grep -E '^\| (all|customer first|agent first) ' "$OUT/report.md" | sed 's/^/    /'
else
    fail_line "sim-run" "sim.sh --short produced no report (exit $rc)"
fi
if [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
    fail_line "sim-exit" "sim.sh --short exited $rc"
fi
[ "$FAILED" -eq 0 ] || tail -n 40 "$WORK/sim.out" | sed 's/^/    | /'
suite_finish
