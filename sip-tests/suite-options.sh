#!/usr/bin/env bash
# OPTIONS over UDP, TCP and UDP/IPv6 -> 200 with Allow/Accept/Supported;
# an unknown method -> 501; clean shutdown on SIGTERM.
# Ports: SIP 15060 (UDP+TCP, 127.0.0.1 and [::1]), HTTP 18080.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_tools
holdless_bin

SIP_PORT=15060 HTTP_PORT=18080
SIP_UDP="[\"127.0.0.1:$SIP_PORT\", \"[::1]:$SIP_PORT\"]" write_config "$WORK/options.toml"

if hl_start options "$WORK/options.toml" "$SIP_PORT" "$HTTP_PORT"; then
    sipp_case options-udp 0 "OPTIONS over UDP -> 200 with Allow (INVITE, OPTIONS), Accept, Supported" \
        -sf "$SCEN/options.xml" -m 1 "127.0.0.1:$SIP_PORT"
    sipp_case options-tcp 0 "OPTIONS over TCP -> 200 with Allow (INVITE, OPTIONS), Accept, Supported" \
        -sf "$SCEN/options.xml" -t t1 -m 1 "127.0.0.1:$SIP_PORT"
    sipp_case options-udp-ipv6 0 "OPTIONS over UDP from [::1] to [::1] -> 200" \
        -sf "$SCEN/options.xml" -i ::1 -m 1 "[::1]:$SIP_PORT"
    sipp_case options-udp-x20 0 "20 OPTIONS over UDP, 10 at a time -> 20 x 200" \
        -sf "$SCEN/options.xml" -m 20 -l 10 -r 100 "127.0.0.1:$SIP_PORT"
    sipp_case unknown-method 0 "FROBNICATE over UDP -> 501 Not Implemented" \
        -sf "$SCEN/unknown-method.xml" -m 1 "127.0.0.1:$SIP_PORT"
    hl_alive options-alive && pass options-alive "holdless still running after the cases"
    hl_stop
fi
suite_finish
