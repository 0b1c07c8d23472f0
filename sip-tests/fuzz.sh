#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (or the ones named) for a set time and prints, per
# target, the runs executed, the crashes found and the coverage reached (cov and ft from
# libFuzzer's last stats line). Exits non-zero if any target crashed; the crashing input is
# kept under fuzz/artifacts/<target>/ (git-ignored) with the target's log.
#
# Usage: sip-tests/fuzz.sh [--smoke] [--build-only] [seconds-per-target] [target...]
#                                                  (default 60 s, all targets)
#
# The full mode builds with cargo-fuzz (installed if missing): release, AddressSanitizer;
# -Zsanitizer needs RUSTC_BOOTSTRAP=1 on the stable toolchain. --smoke is what the test
# suite runs (run-all.sh): a debug build with libFuzzer's coverage instrumentation and no
# sanitizer, by plain cargo (no cargo-fuzz, no -Z flag), so the targets keep building and
# each runs a few seconds at a fraction of the full build's time; its build goes to
# fuzz/target/smoke. Corpora: fuzz/seeds/<target> (committed, small), ../shared/sip-corpus
# (the SIP targets, read only) and fuzz/corpus/<target> (git-ignored; what the fuzzer
# finds, kept between runs). CARGO_TARGET_DIR is honoured by the full mode; the build is
# separate from the normal one (sanitizer flags), so point it at a directory of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SMOKE=0
BUILD_ONLY=0
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) SMOKE=1 ;;
        --build-only) BUILD_ONLY=1 ;;
        *) break ;;
    esac
    shift
done
SECS=${1:-60}
shift || true
export RUSTC_BOOTSTRAP=1

# The flags cargo-fuzz passes for libFuzzer's coverage feedback (without a sanitizer).
SANCOV="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
HOST=$(rustc -vV | sed -n 's/^host: //p')
SMOKE_DIR=$ROOT/fuzz/target/smoke

if [ "$SMOKE" = 0 ] && ! command -v cargo-fuzz >/dev/null; then
    echo "cargo-fuzz not found: installing it"
    cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -vx holdless-fuzz)
fi

echo "=== building ${#targets[@]} fuzz targets$([ "$SMOKE" = 1 ] && echo " (smoke: debug, no sanitizer)")"
t0=$SECONDS
if [ "$SMOKE" = 1 ]; then
    # --target keeps build scripts and proc macros uninstrumented, as cargo-fuzz does.
    RUSTFLAGS="$SANCOV" CARGO_TARGET_DIR=$SMOKE_DIR \
        cargo build --manifest-path fuzz/Cargo.toml --target "$HOST" --bins
else
    cargo fuzz build --fuzz-dir fuzz
fi
echo "built in $((SECONDS - t0)) s"
[ "$BUILD_ONLY" = 0 ] || exit 0

SHARED=$ROOT/../shared/sip-corpus
ROWS=()
CRASHED=0
for t in "${targets[@]}"; do
    corpus=(fuzz/corpus/"$t" fuzz/seeds/"$t")
    case $t in
        sip_parse | sip_framer)
            for d in "$SHARED"/rfc4475 "$SHARED"/twilio; do
                [ -d "$d" ] && corpus+=("$d")
            done
            ;;
    esac
    mkdir -p fuzz/corpus/"$t" fuzz/artifacts/"$t"
    log=fuzz/artifacts/$t/fuzz.log
    echo "=== $t ($SECS s)"
    stamp=fuzz/artifacts/$t/.started
    touch "$stamp"
    rc=0
    # -timeout: one input running 10 s is a hang, reported like a crash.
    if [ "$SMOKE" = 1 ]; then
        "$SMOKE_DIR/$HOST/debug/$t" "${corpus[@]}" -max_total_time="$SECS" -timeout=10 \
            -print_final_stats=1 -artifact_prefix=fuzz/artifacts/"$t"/ >"$log" 2>&1 || rc=$?
    else
        cargo fuzz run --fuzz-dir fuzz "$t" "${corpus[@]}" -- \
            -max_total_time="$SECS" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || rc=$?
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$runs" ] || runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    crashes=0
    if [ "$rc" -ne 0 ]; then
        crashes=$(find fuzz/artifacts/"$t" -newer "$stamp" \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
        [ "$crashes" -gt 0 ] || crashes="1 (exit $rc, see $log)"
        CRASHED=$((CRASHED + 1))
        grep -m1 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" || true
    fi
    ROWS+=("$(printf '%-12s runs %-10s crashes %-4s %s' "$t" "${runs:-?}" "$crashes" "${cov:-cov: ?}")")
done

echo
echo "=== fuzz summary ($SECS s per target)"
printf '%s\n' "${ROWS[@]}"
if [ "$CRASHED" -ne 0 ]; then
    echo "$CRASHED target(s) crashed: inputs and logs under fuzz/artifacts/"
    exit 1
fi
echo "no crashes"
