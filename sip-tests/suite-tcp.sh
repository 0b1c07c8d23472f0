#!/usr/bin/env bash
# SIP over TCP: framing and connection reuse.
#   sequential: 100 OPTIONS one after another on ONE connection (-t t1 -l 1)
#   per-call:   20 OPTIONS, each on its own connection (-t tn)
#   pipelined:  3 OPTIONS in one write (SIPp), 3 x 200 with CSeqs {1,2,3}
#   tcp-framing.py: 3 OPTIONS in one send(), a message split over 3 writes,
#               a CRLFCRLF keep-alive answered by exactly one CRLF; with
#               tcp_idle_timeout_secs = 3: a silent connection is closed after
#               ~3 s, a connection with a request every 1.5 s stays open
# Ports: SIP 15090, HTTP 18085.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_tools
holdless_bin

SIP_PORT=15090 HTTP_PORT=18085 IDLE=3
TCP_IDLE_SECS=$IDLE write_config "$WORK/tcp.toml"

cseqs_are_123() {  # LOGFILE -- the pipelined scenario logged "got 200 for CSeq N"
    local got
    got=$(sed -n 's/^got 200 for CSeq \([0-9]*\).*/\1/p' "$1" | sort -n | tr '\n' ' ')
    echo "CSeqs answered: $got"
    [ "$got" = "1 2 3 " ]
}

if hl_start tcp "$WORK/tcp.toml" "$SIP_PORT" "$HTTP_PORT"; then
    sipp_case tcp-sequential-100 0 "100 OPTIONS in sequence on one TCP connection -> 100 x 200" \
        -sf "$SCEN/options.xml" -t t1 -m 100 -l 1 -r 1000 "127.0.0.1:$SIP_PORT"
    sipp_case tcp-conn-per-call 0 "20 OPTIONS, one TCP connection each -> 20 x 200" \
        -sf "$SCEN/options.xml" -t tn -max_socket 100 -m 20 -l 5 -r 100 "127.0.0.1:$SIP_PORT"
    sipp_case tcp-pipelined 0 "3 OPTIONS written back to back on one connection -> 3 x 200" \
        -sf "$SCEN/options-pipelined.xml" -key eol $'\r\n' -t t1 -m 1 "127.0.0.1:$SIP_PORT"
    if [ "$SIPP_RC" -eq 0 ]; then
        check tcp-pipelined-cseq "the three 200s carry CSeq 1, 2 and 3" \
            cseqs_are_123 "$WORK/tcp-pipelined.log"
    fi
    # tcp-framing.py prints its own PASS/FAIL lines; count them
    out=$(timeout 30 python3 "$SIPT_DIR/tcp-framing.py" 127.0.0.1 "$SIP_PORT" "$IDLE" 2>&1) || true
    while IFS= read -r line; do
        case $line in
            "PASS: "*) name=${line#PASS: tcp-framing/}; pass "py-${name%%:*}" "${name#*: }" ;;
            "FAIL: "*) name=${line#FAIL: tcp-framing/}; fail "py-${name%%:*}" "${name#*: }" ;;
            *) echo "    > $line" ;;
        esac
    done <<<"$out"
    grep -q '^PASS: ' <<<"$out" || grep -q '^FAIL: ' <<<"$out" ||
        fail tcp-framing "tcp-framing.py printed no result"
    hl_alive tcp-alive && pass tcp-alive "holdless still running after the cases"
    hl_stop
fi
suite_finish
