#!/usr/bin/env bash
# The callback dialler: holdless places both legs of a callback itself (the customer through
# the trunk, the contact center directly) and joins them. SIPp plays the customer's phone
# and the contact center; every case registers its callback (API request_callback, or an
# inbound transfer with UUI), lets holdless dial it (min_delay_secs = 0), and checks the SIP
# messages SIPp saw (-trace_msg), the RTP on the wire (inbound/rtpcount.py) and the call
# records of the historical API (dialler/records.py).
#   c1 happy:      customer first (via [calls] outbound_trunk: loose Route, R-URI number@trunk,
#                  From/PAI caller_id), prompt, 1, agent leg (From = customer's number, no
#                  metadata header: an API callback has none), g711a.pcap both ways, the
#                  agent's BYE -> BYE to the customer; record Successful, customerDelay,
#                  agentHangup, talkDuration > 0.
#   c2 inbound:    an inbound transfer with hex User-to-User (inbound/callers.csv), 1:
#                  callback registered, dialled, the agent INVITE carries
#                  X-User-To-User: ABC-12345 (the decoded value): the product's round trip.
#   c3 agent-first: whisper to the agent, the agent presses 1, the customer is dialled and
#                  joined; record firstPartyCalled agent, customerWaitDuration set.
#   c4 busy-retry: 486, then (retry after 2 s) 200 + 1 + agent: two records, the second
#                  retryAttempt 1 with originalId = the first's id = the callback id.
#   c5 no-answer:  the customer rings for ever: CANCEL after customer_ring_timeout_secs;
#                  record customerLegTimeout, Unavailable.
#   c6 voicemail:  no key, leave_voicemail: the voicemail prompt, BYE, leaveVoicemail; a
#                  second attempt 2 s later.
#   c7 agent-timeout: 1, the agent rings past agent_ring_timeout_secs: CANCEL to the agent,
#                  agent_unavailable to the customer, BYE; priorityQueueTimedOut, Failure.
#   c8 reschedule: 2: goodbye, BYE; customerRescheduled, Rescheduled, the callback Pending.
#   c9 restart:    three callbacks (pacing 1), holdless SIGKILLed while the first is asking
#                  its customer, restarted on the same store: each callback is completed
#                  exactly once, and only the interrupted one is dialled again.
#   trunk-auth:    a carrier trunk answers the INVITE with 407 (MD5, qop=auth): the INVITE
#                  again with Proxy-Authorization (the digest checked here), the BYE with
#                  credentials too, the password in no log line.
#   trunk-srv:     a trunk by name: SRV from a DNS server on loopback (dns.py), the first
#                  target (priority 10) answers 503, the second takes the call.
# c1-c8 run at the same time (one call target, customer port and agent port each).
#                  c0: a second caller on a call target with return_encoding = "hex" and
#                  return_header = "X-UUI": X-UUI: 4445462d3637383930;encoding=hex.
# Ports: SIP 25320, HTTP 28320, customers 25330-25339, agents 25340-25349, inbound caller
# 25350; SIPp media 38300-38390 (customers), 38400-38490 (agents), 38500 (caller); holdless
# media 39300-39499. Needs root (pcap play, rtpcount.py).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_tools
holdless_bin

SIP_PORT=25320 HTTP_PORT=28320 UAC_PORT=25350 UAC_MEDIA=38500
DL=$SIPT_DIR/dialler
IN=$SIPT_DIR/inbound
API=http://127.0.0.1:$HTTP_PORT
SIPP_TIMEOUT=60
G711A=/usr/share/sip-tester/g711a.pcap
PROMPTS="callback_from holding whisper voicemail agent_unavailable goodbye registered"

# case K's customer (trunk) port, contact center, and their media ports; cases 10 and 11
# (the trunks) live above the others' ranges
cport() { if [ "$1" -ge 10 ]; then echo $((25360 + 2 * ($1 - 10))); else echo $((25330 + $1)); fi; }
aport() { if [ "$1" -ge 10 ]; then echo $((25361 + 2 * ($1 - 10))); else echo $((25340 + $1)); fi; }
cmedia() { if [ "$1" -ge 10 ]; then echo $((38600 + 20 * ($1 - 10))); else echo $((38300 + 10 * $1)); fi; }
amedia() { if [ "$1" -ge 10 ]; then echo $((38610 + 20 * ($1 - 10))); else echo $((38400 + 10 * $1)); fi; }
DNS_PORT=25351       # the SRV case's DNS server
SRV_BACKUP=25364     # the SRV case's second target (the first answers 503)
SRV_BACKUP_MEDIA=38640

# ---------------------------------------------------------------- config

CFG=$WORK/dialler.toml
DATA=$WORK/data
mkdir -p "$DATA"
target() {  # K FIRST_PARTY [extra lines for [call_targets.dialler]] [retry lines]
    local k=$1 first=$2 dialler=${3:-} retry=${4:-}
    cat <<EOF

[[call_targets]]
id = "c$k"
name = "Dialler case $k"
numbers = ["+1555000100$k"]
organization = "demo"
contact_center = "sip:+15550009999@127.0.0.1:$(aport "$k")"
caller_id = "+1555000100$k"
first_party = "$first"
min_delay_secs = 0
pacing = ${PACING:-5}
input_timeout_secs = 2
menu_retries = 1
prompts = "$REPO_ROOT/configs/prompts"

[call_targets.dialler]
$dialler

[call_targets.retry]
busy = { attempts = 1, delay_secs = 2 }
no_answer = { attempts = 1, delay_secs = 2 }
voicemail = { attempts = 1, delay_secs = 2 }
error = { attempts = 1, delay_secs = 2 }
$retry

[[widgets]]
id = "w$k"
call_target = "c$k"
EOF
}
trunk() { echo "customer_trunk = \"t$1\""; }   # [[trunks]] t0..t9 below
{
    cat <<EOF
# written by sip-tests/suite-dialler.sh
[sip]
udp = ["127.0.0.1:$SIP_PORT"]
tcp = ["127.0.0.1:$SIP_PORT"]

[sip.timers]
t1_ms = 500
t2_ms = 4000
t4_ms = 5000

[http]
listen = "127.0.0.1:$HTTP_PORT"

[store]
data_dir = "$DATA"

[acl]
action = "reject"
allow = ["127.0.0.0/8", "::1/128"]
deny = []

[flood]
max_requests = 1000000
window_ms = 1000
action = "reject"
retry_after_secs = 5

[egress]
allow = ["127.0.0.0/8", "::1/128"]

[calls]
outbound_trunk = "sip:127.0.0.1:$(cport 1)"

[media]
address = "127.0.0.1"
port_min = 39300
port_max = 39499

[[organizations]]
id = "demo"
name = "Demo"
api_tokens = ["demo-token"]
api_allow = ["127.0.0.0/8", "::1/128"]
EOF
    target 1 customer ""
    target 2 customer "$(trunk 2)"
    target 3 agent "$(trunk 3)"
    target 4 customer "$(trunk 4)" "busy = { attempts = 3, delay_secs = 2 }"
    target 5 customer "$(trunk 5)
customer_ring_timeout_secs = 3"
    target 6 customer "$(trunk 6)
press_timeout_secs = 1
leave_voicemail = true" "voicemail = { attempts = 2, delay_secs = 2 }"
    target 7 customer "$(trunk 7)
agent_ring_timeout_secs = 3"
    target 8 customer "$(trunk 8)
reschedule_delay_secs = 600"
    PACING=1 target 9 customer "$(trunk 9)" "error = { attempts = 2, delay_secs = 2 }"
    target 0 customer "$(trunk 0)
return_encoding = 'hex'
return_header = 'X-UUI'"
    target 10 customer 'customer_trunk = "auth"'
    target 11 customer 'customer_trunk = "srv"'
    for k in 0 2 3 4 5 6 7 8 9; do
        printf '\n[[trunks]]\nid = "t%s"\nuri = "sip:127.0.0.1:%s"\n' "$k" "$(cport $k)"
    done
    cat <<EOF

[[trunks]]                  # a carrier that challenges with 407 (case trunk-auth)
id = "auth"
uri = "sip:127.0.0.1:$(cport 10)"
username = "holdless"
password = "s3cret-trunk"

[[trunks]]                  # found by SRV: _sip._udp.trunk.test (case trunk-srv)
id = "srv"
uri = "sip:trunk.test"

[dns]
nameservers = ["127.0.0.1:$DNS_PORT"]
timeout_ms = 1000
EOF
} >"$CFG"
# (the retry tables above repeat a key when a case overrides one: drop the default line)
python3 - "$CFG" <<'EOF'
import re, sys
p = sys.argv[1]
blocks = open(p).read().split("[call_targets.retry]\n")
out = [blocks[0]]
for b in blocks[1:]:
    head, sep, tail = b.partition("\n\n")
    lines = head.splitlines()
    keys = [l.split("=")[0].strip() for l in lines]
    keep = [l for i, l in enumerate(lines) if keys[i] not in keys[i + 1:]]
    out.append("\n".join(keep) + sep + tail)
open(p, "w").write("[call_targets.retry]\n".join(out))
EOF

# ---------------------------------------------------------------- helpers

recs() { python3 "$DL/records.py" "$API" "$@"; }
msg() { python3 "$DL/sipmsg.py" "$WORK/$1.msg" "${@:2}"; }

BG=
uas_bg() {  # NAME XML PORT MEDIA [sipp args...] -- a SIPp UAS in the background; BG = its pid
    local name=$1 xml=$2 port=$3 media=$4
    shift 4
    (
        sipp_run "$name" -sf "$DL/$xml" -i 127.0.0.1 -p "$port" -mi 127.0.0.1 -mp "$media" "$@"
        exit "$SIPP_RC"
    ) &
    BG=$!
}

sipp_ok() {  # CASE PID DESCRIPTION -- wait for a background SIPp; PASS if it exited 0
    local rc=0
    wait "$2" || rc=$?
    if [ "$rc" -eq 0 ]; then
        pass "$1" "$3"
    else
        fail "$1" "$3 -- sipp exit status $rc ($(sipp_rc_meaning "$rc"))"
    fi
}

request() {  # K NUMBER -> the callback id (empty, and a FAIL line, if refused)
    local out
    if out=$(recs request "w$1" "$2" 2>&1); then
        echo "$out"
    else
        fail_line "c$1-request" "request_callback for $2 -- $out" >&2
        echo ""
    fi
}

RTPW_PID=
rtp_watch() {  # NAME PORT... : counts RTP to/from the ports until rtp_watch_stop
    local name=$1 i
    shift
    local args=()
    for i in "$@"; do args+=(--port "$i"); done
    args+=(--prompts "$REPO_ROOT/configs/prompts")
    for i in $PROMPTS; do args+=(--prompt "$i"); done
    rm -f "$WORK/$name.rtp.json" "$WORK/$name.rtp.ready"
    (cd "$IN" && exec python3 rtpcount.py "$WORK/$name.rtp.json" "${args[@]}" --match "$G711A" \
        --seconds 240) >"$WORK/$name.rtp.ready" 2>"$WORK/$name.rtp.err" &
    RTPW_PID=$!
    for i in $(seq 100); do
        grep -q ready "$WORK/$name.rtp.ready" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "rtpcount.py did not start: $(cat "$WORK/$name.rtp.err")" >&2
}

rtp_watch_stop() {
    [ -n "$RTPW_PID" ] || return 0
    kill -TERM "$RTPW_PID" 2>/dev/null || true
    wait "$RTPW_PID" 2>/dev/null || true
    RTPW_PID=
}

rtp() {  # NAME PORT FIELD -> the count (in, out, in_matched, in_prompt.holding ...)
    python3 - "$WORK/$1.rtp.json" "$2" "$3" <<'EOF'
import json, sys
try:
    c = json.load(open(sys.argv[1]))[sys.argv[2]]
except (OSError, ValueError, KeyError):
    print(0); sys.exit()
for k in sys.argv[3].split("."):
    c = c.get(k, 0) if isinstance(c, dict) else 0
print(c)
EOF
}

heard() {  # WHO PORT PROMPT [MIN_PERCENT]: at least MIN % (90) of PROMPT.wav's distinctive
    # frames reached PORT
    local n total min=${4:-90}
    n=$(rtp all "$2" "in_prompt.$3")
    total=$(rtp all prompt_frames "$3")
    echo "$3.wav: $n of its $total distinctive 20 ms frames reached the $1 (want >= $min %)"
    [ "$total" -gt 0 ] && [ $((n * 100)) -ge $((total * min)) ]
}

both_ways() {  # K: g711a.pcap payloads crossed holdless both ways (>= 150 of 236 each)
    local a b
    a=$(rtp all "$(cmedia "$1")" in_matched)
    b=$(rtp all "$(amedia "$1")" in_matched)
    echo "g711a.pcap payloads agent -> customer $a, customer -> agent $b (want >= 150 of 236 each)"
    [ "$a" -ge 150 ] && [ "$b" -ge 150 ]
}

metric() {  # NAME{labels} -> its value (0 if absent)
    curl -fsS "$API/metrics" | awk -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print 0 }'
}

# ---------------------------------------------------------------- the cases (c1-c8 at once)

case_happy() {
    local k=1 n=+15550101001 c a
    uas_bg c1-cust uas-customer.xml "$(cport $k)" "$(cmedia $k)" -m 1 -d 2500
    c=$BG
    uas_bg c1-agent uas-agent.xml "$(aport $k)" "$(amedia $k)" -m 1 -d 8000
    a=$BG
    sleep 0.5
    request $k $n >/dev/null
    sipp_ok c1-cust $c "customer: INVITE, 200, prompt, 1, talk, BYE from holdless"
    sipp_ok c1-agent $a "agent: INVITE, 200, talk, BYE (agent hangs up)"
    check c1-ruri "customer INVITE Request-URI is the number at the trunk" \
        msg c1-cust first-line received INVITE "^INVITE sip:\\$n@127\\.0\\.0\\.1:$(cport $k) SIP/2\\.0"
    check c1-route "customer INVITE has a loose Route to the trunk" \
        msg c1-cust header received INVITE Route "^<sip:127\\.0\\.0\\.1:$(cport $k);lr>$"
    check c1-from "customer INVITE From is the caller ID" \
        msg c1-cust header received INVITE From "^<sip:\\+15550001001@127\\.0\\.0\\.1>"
    check c1-pai "customer INVITE P-Asserted-Identity is the caller ID" \
        msg c1-cust header received INVITE P-Asserted-Identity "^<sip:\\+15550001001@127\\.0\\.0\\.1>$"
    check c1-agent-from "agent INVITE From is the customer's number" \
        msg c1-agent header received INVITE From "^<sip:\\$n@127\\.0\\.0\\.1>"
    check c1-agent-ruri "agent INVITE goes to contact_center" \
        msg c1-agent first-line received INVITE "^INVITE sip:\\+15550009999@127\\.0\\.0\\.1:$(aport $k) SIP/2\\.0"
    check c1-agent-no-uui "agent INVITE has no X-User-To-User (an API callback has no SIP metadata)" \
        bash -c "! python3 '$DL/sipmsg.py' '$WORK/c1-agent.msg' header received INVITE X-User-To-User ."
    check c1-bye "the agent's BYE -> one BYE to the customer" msg c1-cust count received BYE 1 1
    check c1-record "record: Successful, customerDelay, agentHangup, talkDuration > 0" \
        recs records $n 1 '0:outcome="Successful"' 0:customerDelay!=null 0:agentHangup=true \
        0:talkDuration\>0 '0:firstPartyCalled="customer"' 0:retryAttempt=0 0:hasRetry=false \
        '0:source="CBWidget:w1"'
}

case_inbound() {
    local k=2 n=+15557654321 c a
    uas_bg c2-cust uas-customer.xml "$(cport $k)" "$(cmedia $k)" -m 1 -d 1000
    c=$BG
    uas_bg c2-agent uas-agent.xml "$(aport $k)" "$(amedia $k)" -m 1 -d 8000
    a=$BG
    uas_bg c0-cust uas-customer.xml "$(cport 0)" "$(cmedia 0)" -m 1 -d 1000
    local c0=$BG
    uas_bg c0-agent uas-agent.xml "$(aport 0)" "$(amedia 0)" -m 1 -d 8000
    local a0=$BG
    cp /usr/share/sip-tester/dtmf_2833_1.pcap "$WORK/keys.pcap"
    sipp_run c2-caller -sf "$IN/uac-keys.xml" -inf "$IN/callers.csv" -s +15550001002 \
        -i 127.0.0.1 -p "$UAC_PORT" -mi 127.0.0.1 -mp "$UAC_MEDIA" -m 1 "127.0.0.1:$SIP_PORT"
    if [ "$SIPP_RC" -eq 0 ]; then
        pass c2-caller "inbound transfer with hex User-to-User, 1, registered, BYE from holdless"
    else
        fail c2-caller "inbound transfer -- sipp exit status $SIPP_RC ($(sipp_rc_meaning "$SIPP_RC"))"
    fi
    sipp_ok c2-cust $c "the callback dialled: customer answers, 1, talk, BYE"
    sipp_ok c2-agent $a "agent answers, BYE"
    check c2-agent-uui "agent INVITE carries X-User-To-User: ABC-12345 (the caller's UUI, decoded)" \
        msg c2-agent header received INVITE X-User-To-User "^ABC-12345$"
    check c2-agent-from "agent INVITE From is the caller's number" \
        msg c2-agent header received INVITE From "^<sip:\\$n@127\\.0\\.0\\.1>"
    check c2-record "record: Successful, source Phone:+15550001002, the metadata kept" \
        recs records $n 1 '0:outcome="Successful"' '0:source="Phone:+15550001002"' \
        '0:metadata~ABC-12345' '0:ani="+15557654321"'
    # the same with return_encoding = "hex", return_header = "X-UUI" (callers.csv line 2)
    sed -n '1p;4p' "$IN/callers.csv" >"$WORK/csv-line2.csv"
    sipp_run c0-caller -sf "$IN/uac-keys.xml" -inf "$WORK/csv-line2.csv" -s +15550001000 \
        -i 127.0.0.1 -p "$UAC_PORT" -mi 127.0.0.1 -mp "$UAC_MEDIA" -m 1 "127.0.0.1:$SIP_PORT"
    if [ "$SIPP_RC" -eq 0 ]; then
        pass c0-caller "inbound transfer (DEF-67890 as hex UUI), 1, registered, BYE from holdless"
    else
        fail c0-caller "inbound transfer -- sipp exit status $SIPP_RC ($(sipp_rc_meaning "$SIPP_RC"))"
    fi
    sipp_ok c0-cust $c0 "the callback dialled: customer answers, 1, talk, BYE"
    sipp_ok c0-agent $a0 "agent answers, BYE"
    check c0-agent-uui "return_encoding hex, return_header X-UUI: X-UUI: 4445462d3637383930;encoding=hex" \
        msg c0-agent header received INVITE X-UUI "^4445462d3637383930;encoding=hex$"
    check c0-agent-no-default "and no X-User-To-User" \
        bash -c "! python3 '$DL/sipmsg.py' '$WORK/c0-agent.msg' header received INVITE X-User-To-User ."
    check c0-record "record: Successful, the metadata kept" \
        recs records +15559876543 1 '0:outcome="Successful"' '0:metadata~DEF-67890'
}

case_agent_first() {
    local k=3 n=+15550103003 c a
    uas_bg c3-agent uas-agent-whisper.xml "$(aport $k)" "$(amedia $k)" -m 1 -d 4000
    a=$BG
    uas_bg c3-cust uas-customer-talk.xml "$(cport $k)" "$(cmedia $k)" -m 1
    c=$BG
    sleep 0.5
    request $k $n >/dev/null
    sipp_ok c3-agent $a "agent: INVITE, 200, whisper, 1, talk, BYE"
    sipp_ok c3-cust $c "customer (dialled after the agent's 1): 200, talk, BYE from holdless"
    check c3-order "the agent was called before the customer" bash -c \
        "a=\$(python3 '$DL/sipmsg.py' '$WORK/c3-agent.msg' time received INVITE) &&
         c=\$(python3 '$DL/sipmsg.py' '$WORK/c3-cust.msg' time received INVITE) &&
         echo \"agent INVITE at \$a, customer INVITE at \$c\" && [[ \$a < \$c ]]"
    check c3-record "record: firstPartyCalled agent, customerWaitDuration set, Successful" \
        recs records $n 1 '0:outcome="Successful"' '0:firstPartyCalled="agent"' \
        0:customerWaitDuration!=null 0:agentHangup=true
}

case_busy_retry() {
    local k=4 n=+15550104004 a id
    uas_bg c4-agent uas-agent.xml "$(aport $k)" "$(amedia $k)" -m 1 -d 8000
    a=$BG
    (sleep 0.5; recs request w$k $n >"$WORK/c4.id") &
    sipp_run c4-busy -sf "$DL/uas-busy.xml" -i 127.0.0.1 -p "$(cport $k)" -mi 127.0.0.1 \
        -mp "$(cmedia $k)" -m 1
    [ "$SIPP_RC" -eq 0 ] && pass c4-busy "first attempt: 486 Busy Here, ACK" ||
        fail c4-busy "first attempt -- sipp exit status $SIPP_RC ($(sipp_rc_meaning "$SIPP_RC"))"
    sipp_run c4-cust -sf "$DL/uas-customer.xml" -i 127.0.0.1 -p "$(cport $k)" -mi 127.0.0.1 \
        -mp "$(cmedia $k)" -m 1 -d 1000
    [ "$SIPP_RC" -eq 0 ] && pass c4-cust "retry: 200, 1, talk, BYE" ||
        fail c4-cust "retry -- sipp exit status $SIPP_RC ($(sipp_rc_meaning "$SIPP_RC"))"
    sipp_ok c4-agent $a "agent answers the retry"
    id=$(cat "$WORK/c4.id" 2>/dev/null || true)
    check c4-records "records: busy (hasRetry, id = callback id), then retryAttempt 1 Successful" \
        recs records $n 2 '0:outcome="Unavailable"' 0:customerBusy=true 0:hasRetry=true \
        0:retryAttempt=0 "0:id=\"$id\"" "0:originalId=\"$id\"" \
        '1:outcome="Successful"' 1:retryAttempt=1 1:originalId=@0.id "1:id=\"$id-2\"" 1:hasRetry=false
}

case_no_answer() {
    local k=5 n=+15550105005
    (sleep 0.5; recs request w$k $n >/dev/null) &
    sipp_run c5-cust -sf "$DL/uas-ring-forever.xml" -i 127.0.0.1 -p "$(cport $k)" -mi 127.0.0.1 \
        -mp "$(cmedia $k)" -m 1
    [ "$SIPP_RC" -eq 0 ] && pass c5-cust "180, CANCEL, 200/487, ACK" ||
        fail c5-cust "customer ringing -- sipp exit status $SIPP_RC ($(sipp_rc_meaning "$SIPP_RC"))"
    check c5-cancel "one CANCEL to the customer" msg c5-cust count received CANCEL 1 1
    check c5-record "record: customerLegTimeout, Unavailable" \
        recs records $n 1 '0:outcome="Unavailable"' 0:customerLegTimeout=true 0:hasRetry=false
}

case_voicemail() {
    local k=6 n=+15550106006
    (sleep 0.5; recs request w$k $n >/dev/null) &
    sipp_run c6-cust -sf "$DL/uas-customer-silent.xml" -i 127.0.0.1 -p "$(cport $k)" \
        -mi 127.0.0.1 -mp "$(cmedia $k)" -m 2
    [ "$SIPP_RC" -eq 0 ] && pass c6-cust "two attempts: 200, no key, (voicemail prompt), BYE" ||
        fail c6-cust "customer -- sipp exit status $SIPP_RC ($(sipp_rc_meaning "$SIPP_RC"))"
    check c6-invites "two INVITEs (the retry)" msg c6-cust count received INVITE 2 2
    check c6-records "records: leaveVoicemail + hasRetry, then retryAttempt 1" \
        recs records $n 2 '0:outcome="Unavailable"' 0:leaveVoicemail=true 0:hasRetry=true \
        1:retryAttempt=1 1:originalId=@0.id 1:leaveVoicemail=true 1:hasRetry=false
}

case_agent_timeout() {
    local k=7 n=+15550107007 c a
    uas_bg c7-cust uas-customer.xml "$(cport $k)" "$(cmedia $k)" -m 1 -d 1000
    c=$BG
    uas_bg c7-agent uas-ring-forever.xml "$(aport $k)" "$(amedia $k)" -m 1
    a=$BG
    sleep 0.5
    request $k $n >/dev/null
    sipp_ok c7-agent $a "agent rings, CANCEL after agent_ring_timeout_secs, 487"
    sipp_ok c7-cust $c "customer: 200, 1, (holding, agent_unavailable), BYE from holdless"
    check c7-cancel "one CANCEL to the agent" msg c7-agent count received CANCEL 1 1
    check c7-record "record: priorityQueueTimedOut, Failure" \
        recs records $n 1 '0:outcome="Failure"' 0:priorityQueueTimedOut=true 0:customerDelay!=null
}

case_reschedule() {
    local k=8 n=+15550108008
    (sleep 0.5; recs request w$k $n >/dev/null) &
    sipp_run c8-cust -sf "$DL/uas-customer-2.xml" -i 127.0.0.1 -p "$(cport $k)" -mi 127.0.0.1 \
        -mp "$(cmedia $k)" -m 1 -d 1000
    [ "$SIPP_RC" -eq 0 ] && pass c8-cust "customer: 200, 2, goodbye, BYE from holdless" ||
        fail c8-cust "customer -- sipp exit status $SIPP_RC ($(sipp_rc_meaning "$SIPP_RC"))"
    check c8-record "record: customerRescheduled, Rescheduled" \
        recs records $n 1 '0:outcome="Rescheduled"' 0:customerRescheduled=true 0:customerDelay!=null
    check c8-status "the callback is Pending again" recs status $n Pending
}

# ---------------------------------------------------------------- c9: restart

case_restart() {
    local k=9 A=+15550109001 B=+15550109002 C=+15550109003 i ids=()
    # the first attempt: the customer answers and listens; holdless is killed meanwhile
    SIPP_TIMEOUT=5 uas_bg c9-before uas-customer-silent.xml "$(cport $k)" "$(cmedia $k)" -m 1
    local before=$BG
    sleep 0.3
    for i in $A $B $C; do ids+=("$(request $k $i)"); sleep 0.2; done
    check c9-requests "three callbacks registered" test -n "${ids[0]}" -a -n "${ids[1]}" -a -n "${ids[2]}"
    for i in $(seq 100); do
        grep -q '^ACK' "$WORK/c9-before.msg" 2>/dev/null && break
        sleep 0.1
    done
    sleep 1
    local pid=$HL_PID
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    HL_PID=
    echo "    (holdless $pid SIGKILLed while the first callback's customer listened)"
    wait "$before" || true
    check c9-before "the first callback was answered before the kill" \
        msg c9-before count received INVITE 1 1
    # after the restart: every callback answered, 1, agent, BYE
    uas_bg c9-cust uas-customer.xml "$(cport $k)" "$(cmedia $k)" -m 3 -d 800
    local c=$BG
    uas_bg c9-agent uas-agent.xml "$(aport $k)" "$(amedia $k)" -m 3 -d 2500
    local a=$BG
    if ! hl_start dialler-restarted "$CFG" "$SIP_PORT" "$HTTP_PORT"; then
        kill "$c" "$a" 2>/dev/null || true
        return 0
    fi
    sipp_ok c9-cust $c "after the restart: three callbacks answered, 1, BYE"
    sipp_ok c9-agent $a "after the restart: three agent legs"
    check c9-invites "after the restart each number INVITEd exactly once" bash -c \
        "out=\$(python3 '$DL/sipmsg.py' '$WORK/c9-cust.msg' per-user received INVITE); echo \"\$out\";
         [ \"\$out\" = '{\"$A\": 1, \"$B\": 1, \"$C\": 1}' ]"
    for i in $A $B $C; do
        check "c9-once-${i: -1}" "exactly one Successful record for $i" \
            recs records "$i" 1 --where 'outcome="Successful"' --wait 5
    done
    check c9-interrupted "the interrupted attempt: a Failure record with a retry, then the retry's" \
        recs records $A 2 '0:outcome="Failure"' 0:hasRetry=true '1:outcome="Successful"' \
        1:retryAttempt=1 1:originalId=@0.id
    check c9-status "no callback left pending for $A" recs status $A Completed,none
}

# ---------------------------------------------------------------- trunks (features to come)

case_trunk_auth() {
    local k=10 n=+15550101010 c a
    uas_bg c10-cust uas-customer-407.xml "$(cport $k)" "$(cmedia $k)" -m 1 -d 1500
    c=$BG
    uas_bg c10-agent uas-agent.xml "$(aport $k)" "$(amedia $k)" -m 1 -d 3000
    a=$BG
    sleep 0.5
    request $k $n >/dev/null
    sipp_ok c10-cust $c "trunk: 407, then the INVITE with credentials answered; 1; BYE"
    sipp_ok c10-agent $a "agent: INVITE, 200, BYE"
    check c10-digest "the second INVITE's Proxy-Authorization is the RFC 7616 answer (MD5, qop=auth)" \
        python3 "$DL/digest_check.py" "$WORK/c10-cust.log" "$n" "$(cport $k)"
    check c10-bye-auth "holdless's BYE to the trunk carries credentials (nonce count 2)" \
        msg c10-cust header received BYE Proxy-Authorization "nc=00000002"
    check c10-no-password "the password is in no log line" \
        bash -c "! grep -q s3cret-trunk '$HL_LOG'"
    check c10-record "record: Successful" recs records $n 1 '0:outcome="Successful"'
}

case_trunk_srv() {
    local k=11 n=+15550101011 d c b a
    local zone="{\"srv\": {\"_sip._udp.trunk.test\": [[10, 0, $(cport $k), \"a.trunk.test\"], [20, 0, $SRV_BACKUP, \"b.trunk.test\"]]}, \"a\": {\"a.trunk.test\": \"127.0.0.1\", \"b.trunk.test\": \"127.0.0.1\"}}"
    python3 "$DL/dns.py" "$DNS_PORT" "$zone" 60 >"$WORK/dns.log" 2>&1 &
    d=$!
    uas_bg c11-down uas-503.xml "$(cport $k)" "$(cmedia $k)" -m 1
    b=$BG
    uas_bg c11-cust uas-customer.xml "$SRV_BACKUP" "$SRV_BACKUP_MEDIA" -m 1 -d 1500
    c=$BG
    uas_bg c11-agent uas-agent.xml "$(aport $k)" "$(amedia $k)" -m 1 -d 3000
    a=$BG
    sleep 0.5
    request $k $n >/dev/null
    sipp_ok c11-down $b "the first SRV target (priority 10): INVITE, 503"
    sipp_ok c11-cust $c "the second SRV target (priority 20): INVITE, 200, 1, BYE"
    sipp_ok c11-agent $a "agent: INVITE, 200, BYE"
    kill "$d" 2>/dev/null || true
    check c11-srv-asked "holdless asked DNS for _sip._udp.trunk.test SRV" \
        grep -q "QUERY _sip._udp.trunk.test SRV" "$WORK/dns.log"
    check c11-ruri "the Request-URI names the trunk's host, not an address" \
        msg c11-cust first-line received INVITE "^INVITE sip:\\$n@trunk\\.test SIP/2\\.0"
    check c11-record "record: Successful after the failover" recs records $n 1 '0:outcome="Successful"'
}

# ---------------------------------------------------------------- run

count_lines() {  # FILE: add its PASS/FAIL lines to the totals
    local p f
    p=$(grep -c '^PASS ' "$1" || true)
    f=$(grep -c '^FAIL ' "$1" || true)
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
}

ONLY=${DIALLER_ONLY:-.}   # a regex on the case functions' names: run only these
if hl_start dialler "$CFG" "$SIP_PORT" "$HTTP_PORT"; then
    T0=$SECONDS
    ports=()
    for k in 0 1 2 3 4 5 6 7 8; do ports+=("$(cmedia $k)" "$(amedia $k)"); done
    ports+=("$UAC_MEDIA")
    rtp_watch all "${ports[@]}"
    pids=()
    names=()
    for c in happy inbound agent_first busy_retry no_answer voicemail agent_timeout reschedule \
        trunk_auth trunk_srv; do
        [[ $c =~ $ONLY ]] || continue
        "case_$c" >"$WORK/case-$c.txt" 2>&1 &
        pids+=($!)
        names+=("$c")
    done
    for i in "${!pids[@]}"; do wait "${pids[$i]}" || true; done
    rtp_watch_stop
    for c in "${names[@]}"; do
        cat "$WORK/case-$c.txt"
        count_lines "$WORK/case-$c.txt"
    done
    for c in "${names[@]}"; do
        case $c in
            happy)
                check c1-media "RTP both ways through holdless" both_ways 1
                check c1-prompt "the customer heard callback_from.wav" heard customer "$(cmedia 1)" callback_from
                ;;
            inbound)
                check c2-media "RTP both ways through holdless" both_ways 2
                check c0-media "RTP both ways through holdless" both_ways 0
                check c2-registered "the inbound caller heard registered.wav" heard caller "$UAC_MEDIA" registered
                ;;
            agent_first)
                check c3-media "RTP both ways through holdless" both_ways 3
                check c3-whisper "the agent heard whisper.wav" heard agent "$(amedia 3)" whisper
                ;;
            busy_retry) check c4-media "RTP both ways on the retry" both_ways 4 ;;
            voicemail) check c6-voicemail "the customer heard voicemail.wav" heard customer "$(cmedia 6)" voicemail ;;
            agent_timeout)
                check c7-holding "the customer heard holding.wav while the agent rang" heard customer "$(cmedia 7)" holding 50
                check c7-unavailable "the customer heard agent_unavailable.wav" heard customer "$(cmedia 7)" agent_unavailable
                ;;
            reschedule) check c8-goodbye "the customer heard goodbye.wav" heard customer "$(cmedia 8)" goodbye ;;
        esac
    done
    echo "suite $SUITE: c1-c8 took $((SECONDS - T0)) s"
    check dialler-metric "holdless_callback_attempts_total{result=\"completed\"} counts the completed attempts" \
        bash -c "v=\$(curl -fsS '$API/metrics' | awk '\$1 == \"holdless_callback_attempts_total{result=\\\"completed\\\"}\" {print \$2}');
                 echo \"completed attempts: \${v:-absent}\"; [ \"\${v:-0}\" -ge 1 ]"
    sleep 1
    check dialler-no-calls-left "no call left in holdless" test "$(metric holdless_calls_active)" -eq 0
    if [[ restart =~ $ONLY ]]; then
        T1=$SECONDS
        case_restart || true
        echo "suite $SUITE: c9 took $((SECONDS - T1)) s"
    fi
    if [ -n "$HL_PID" ]; then
        hl_alive dialler-alive && pass dialler-alive "holdless still running after the cases"
        hl_stop
    fi
fi
suite_finish
