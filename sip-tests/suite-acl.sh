#!/usr/bin/env bash
# IP ACL. SIPp sends from other loopback addresses with -i 127.0.0.x (SIPp
# binds its socket to that address, so it is the packet's source address).
#   reject: allow = 127.0.0.1/32 only; an INVITE from 127.0.0.2 (UDP and TCP)
#           gets 403, the ACK stops any 403 retransmission; 127.0.0.1 still
#           gets 200 for OPTIONS.
#   drop:   same allow list, action "drop": NO response at all within 2.5 s
#           (SIPp's message log must show nothing received: SIPp itself, with
#           -default_behaviors none, would pass a call that got a 403);
#           127.0.0.1 still gets 200.
#   deny:   allow = 127.0.0.0/8, deny = 127.0.0.3/32: 127.0.0.3 gets 403,
#           127.0.0.2 gets 200 (deny beats allow).
# Ports: SIP 15070/15071/15072, HTTP 18081/18082/18083. T1 is 100 ms, so a
# 403 retransmitted despite the ACK would show up within the 1.5 s wait.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_tools
holdless_bin
export T1_MS=100

# --- action = "reject"
SIP_PORT=15070 HTTP_PORT=18081
ACL_ALLOW='["127.0.0.1/32"]' ACL_ACTION=reject write_config "$WORK/reject.toml"
if hl_start acl-reject "$WORK/reject.toml" "$SIP_PORT" "$HTTP_PORT"; then
    sipp_case acl-reject-invite-udp 0 "INVITE over UDP from 127.0.0.2 -> 403, ACKed" \
        -sf "$SCEN/invite-expect-403.xml" -i 127.0.0.2 -s +15550001000 -m 1 "127.0.0.1:$SIP_PORT"
    if [ "$SIPP_RC" -eq 0 ]; then
        check acl-reject-ack-absorbed "no 403 arrives later than 150 ms after the ACK" \
            python3 "$SIPT_DIR/msglog.py" quiet-after-ack "$WORK/acl-reject-invite-udp.msg" 403 150
    fi
    sipp_case acl-reject-invite-tcp 0 "INVITE over TCP from 127.0.0.2 -> 403, ACKed" \
        -sf "$SCEN/invite-expect-403.xml" -t t1 -i 127.0.0.2 -s +15550001000 -m 1 "127.0.0.1:$SIP_PORT"
    sipp_case acl-reject-allowed 0 "OPTIONS from 127.0.0.1 (allowed) -> 200" \
        -sf "$SCEN/options.xml" -m 1 "127.0.0.1:$SIP_PORT"
    hl_stop
fi

# --- action = "drop"
SIP_PORT=15071 HTTP_PORT=18082
ACL_ALLOW='["127.0.0.1/32"]' ACL_ACTION=drop write_config "$WORK/drop.toml"
if hl_start acl-drop "$WORK/drop.toml" "$SIP_PORT" "$HTTP_PORT"; then
    sipp_silent_case acl-drop-invite "INVITE over UDP from 127.0.0.2 -> no response at all within 2.5 s" \
        -sf "$SCEN/invite-expect-silence.xml" -i 127.0.0.2 -s +15550001000 -m 1 "127.0.0.1:$SIP_PORT"
    sipp_silent_case acl-drop-options "OPTIONS over UDP from 127.0.0.2 -> no response at all within 2.5 s" \
        -sf "$SCEN/options-expect-silence.xml" -i 127.0.0.2 -m 1 "127.0.0.1:$SIP_PORT"
    sipp_case acl-drop-allowed 0 "OPTIONS from 127.0.0.1 (allowed) -> 200" \
        -sf "$SCEN/options.xml" -m 1 "127.0.0.1:$SIP_PORT"
    hl_stop
fi

# --- deny list inside an allowed range
SIP_PORT=15072 HTTP_PORT=18083
ACL_ALLOW='["127.0.0.0/8"]' ACL_DENY='["127.0.0.3/32"]' write_config "$WORK/deny.toml"
if hl_start acl-deny "$WORK/deny.toml" "$SIP_PORT" "$HTTP_PORT"; then
    sipp_case acl-deny-invite 0 "INVITE from 127.0.0.3 (allowed range, denied host) -> 403, ACKed" \
        -sf "$SCEN/invite-expect-403.xml" -i 127.0.0.3 -s +15550001000 -m 1 "127.0.0.1:$SIP_PORT"
    sipp_case acl-deny-other 0 "OPTIONS from 127.0.0.2 (allowed range, not denied) -> 200" \
        -sf "$SCEN/options.xml" -i 127.0.0.2 -m 1 "127.0.0.1:$SIP_PORT"
    hl_stop
fi
suite_finish
