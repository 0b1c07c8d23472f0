#!/usr/bin/env bash
# Several nodes on one PostgreSQL (configs/examples/cluster/, started by cluster.sh's
# functions on a database of the suite's own): node-a 127.0.0.11, node-b 127.0.0.12,
# Kamailio 127.0.0.10. SIPp plays the customers' phones behind the trunk (cluster/
# customer.xml on 127.0.0.1:25480: answers, presses 1) and the contact center (cluster/
# agent.xml on 127.0.0.1:25490: answers, talks, hangs up).
#   compose:   docker compose config accepts docker-compose.yml (docker-compose from Debian
#              when the compose plugin is missing).
#   failover:  N callbacks (500; CLUSTER_CALLBACKS) registered through both nodes' APIs
#              while the leader hands them out to both nodes (pacing 50, the least busy node
#              dials each: both must have dialled); the leader is killed (SIGKILL) once
#              half have completed: the other node takes the lead within the lease (2 s),
#              every callback completes (a Successful record in the historical API), no
#              number is INVITEd more than twice and at most the calls in progress at the
#              kill (pacing) twice (SIPp's messages, per number).
#   drain:     the leader gets SIGTERM while it dials and while callers keep calling it:
#              it answers new INVITEs 503, gives the lead up at once (the other node dials
#              the rest), its calls in progress finish (no second INVITE for them), it
#              exits 0, and every callback completes.
#   kamailio:  INVITEs through the dispatcher reach both nodes; with one node stopped they
#              all reach the other.
# Needs root (pcap play) and PostgreSQL on 127.0.0.1:5432 (started when installed).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_tools
holdless_bin
CLUSTER_FUNCTIONS_ONLY=1 source "$SIPT_DIR/cluster.sh"
CLUSTER_DB=holdless_suite_$$
CLUSTER_WORK=$WORK/cluster
CL=$SIPT_DIR/cluster
DL=$SIPT_DIR/dialler
N=${CLUSTER_CALLBACKS:-500}
PACING=50
CUST_PORT=25480 AGENT_PORT=25490 CALLER_PORT=25470
BGS=()

cleanup() {
    cluster_stop a KILL || true
    cluster_stop b KILL || true
    cluster_kamailio_stop || true
    local p
    for p in "${BGS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    cluster_db_drop "$CLUSTER_DB" >/dev/null 2>&1 || true
    on_exit
}
trap cleanup EXIT

api() { echo "http://${NODE_IP[$1]}:8080"; }
cb() { python3 "$CL/callbacks.py" "$@"; }
leader() {  # which node leads now (a or b), or nothing
    local n
    for n in a b; do
        cluster_node "$n" 2>/dev/null | grep -q '"leads":true' && { echo "$n"; return 0; }
    done
    return 0
}
wait_leader() {  # NODE SECS -- until NODE says it leads
    local t0=$SECONDS
    while [ "$(leader)" != "$1" ]; do
        [ $((SECONDS - t0)) -lt "$2" ] || return 1
        sleep 0.1
    done
}
phones() {  # NAME CALLS [TALK_MS] -- the customers' phones and the contact center (the agent
    # hangs up TALK_MS after answering, default 600), in the background
    local name=$1 calls=$2 talk=${3:-600}
    (SIPP_TIMEOUT=240 sipp_run "$name-cust" -sf "$CL/customer.xml" -i 127.0.0.1 -p $CUST_PORT \
        -mi 127.0.0.1 -mp 40000 -m "$calls" -d 400 -l 400 -max_socket 2000; exit "$SIPP_RC") &
    BGS+=($!)
    CUST_BG=$!
    (SIPP_TIMEOUT=240 sipp_run "$name-agent" -sf "$CL/agent.xml" -i 127.0.0.1 -p $AGENT_PORT \
        -mi 127.0.0.1 -mp 42000 -m "$calls" -d "$talk" -l 400 -max_socket 2000; exit "$SIPP_RC") &
    BGS+=($!)
    AGENT_BG=$!
}
stop_phones() {  # SIGUSR1: SIPp takes no new call and exits (logs flushed) once the
    # calls it has end (those of a killed node within 15 s: cluster/*.xml)
    pkill -USR1 -f "sipp -sf $CL/" 2>/dev/null || true
    local t0=$SECONDS
    while pgrep -f "sipp -sf $CL/" >/dev/null; do
        if [ $((SECONDS - t0)) -ge 30 ]; then
            pkill -KILL -f "sipp -sf $CL/" || true
            break
        fi
        sleep 0.2
    done
    wait "$CUST_BG" "$AGENT_BG" 2>/dev/null || true
}
invited() {  # NAME FIRST COUNT MAX_TWICE -- INVITEs per number the phones got
    python3 "$DL/sipmsg.py" "$WORK/$1-cust.msg" per-user received INVITE >"$WORK/$1-per-user.json"
    cb invites "$WORK/$1-per-user.json" "$2" "$3" "$4"
}
configure() {  # both nodes' configs from the example, for a fast and small test
    local n
    for n in a b; do
        cluster_config "$n" \
            "s/^pacing = 5 .*/pacing = $PACING/" \
            "s/^launches_per_sec = 10 .*/launches_per_sec = 0/" \
            "s/^min_delay_secs = 20 .*/min_delay_secs = 0/" \
            "s/^max_requested = 1000 .*/max_requested = 5000/" \
            "s/^max_ecbt_secs = 3600 .*/max_ecbt_secs = 864000/" \
            "s/^lease_secs = 5 .*/lease_secs = 2/" \
            "s/^error = { attempts = 2, delay_secs = 60 }/error = { attempts = 3, delay_secs = 1 }/" \
            "s#127.0.0.1:5080#127.0.0.1:$CUST_PORT#g" \
            "s#127.0.0.1:5090#127.0.0.1:$AGENT_PORT#g"
    done
}

# ---------------------------------------------------------------- compose

compose_config() {
    if docker compose version >/dev/null 2>&1; then
        docker compose -f "$REPO_ROOT/docker-compose.yml" config -q
    else
        command -v docker-compose >/dev/null || {
            echo "installing docker-compose (Debian) for its config check" >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >&2
        }
        docker-compose -f "$REPO_ROOT/docker-compose.yml" config -q
    fi
    echo "services: $(grep -cE '^  [a-z-]+:$' "$REPO_ROOT/docker-compose.yml")"
}
check compose-config "docker compose config accepts docker-compose.yml" compose_config

# ---------------------------------------------------------------- up

if ! cluster_pg_up; then
    fail_line cluster-up "no PostgreSQL at 127.0.0.1:5432 (and none to start)"
    suite_finish
fi
cluster_db_create "$CLUSTER_DB" >/dev/null
configure
for p in 5060 8080 9080; do
    for ip in 127.0.0.10 127.0.0.11 127.0.0.12; do
        if [ -n "$(ss -Hlnut "src $ip:$p or src 0.0.0.0:$p" 2>/dev/null)" ]; then
            fail_line cluster-up "$ip:$p is taken: $(ss -Hlnutp "sport = :$p" | head -n 2)"
            suite_finish
        fi
    done
done
cluster_start a
wait_leader a 10
cluster_start b
check cluster-up "node-a leads, node-b forwards to it" \
    bash -c "curl -fsS http://127.0.0.12:9080/admin/node | grep '\"leads\":false' | grep '127.0.0.11:9080'"

# ---------------------------------------------------------------- failover

case_failover() {
    local first=1 t_kill t_lead
    phones fo $((N + PACING + 20))
    sleep 0.5
    check fo-register "$N callbacks registered through both nodes' APIs" \
        cb register "$N" $first "$(api a)" "$(api b)"
    # half of them completed: kill the leader
    local t0=$SECONDS done=0
    while [ $((SECONDS - t0)) -lt 90 ]; do
        done=$(curl -fsS "$(api a)/metrics" 2>/dev/null |
            awk '/^holdless_callback_attempts_total\{result="completed"\}/ {print $2}')
        [ "${done:-0}" -ge $((N / 2)) ] && break
        sleep 0.2
    done
    t_kill=$(date +%s.%N)
    local dialled_a dialled_b
    dialled_a=$(grep -c 'callback dialled' "$CLUSTER_WORK/node-a.log" || true)
    dialled_b=$(grep -c 'callback dialled' "$CLUSTER_WORK/node-b.log" || true)
    cluster_stop a KILL
    check fo-spread "the leader spreads launches: node-a dialled ${dialled_a:-0}, node-b ${dialled_b:-0} before the kill" \
        test "${dialled_a:-0}" -gt 0 -a "${dialled_b:-0}" -gt 0
    if wait_leader b 10; then
        t_lead=$(date +%s.%N)
        pass fo-takeover "node-a killed after ${done:-0} completed; node-b leads $(python3 -c "print(round($t_lead - $t_kill, 2))") s later (lease 2 s)"
    else
        fail fo-takeover "node-b never took the lead"
    fi
    check fo-complete "every callback completes (historical API, node-b)" \
        cb wait "$N" $first 120 "$(api b)"
    stop_phones
    check fo-once "each number INVITEd once; only calls in progress at the kill (<= $PACING) twice" \
        invited fo $first "$N" $PACING
    cluster_start a
}
case_failover

# ---------------------------------------------------------------- drain

case_drain() {
    local first=5000 n=200 lead other
    lead=$(leader)
    other=$([ "$lead" = a ] && echo b || echo a)
    phones dr $((n + 20)) 4000   # calls of ~6 s: some are up when the drain starts
    sleep 0.5
    check dr-register "$n callbacks registered (through the follower node-$other)" \
        cb register "$n" $first "$(api "$other")"
    sleep 2
    # callers keep calling the draining leader: new INVITEs must get 503
    local lead_pid
    lead_pid=$(cluster_pid "$lead")
    kill -TERM "$lead_pid"
    local t0=$SECONDS
    sipp_case dr-503 0 "a new INVITE to the draining node gets 503 with Retry-After" \
        -sf "$SCEN/invite-expect-503.xml" -i 127.0.0.1 -p $CALLER_PORT -m 1 -s +15550001000 \
        "${NODE_IP[$lead]}:5060"
    wait_leader "$other" 5 && pass dr-handover "node-$lead drains: node-$other leads within $((SECONDS - t0)) s (no lease wait)" ||
        fail dr-handover "node-$other did not take the lead"
    check dr-ready "the draining node's /readyz says 503" bash -c \
        "! kill -0 $lead_pid 2>/dev/null || [ \"\$(curl -s -o /dev/null -w '%{http_code}' http://${NODE_IP[$lead]}:8080/readyz)\" = 503 ]"
    if timeout 30 tail --pid="$lead_pid" -f /dev/null; then
        pass dr-exit "node-$lead exited once its calls ended"
    else
        fail dr-exit "node-$lead still running 30 s after SIGTERM"
    fi
    rm -f "$CLUSTER_WORK/node-$lead.pid"
    check dr-complete "every callback completes" cb wait "$n" $first 90 "$(api "$other")"
    stop_phones
    check dr-once "no number INVITEd twice: the drained node's calls finished" \
        invited dr $first "$n" 0
    cluster_start "$lead"
}
case_drain

# ---------------------------------------------------------------- kamailio

case_kamailio() {
    if ! cluster_kamailio_start; then
        fail kam-start "Kamailio did not start ($CLUSTER_WORK/kamailio.log)"
        return
    fi
    sleep 3   # a probe round
    local before_a before_b
    calls_of() { curl -fsS "$(api "$1")/metrics" | awk '/^holdless_sip_received_total\{what="INVITE"\}/ {print $2}'; }
    before_a=$(calls_of a || echo 0) before_b=$(calls_of b || echo 0)
    sipp_case kam-spread 0 "10 INVITEs through Kamailio answered (a 404 for an unknown number, ACKed)" \
        -sf "$SCEN/invite-expect-404-ack.xml" -i 127.0.0.1 -p $CALLER_PORT -m 10 -r 20 \
        -s +15559999999 127.0.0.10:5060
    check kam-both "the dispatcher spread them over both nodes" bash -c \
        "a=\$(( \$(curl -fsS $(api a)/metrics | awk '/^holdless_sip_received_total\\{what=\"INVITE\"\\}/ {print \$2}') - ${before_a:-0} ));
         b=\$(( \$(curl -fsS $(api b)/metrics | awk '/^holdless_sip_received_total\\{what=\"INVITE\"\\}/ {print \$2}') - ${before_b:-0} ));
         echo \"node-a \$a, node-b \$b\"; [ \$a -ge 3 ] && [ \$b -ge 3 ]"
    cluster_stop b KILL
    sipp_case kam-failover 0 "with node-b down, 10 INVITEs through Kamailio still answered (node-a)" \
        -sf "$SCEN/invite-expect-404-ack.xml" -i 127.0.0.1 -p $CALLER_PORT -m 10 -r 5 \
        -s +15559999999 127.0.0.10:5060
    cluster_kamailio_stop
}
case_kamailio

cleanup   # before suite_finish removes $WORK (the nodes' PID files)
trap on_exit EXIT
suite_finish
