#!/usr/bin/env bash
# Bridged calls (issue 3): SIPp caller -> holdless -> SIPp contact center, real RTP.
#   call:       UUI crosses, both sides play g711a.pcap (236 packets each way) through
#               holdless's media ports; the relay counters show RTP both ways.
#   tcp:        the same call with the caller on TCP.
#   cancel:     the caller CANCELs after 180: 200 + 487 to it, CANCEL to the callee.
#   busy:       the callee answers 486: the caller gets 486.
#   no-answer:  the callee rings forever: ring timeout (3 s) -> 480, CANCEL to the callee.
#   callee-bye: the callee hangs up: BYE reaches the caller.
#   hold:       re-INVITE sendonly -> recvonly answer, re-INVITE sendrecv -> sendrecv.
# Ports: SIP 15160, HTTP 18160, contact center 15190, caller 15170, media 35000-35999.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_tools
holdless_bin

SIP_PORT=15160 HTTP_PORT=18160 CC_PORT=15190 UAC_PORT=15170
BR=$SIPT_DIR/bridge
CFG=$WORK/bridge.toml
write_config "$CFG"
{
    echo "bridge_to = \"sip:+15550009999@127.0.0.1:$CC_PORT\""
    echo
    echo "[calls]"
    echo "ring_timeout_secs = 3"
    echo
    echo "[media]"
    echo "address = \"127.0.0.1\""
    echo "port_min = 35000"
    echo "port_max = 35999"
} >>"$CFG"

# run_pair CASE UAS_XML UAC_XML [extra UAC args...]: the contact center in the
# background, then the caller; both must end with status 0.
run_pair() {
    local name=$1 uas=$2 uac=$3 uas_rc=0
    shift 3
    (cd "$WORK" && exec timeout -k 5 $((SIPP_TIMEOUT + 15)) sipp -sf "$BR/$uas" -i 127.0.0.1 -p "$CC_PORT" \
        -mi 127.0.0.1 -mp 46000 -m 1 -nostdin -timeout "${SIPP_TIMEOUT}s" -timeout_error \
        -trace_err -error_file "$WORK/$name-uas.err" -trace_msg -message_file "$WORK/$name-uas.msg" \
        -trace_logs -log_file "$WORK/$name-uas.log") >"$WORK/$name-uas.out" 2>&1 </dev/null &
    local uas_pid=$!
    sleep 0.3
    sipp_run "$name" -sf "$BR/$uac" -s +15550001000 -i 127.0.0.1 -p "$UAC_PORT" -mi 127.0.0.1 -mp 47000 \
        -m 1 "$@" "127.0.0.1:$SIP_PORT"
    wait "$uas_pid" || uas_rc=$?
    if [ "$SIPP_RC" -eq 0 ] && [ "$uas_rc" -eq 0 ]; then
        return 0
    fi
    echo "caller sipp status $SIPP_RC ($(sipp_rc_meaning "$SIPP_RC")), contact center sipp status $uas_rc ($(sipp_rc_meaning "$uas_rc"))"
    tail -n 5 "$WORK/$name-uas.err" 2>/dev/null | sed 's/^/    uas> /'
    return 1
}

metric() {  # NAME -> the value of a holdless metric (0 if absent)
    curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print 0 }'
}

case_pair() {  # CASE DESCRIPTION UAS UAC [args]
    local name=$1 desc=$2 out
    shift 2
    if out=$(run_pair "$name" "$@"); then
        pass "$name" "$desc"
    else
        fail "$name" "$desc -- $out"
    fi
}

rtp_both_ways() {  # BEFORE_CALLER BEFORE_CALLEE: at least 200 packets each way since
    local a b
    a=$(( $(metric 'holdless_rtp_relayed_packets_total{from="caller"}') - $1 ))
    b=$(( $(metric 'holdless_rtp_relayed_packets_total{from="callee"}') - $2 ))
    echo "relayed caller->callee $a, callee->caller $b packets"
    [ "$a" -ge 200 ] && [ "$b" -ge 200 ]
}

if hl_start bridge "$CFG" "$SIP_PORT" "$HTTP_PORT"; then
    for transport in u1 t1; do
        a0=$(metric 'holdless_rtp_relayed_packets_total{from="caller"}')
        b0=$(metric 'holdless_rtp_relayed_packets_total{from="callee"}')
        case_pair "bridge-call-$transport" "bridged call ($transport caller), g711a both ways, caller hangs up" \
            uas-answer.xml uac-call.xml -t "$transport"
        check "bridge-rtp-$transport" "RTP relayed both ways through holdless" rtp_both_ways "$a0" "$b0"
        check "bridge-uui-$transport" "X-User-To-User reached the contact center" \
            grep -q "X-User-To-User=4142432d3132333435" "$WORK/bridge-call-$transport-uas.log"
    done
    case_pair bridge-cancel "caller CANCELs after 180: 200 + 487, callee cancelled" uas-ring.xml uac-cancel.xml
    case_pair bridge-busy "callee busy: 486 relayed" uas-busy.xml uac-expect-486.xml
    case_pair bridge-no-answer "callee never answers: 480 after the ring timeout, callee cancelled" \
        uas-ring.xml uac-expect-480.xml
    case_pair bridge-callee-bye "callee hangs up: BYE relayed to the caller" uas-hangs-up.xml uac-callee-hangs-up.xml
    case_pair bridge-hold "re-INVITE hold (sendonly/recvonly) and resume (sendrecv)" uas-hold.xml uac-hold.xml
    sleep 1
    check bridge-no-calls-left "no call left in holdless" test "$(metric holdless_calls_active)" -eq 0
    hl_alive bridge-alive && pass bridge-alive "holdless still running after the cases"
    hl_stop
fi
suite_finish
