# Shared helpers for sip-tests/suite-*.sh and load/*.sh. Sourced, not run.
#
# Everything here talks to 127.0.0.0/8 or [::1] only. Every holdless we start
# is remembered by PID and stopped by PID (SIGTERM, then SIGKILL after a
# deadline); every SIPp run is bounded by -m, -timeout/-timeout_error and
# timeout(1).
#
# Environment:
#   HOLDLESS_BIN   binary to test (default: $CARGO_TARGET_DIR or <repo>/target,
#                  then /release/holdless; built with cargo if missing)
#   KEEP_WORK=1    keep the suite's temp dir even when everything passed
#   RUST_LOG       passed to holdless (default: info)

SIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SIPT_DIR/.." && pwd)
SCEN=$SIPT_DIR/scenarios
SUITE=${SUITE:-$(basename "$0" .sh)}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/holdless-$SUITE.XXXXXX")
PASSED=0
FAILED=0
HL_PID=          # the running holdless, if any
HL_LOG=          # its log file
HL_NAME=         # the name given to hl_start
SIPP_RC=         # exit status of the last sipp_run
SIPP_TIMEOUT=${SIPP_TIMEOUT:-20}   # seconds, per SIPp run (hard stop)

# ---------------------------------------------------------------- reporting

pass() {  # CASE DETAIL...
    PASSED=$((PASSED + 1))
    printf 'PASS  %s/%s  %s\n' "$SUITE" "$1" "${*:2}"
}

fail() {  # CASE DETAIL...  (then prints the logs that explain it)
    fail_line "$@"
    dump_logs "$1"
}

fail_line() {  # CASE DETAIL...
    FAILED=$((FAILED + 1))
    printf 'FAIL  %s/%s  %s\n' "$SUITE" "$1" "${*:2}"
}

dump_logs() {  # CASE
    local f
    if [ -n "$HL_LOG" ] && [ -s "$HL_LOG" ]; then
        echo "    --- holdless log ($HL_LOG), last 30 lines:"
        tail -n 30 "$HL_LOG" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/    | /'
    fi
    if [ -s "$WORK/$1.err" ]; then
        echo "    --- SIPp errors ($WORK/$1.err), last 25 lines:"
        tail -n 25 "$WORK/$1.err" | sed 's/^/    | /'
        echo
    fi
    if [ -s "$WORK/$1.out" ]; then
        echo "    --- SIPp final screen ($WORK/$1.out), message counts:"
        { grep -E -e '-->|<--|Pause|Successful call|Failed call|timed out|rror' "$WORK/$1.out" || true; } |
            tail -n 20 | sed 's/^/    | /'
    fi
    if [ -s "$WORK/$1.msg" ]; then
        echo "    --- SIP messages seen by SIPp ($WORK/$1.msg):"
        python3 "$SIPT_DIR/msglog.py" list "$WORK/$1.msg" 2>&1 | tail -n 20 | sed 's/^/    | /'
    fi
}

# check CASE DESCRIPTION CMD...  -- PASS if CMD exits 0; its output is the detail
check() {
    local name=$1 desc=$2 out rc=0
    shift 2
    out=$("$@" 2>&1) || rc=$?
    if [ "$rc" -eq 0 ]; then
        pass "$name" "$desc${out:+ -- $(echo "$out" | tail -n 1)}"
    else
        fail_line "$name" "$desc -- exit $rc"
        echo "$out" | tail -n 20 | sed 's/^/    > /'
        dump_logs "$name"
    fi
}

suite_finish() {  # prints the summary; exit status 1 if anything failed
    hl_stop_quiet
    echo "suite $SUITE: $PASSED passed, $FAILED failed"
    if [ "$FAILED" -eq 0 ] && [ "${KEEP_WORK:-0}" != 1 ]; then
        rm -rf "$WORK"
    else
        echo "suite $SUITE: logs kept in $WORK"
    fi
    [ "$FAILED" -eq 0 ]
}

on_exit() {  # safety net: never leave a holdless running
    if [ -n "$HL_PID" ] && kill -0 "$HL_PID" 2>/dev/null; then
        kill -TERM "$HL_PID" 2>/dev/null || true
        sleep 1
        kill -KILL "$HL_PID" 2>/dev/null || true
    fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the binary

holdless_bin() {  # makes sure $HOLDLESS_BIN exists (builds the default one)
    local default=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/holdless
    HOLDLESS_BIN=${HOLDLESS_BIN:-$default}
    if [ ! -x "$HOLDLESS_BIN" ]; then
        if [ "$HOLDLESS_BIN" != "$default" ]; then
            echo "HOLDLESS_BIN=$HOLDLESS_BIN is not an executable" >&2
            return 1
        fi
        echo "building $HOLDLESS_BIN (cargo build --release)" >&2
        (cd "$REPO_ROOT" && cargo build --release) >&2
    fi
}

require_tools() {
    local t
    for t in sipp python3 curl ss timeout; do
        command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; return 1; }
    done
}

# ---------------------------------------------------------------- config

# write_config FILE -- a holdless config for the tests. Set these variables
# (e.g. as a prefix: ACL_ACTION=drop write_config f.toml) to change it:
#   SIP_PORT HTTP_PORT (required)  SIP_UDP SIP_TCP (TOML arrays)  TCP_IDLE_SECS
#   T1_MS T2_MS T4_MS  ACL_ACTION ACL_ALLOW ACL_DENY
#   FLOOD_MAX FLOOD_WINDOW_MS FLOOD_ACTION
write_config() {
    local file=$1 data udp tcp allow deny
    data=$(dirname "$file")/data-$(basename "$file" .toml)
    mkdir -p "$data"
    # (defaults computed here: quotes inside ${x:-...} in a here-doc are eaten)
    udp=${SIP_UDP:-'["127.0.0.1:'$SIP_PORT'"]'}
    tcp=${SIP_TCP:-'["127.0.0.1:'$SIP_PORT'"]'}
    allow=${ACL_ALLOW:-'["127.0.0.1/32", "::1/128"]'}
    deny=${ACL_DENY:-'[]'}
    cat >"$file" <<EOF
# written by sip-tests/lib.sh for $SUITE
[sip]
udp = $udp
tcp = $tcp
tcp_idle_timeout_secs = ${TCP_IDLE_SECS:-30}

[sip.timers]
t1_ms = ${T1_MS:-500}
t2_ms = ${T2_MS:-4000}
t4_ms = ${T4_MS:-5000}

[http]
listen = "127.0.0.1:$HTTP_PORT"

[store]
data_dir = "$data"

[acl]
action = "${ACL_ACTION:-reject}"
allow = $allow
deny = $deny

[flood]
max_requests = ${FLOOD_MAX:-1000000}
window_ms = ${FLOOD_WINDOW_MS:-1000}
action = "${FLOOD_ACTION:-reject}"
retry_after_secs = 5

[egress]
allow = ["127.0.0.0/8", "::1/128"]

[[call_targets]]
id = "billing"
name = "Billing"
numbers = ["+15550001000"]
EOF
}

# A time zone where it is around noon now, so call-target hours "00:00-24:00" never close
# during a run (an ASAP callback is only offered when it would launch before closing).
noon_zone() {
    local h off
    h=$(date -u +%-H)
    off=$(((12 - h + 24) % 24))
    [ "$off" -gt 12 ] && off=$((off - 24))
    if [ "$off" -eq 0 ]; then echo "Etc/UTC"; elif [ "$off" -gt 0 ]; then echo "Etc/GMT-$off"; else echo "Etc/GMT+$((-off))"; fi
}

# ---------------------------------------------------------------- holdless

port_busy() {  # PORT -> 0 if something listens on it (UDP or TCP)
    [ -n "$(ss -Hlnut "sport = :$1" 2>/dev/null)" ]
}

# hl_start NAME CONFIG SIP_PORT HTTP_PORT -- check-config, run, wait until it
# answers /healthz and its SIP port is bound. Returns 1 (after a FAIL line)
# if it does not come up within 15 s.
hl_start() {
    local name=$1 cfg=$2 sip=$3 http=$4 i out
    HL_NAME=$name
    HL_LOG=$WORK/holdless-$name.log
    for i in "$sip" "$http"; do
        if port_busy "$i"; then
            HL_LOG=
            fail "$name-start" "port $i is already in use (another test run?): $(ss -Hlnutp "sport = :$i" | head -n 2)"
            return 1
        fi
    done
    if ! out=$("$HOLDLESS_BIN" check-config "$cfg" 2>&1); then
        HL_LOG=
        fail "$name-check-config" "holdless check-config rejected $cfg:"
        echo "$out" | head -n 20 | sed 's/^/    > /'
        return 1
    fi
    NO_COLOR=1 RUST_LOG=${RUST_LOG:-info} "$HOLDLESS_BIN" run --config "$cfg" >"$HL_LOG" 2>&1 &
    HL_PID=$!
    for i in $(seq 150); do
        if ! kill -0 "$HL_PID" 2>/dev/null; then
            wait "$HL_PID" && i=0 || i=$?
            HL_PID=
            fail "$name-start" "holdless exited during start-up (status $i)"
            return 1
        fi
        if curl -fsS --max-time 1 "http://127.0.0.1:$http/healthz" >/dev/null 2>&1 &&
            [ -n "$(ss -Hlnu "sport = :$sip" 2>/dev/null)" ]; then
            return 0
        fi
        sleep 0.1
    done
    fail "$name-start" "holdless did not answer http://127.0.0.1:$http/healthz with its SIP port $sip bound within 15 s"
    hl_stop_quiet
    return 1
}

# hl_stop -- SIGTERM, wait up to 10 s; the shutdown is a test case of its own
# (PASS: exited with status 0 in time).
hl_stop() {
    [ -n "$HL_PID" ] || return 0
    local i rc=0 t0=$SECONDS
    kill -TERM "$HL_PID" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$HL_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$HL_PID" 2>/dev/null; then
        kill -KILL "$HL_PID" 2>/dev/null || true
        wait "$HL_PID" 2>/dev/null || true
        HL_PID=
        fail "$HL_NAME-shutdown" "holdless still running 10 s after SIGTERM (killed)"
        return 0
    fi
    wait "$HL_PID" || rc=$?
    HL_PID=
    if [ "$rc" -eq 0 ]; then
        pass "$HL_NAME-shutdown" "exited with status 0 within $((SECONDS - t0 + 1)) s of SIGTERM"
    else
        fail "$HL_NAME-shutdown" "exited with status $rc after SIGTERM (want 0)"
    fi
}

hl_stop_quiet() {  # stop without reporting (used on the error paths)
    [ -n "$HL_PID" ] || return 0
    kill -TERM "$HL_PID" 2>/dev/null || true
    timeout 10 tail --pid="$HL_PID" -f /dev/null 2>/dev/null || kill -KILL "$HL_PID" 2>/dev/null || true
    wait "$HL_PID" 2>/dev/null || true
    HL_PID=
}

hl_alive() {  # CASE -- a FAIL line (and status 1) if holdless has died
    if [ -n "$HL_PID" ] && kill -0 "$HL_PID" 2>/dev/null; then
        return 0
    fi
    fail "$1" "holdless is not running any more"
    return 1
}

# ---------------------------------------------------------------- SIPp

# sipp_run CASE SIPP-ARGS... -- one bounded SIPp run; sets SIPP_RC. The
# arguments must include -m. Logs: $WORK/CASE.{out,err,msg,log,screen}.
sipp_run() {
    local name=$1
    shift
    case " $* " in *" -m "*) ;; *) echo "sipp_run $name: -m N is required" >&2; return 2 ;; esac
    rm -f "$WORK/$name".*
    SIPP_RC=0
    (cd "$WORK" && exec timeout -k 5 $((SIPP_TIMEOUT + 15)) sipp "$@" \
        -nostdin -default_behaviors none \
        -timeout "${SIPP_TIMEOUT}s" -timeout_error \
        -trace_err -error_file "$WORK/$name.err" \
        -trace_msg -message_file "$WORK/$name.msg" \
        -trace_logs -log_file "$WORK/$name.log" \
        -trace_screen -screen_file "$WORK/$name.screen") \
        >"$WORK/$name.out" 2>&1 </dev/null || SIPP_RC=$?
}

# sipp_case CASE WANT_RC DESCRIPTION SIPP-ARGS... -- run SIPp, PASS if its exit
# status is WANT_RC (0: every call succeeded; 1: a call failed). Always
# returns 0 (so set -e goes on); look at SIPP_RC for follow-up checks.
sipp_case() {
    local name=$1 want=$2 desc=$3
    shift 3
    sipp_run "$name" "$@"
    if [ "$SIPP_RC" -eq "$want" ]; then
        pass "$name" "$desc"
    else
        fail "$name" "$desc -- sipp exit status $SIPP_RC, want $want ($(sipp_rc_meaning "$SIPP_RC"))"
    fi
}

# sipp_silent_case CASE DESCRIPTION SIPP-ARGS... -- run SIPp, PASS only if it
# exits 0 AND its message log shows nothing received (msglog.py silent): with
# -default_behaviors none SIPp ignores an unexpected response and still exits
# 0, so its exit status alone cannot tell a drop from an answer.
sipp_silent_case() {
    local name=$1 desc=$2 out rc=0
    shift 2
    sipp_run "$name" "$@"
    out=$(python3 "$SIPT_DIR/msglog.py" silent "$WORK/$name.msg" 2>&1) || rc=$?
    if [ "$SIPP_RC" -eq 0 ] && [ "$rc" -eq 0 ]; then
        pass "$name" "$desc -- $out"
    else
        fail "$name" "$desc -- sipp exit status $SIPP_RC ($(sipp_rc_meaning "$SIPP_RC")); message log: $out"
    fi
}

sipp_rc_meaning() {
    case $1 in
        0) echo "all calls succeeded" ;;
        1) echo "at least one call failed" ;;
        97) echo "exit on internal command / global timeout" ;;
        99) echo "no calls processed" ;;
        124 | 137) echo "killed by timeout(1)" ;;
        254) echo "socket bind failure" ;;
        255) echo "fatal error or -timeout_error reached" ;;
        *) echo "?" ;;
    esac
}
