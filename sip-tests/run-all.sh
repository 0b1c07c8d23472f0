#!/usr/bin/env bash
# The single test command: cargo test, cargo build --release, then every
# sip-tests/suite-*.sh against the release binary. Prints a summary and exits
# non-zero if anything failed. Everything stays on loopback.
#
# Environment: HOLDLESS_BIN (test this binary instead; skips cargo build --release),
#              SKIP_CARGO_TEST=1 (suites only), KEEP_WORK=1 (keep suite logs),
#              FUZZ_SMOKE_SECONDS=N (each fuzz target runs N s after a debug libFuzzer build,
#              sip-tests/fuzz.sh --smoke; default 3, 0 skips), FUZZ_SECONDS=N (instead, the full
#              release + AddressSanitizer build, each target N s; ~9 min to build cold here).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
START=$SECONDS
RESULTS=()
FAILURES=0

step() {  # NAME CMD... -- run one step, remember its outcome, never abort
    local name=$1 t0=$SECONDS rc=0
    shift
    echo
    echo "=== $name"
    "$@" || rc=$?
    if [ "$rc" -eq 0 ]; then
        RESULTS+=("PASS  $name ($((SECONDS - t0)) s)")
    else
        RESULTS+=("FAIL  $name (exit $rc, $((SECONDS - t0)) s)")
        FAILURES=$((FAILURES + 1))
    fi
    return 0
}

if ! command -v sipp >/dev/null; then
    echo "sipp not found: installing sip-tester"
    apt-get update && apt-get install -y sip-tester
fi
for t in sipp python3 curl ss timeout cargo; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done

if [ "${SKIP_CARGO_TEST:-0}" != 1 ]; then
    step "cargo test" cargo test
fi
BUILD_NOTE=
if [ -z "${HOLDLESS_BIN:-}" ]; then
    step "cargo build --release" cargo build --release
    bin=${CARGO_TARGET_DIR:-$ROOT/target}/release/holdless
    case ${RESULTS[-1]} in
        FAIL*) [ -x "$bin" ] && BUILD_NOTE="NOTE: the build failed; the suites ran against an older $bin ($(date -r "$bin" '+%F %T'))" ;;
    esac
fi

BIN=${HOLDLESS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/holdless}
SMOKE_SECS=${FUZZ_SMOKE_SECONDS:-3}
[ -z "${FUZZ_SECONDS:-}" ] || SMOKE_SECS=0
FUZZ_BUILD=
if [ "$SMOKE_SECS" != 0 ]; then
    # The fuzz targets' debug build (~2.5 min of both cores) runs at the lowest priority
    # while the suites, which mostly wait on real time, run; the smoke step reuses it.
    mkdir -p fuzz/artifacts
    nice -n 19 bash sip-tests/fuzz.sh --smoke --build-only >fuzz/artifacts/smoke-build.log 2>&1 &
    FUZZ_BUILD=$!
fi
# The simulated contact center runs beside the other suites: it mostly waits on real time
# (~2.5 min at a few % of a core) on addresses of its own (127.0.0.61-64).
BESIDE=sip-tests/suite-sim.sh
BESIDE_PID=
BESIDE_T0=$SECONDS
if [ -x "$BIN" ] && [ -f "$BESIDE" ]; then
    timeout -k 10 300 bash "$BESIDE" >"${TMPDIR:-/tmp}/holdless-run-all-beside.log" 2>&1 &
    BESIDE_PID=$!
fi
for suite in sip-tests/suite-*.sh; do
    [ "$suite" != "$BESIDE" ] || continue
    if [ -x "$BIN" ]; then
        step "$suite" timeout -k 10 300 bash "$suite"
    else
        RESULTS+=("FAIL  $suite (not run: no binary at $BIN)")
        FAILURES=$((FAILURES + 1))
    fi
done
if [ -n "$BESIDE_PID" ]; then
    beside_rc=0
    wait "$BESIDE_PID" || beside_rc=$?
    echo
    echo "=== $BESIDE (ran beside the others)"
    cat "${TMPDIR:-/tmp}/holdless-run-all-beside.log"
    if [ "$beside_rc" -eq 0 ]; then
        RESULTS+=("PASS  $BESIDE ($((SECONDS - BESIDE_T0)) s, beside the others)")
    else
        RESULTS+=("FAIL  $BESIDE (exit $beside_rc, beside the others)")
        FAILURES=$((FAILURES + 1))
    fi
elif [ -f "$BESIDE" ]; then
    RESULTS+=("FAIL  $BESIDE (not run: no binary at $BIN)")
    FAILURES=$((FAILURES + 1))
fi

if [ -n "${FUZZ_SECONDS:-}" ]; then
    step "fuzz ($FUZZ_SECONDS s per target)" bash sip-tests/fuzz.sh "$FUZZ_SECONDS"
elif [ -n "$FUZZ_BUILD" ]; then
    wait "$FUZZ_BUILD" || true
    step "fuzz smoke ($SMOKE_SECS s per target)" bash sip-tests/fuzz.sh --smoke "$SMOKE_SECS"
fi

echo
echo "=== summary ($((SECONDS - START)) s, repo $ROOT)"
printf '%s\n' "${RESULTS[@]}"
[ -z "$BUILD_NOTE" ] || echo "$BUILD_NOTE"
if [ "$FAILURES" -eq 0 ]; then
    echo "ALL PASSED"
else
    echo "$FAILURES step(s) FAILED"
    exit 1
fi
