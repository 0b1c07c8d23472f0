#!/usr/bin/env bash
# INVITE to a number no call target owns -> 404, and RFC 3261 §17.2.1 on the
# server transaction, with T1 = 100 ms (T2 = 4 s, so Timer H = 64*T1 = 6.4 s):
#   404 + ACK (UDP): after the ACK no more 404s (the ACK is absorbed, Timer G
#                    stops). Without that, 404s would follow at +0.1/0.3/0.7 s...
#   no ACK (UDP):    the 404 is retransmitted (Timer G: +0.1, 0.3, 0.7, 1.5, 3.1,
#                    6.3 s) and stops at Timer H: 6..9 copies in all, the last
#                    no later than 7.5 s after the first, none after that in a
#                    12 s watch (without Timer H the next would come at 10.3 s).
#   404 + ACK (TCP): exactly one 404 (Timer G only runs on unreliable transports).
# Ports: SIP 15080, HTTP 18084.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_tools
holdless_bin

SIP_PORT=15080 HTTP_PORT=18084
T1_MS=100 T2_MS=4000 write_config "$WORK/invite.toml"
UNKNOWN=+15559999999   # no call target owns it (billing is +15550001000)

if hl_start invite "$WORK/invite.toml" "$SIP_PORT" "$HTTP_PORT"; then
    sipp_case invite-404-ack 0 "INVITE $UNKNOWN over UDP -> 404, ACKed" \
        -sf "$SCEN/invite-expect-404-ack.xml" -s "$UNKNOWN" -m 1 "127.0.0.1:$SIP_PORT"
    if [ "$SIPP_RC" -eq 0 ]; then
        check invite-404-ack-absorbed "no 404 later than 150 ms after the ACK (2.5 s watched)" \
            python3 "$SIPT_DIR/msglog.py" quiet-after-ack "$WORK/invite-404-ack.msg" 404 150
    fi

    sipp_case invite-404-noack 0 "INVITE $UNKNOWN over UDP -> 404, never ACKed, 12 s watched" \
        -sf "$SCEN/invite-expect-404-noack.xml" -s "$UNKNOWN" -m 1 "127.0.0.1:$SIP_PORT"
    if [ "$SIPP_RC" -eq 0 ]; then
        check invite-404-timer-g-h "404 retransmitted (>= 5 times) then stopped by Timer H (6.4 s)" \
            python3 "$SIPT_DIR/msglog.py" timer-g "$WORK/invite-404-noack.msg" 404 6 9 7500
    fi

    sipp_case invite-404-tcp 0 "INVITE $UNKNOWN over TCP -> 404, ACKed" \
        -sf "$SCEN/invite-expect-404-ack.xml" -t t1 -s "$UNKNOWN" -m 1 "127.0.0.1:$SIP_PORT"
    if [ "$SIPP_RC" -eq 0 ]; then
        check invite-404-tcp-once "exactly one 404 over TCP (no Timer G on a reliable transport)" \
            python3 "$SIPT_DIR/msglog.py" timer-g "$WORK/invite-404-tcp.msg" 404 1 1 0
    fi
    hl_alive invite-alive && pass invite-alive "holdless still running after the cases"
    hl_stop
fi
suite_finish
