#!/usr/bin/env bash
# Several nodes on one PostgreSQL, measured (README "Several nodes"):
#  1. registration throughput (POST request_callback, wrk, every request a durable
#     registration): one node on SQLite; one node on PostgreSQL; two nodes on PostgreSQL
#     through the follower (forwarded to the leader); two nodes, one wrk at each;
#  2. callbacks dispatched per second (the first launch to the last Successful record, the
#     customers' phones and the contact center SIPp as in suite-cluster.sh): one node, then
#     two nodes (registrations through both);
#  3. failover time at the example's lease (5 s): kill -9 of the leader -> the other node
#     leads -> its first launch.
# usage: sip-tests/load/cluster-bench.sh [SECS=10] [CONNS=32] [CALLBACKS=4000] [PACINGS=400]
#        (the dispatch section runs once per pacing: callbacks in progress per call target)
#        SECTIONS="register dispatch failover" (the default: all three) runs only those.
# Everything on 127.0.0.0/8 (nodes 127.0.0.11/12, PostgreSQL 127.0.0.1:5432, a database of
# its own, dropped). Every wrk and SIPp run is bounded (-d / -m, timeout(1)).
set -euo pipefail
SUITE=cluster-bench
source "$(dirname "$0")/../lib.sh"
holdless_bin
CLUSTER_FUNCTIONS_ONLY=1 source "$SIPT_DIR/cluster.sh"
DUR=${1:-10} CONNS=${2:-32} M=${3:-4000} PACINGS=${4:-400} PACING=100
CLUSTER_DB=holdless_bench_$$
CLUSTER_WORK=$WORK/cluster
CL=$SIPT_DIR/cluster
LOAD=$SIPT_DIR/load
CUST_PORT=25480 AGENT_PORT=25490
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
cleanup() {
    cluster_stop a KILL || true; cluster_stop b KILL || true
    pkill -KILL -f "sipp -sf $CL/" 2>/dev/null || true
    cluster_db_drop "$CLUSTER_DB" >/dev/null 2>&1 || true
    on_exit
}
trap cleanup EXIT
cluster_pg_up

configure() {  # STORE(sqlite|pg) DIAL(true|false) LEASE
    local n store=$1 dial=$2 lease=$3 s=()
    [ "$store" = sqlite ] && s+=("s#^url = .*#data_dir = \"$WORK/data\"#")
    local -A ports=([a]="20000 29999" [b]="30000 39999")
    local range=()
    for n in a b; do
        range=(${ports[$n]})
        # media ranges wide enough that pacing, not ports, bounds the calls in progress
        cluster_config "$n" "${s[@]}" \
            "s/^port_min = .*/port_min = ${range[0]}/" "s/^port_max = .*/port_max = ${range[1]}/" \
            "s/^pacing = 5 .*/pacing = $PACING/" \
            "s/^launches_per_sec = 10 .*/launches_per_sec = 0/" \
            "s/^min_delay_secs = 20 .*/min_delay_secs = 0/" \
            "s/^max_requested = 1000 .*/max_requested = 10000000/" \
            "s/^max_ecbt_secs = 3600 .*/max_ecbt_secs = 99999999/" \
            "s/^lease_secs = 5 .*/lease_secs = $lease/" \
            "s/^drain_secs = 10 .*/drain_secs = 10\ndial_callbacks = $dial/" \
            "s#127.0.0.1:5080#127.0.0.1:$CUST_PORT#g" "s#127.0.0.1:5090#127.0.0.1:$AGENT_PORT#g" 2>/dev/null || true
    done
}
fresh_db() { cluster_db_drop "$CLUSTER_DB" >/dev/null; cluster_db_create "$CLUSTER_DB" >/dev/null; rm -rf "$WORK/data"; }
wrk_rps() {  # IP OFFSET -> req/s
    API_TOKEN=demo-token TID_OFFSET=$2 timeout -k 5 $((DUR + 30)) wrk -t1 -c"$CONNS" -d"${DUR}s" \
        -s "$LOAD/api-register.lua" "http://$1:8080/api/widget/billing-widget/request_callback" 2>&1 |
        awk '/Requests\/sec/ {printf "%.0f", $2} /Non-2xx/ {printf " (non-2xx %s)", $NF}'
}

SECTIONS=${SECTIONS:-register dispatch failover}
section() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }

if section register; then
echo "== registrations per second (wrk -c$CONNS, ${DUR} s, one per request, durable)"
fresh_db; configure sqlite false 5; cluster_start a
echo "one node, SQLite:                 $(wrk_rps 127.0.0.11 0)"
cluster_stop a
fresh_db; configure pg false 5; cluster_start a; sleep 1
echo "one node, PostgreSQL:             $(wrk_rps 127.0.0.11 0)"
cluster_start b; sleep 1
echo "two nodes, via the follower:      $(wrk_rps 127.0.0.12 10)"
r1=$WORK/r1 r2=$WORK/r2
wrk_rps 127.0.0.11 20 >"$r1" & w1=$!   # wait for this wrk only: the nodes are children too
wrk_rps 127.0.0.12 30 >"$r2"; wait "$w1"
echo "two nodes, one wrk at each:       $(cat "$r1") + $(cat "$r2")"
cluster_stop a; cluster_stop b
fi

phones() {  # CALLS
    (cd "$WORK" && timeout 300 sipp -sf "$CL/customer.xml" -i 127.0.0.1 -p $CUST_PORT -mi 127.0.0.1 \
        -mp 40000 -m "$1" -d 300 -l 1000 -max_socket 4000 -nostdin -timeout 280s >/dev/null 2>&1) &
    (cd "$WORK" && timeout 300 sipp -sf "$CL/agent.xml" -i 127.0.0.1 -p $AGENT_PORT -mi 127.0.0.1 \
        -mp 46000 -m "$1" -d 500 -l 1000 -max_socket 4000 -nostdin -timeout 280s >/dev/null 2>&1) &
    sleep 0.5
}
dispatch() {  # NODES (a or "a b") FIRST
    local nodes=$1 first=$2 apis=() n t0 t1
    for n in $nodes; do apis+=("http://${NODE_IP[$n]}:8080"); done
    phones "$M"
    t0=$(date +%s.%N)
    python3 "$CL/callbacks.py" register "$M" "$first" "${apis[@]}" >/dev/null
    python3 "$CL/callbacks.py" wait "$M" "$first" 240 "${apis[@]}" >"$WORK/wait.json" || true
    t1=$(date +%s.%N)
    pkill -USR1 -f "sipp -sf $CL/" 2>/dev/null || true
    sleep 2; pkill -KILL -f "sipp -sf $CL/" 2>/dev/null || true
    python3 -c "import json; w=json.load(open('$WORK/wait.json')); print('%d of %d completed, %.1f callbacks/s' % (w['successful'], w['of'], w['successful'] / ($t1 - $t0)))"
}
if section dispatch; then
for PACING in $PACINGS; do
echo "== callbacks dispatched per second ($M callbacks, pacing $PACING, calls ~2 s)"
fresh_db; configure pg true 5; cluster_start a; sleep 1
echo "one node:                         $(dispatch a 1)"
cluster_start b; sleep 1
echo "two nodes (registered via both):  $(dispatch "a b" 5000)"
cluster_stop a; cluster_stop b
done
PACING=100
fi

if section failover; then
fresh_db; configure pg true 5; cluster_start a; sleep 1; cluster_start b; sleep 1

echo "== failover (lease 5 s): kill -9 of the leader while callbacks are due"
phones 300
python3 "$CL/callbacks.py" register 200 1 http://127.0.0.12:8080 >/dev/null
sleep 1
t_kill=$(date +%s.%N)
log_from=$(wc -l <"$CLUSTER_WORK/node-b.log")   # node-b's log runs on across sections
cluster_stop a KILL
while ! cluster_node b | grep -q '"leads":true'; do sleep 0.05; done
t_lead=$(date +%s.%N)
python3 "$CL/callbacks.py" register 20 300 http://127.0.0.12:8080 >/dev/null
first_launch() {  # the first launch node-b logged after the kill, once it led
    awk -v from="$log_from" 'NR > from && /this node leads/ {f = 1}
        f && /callback dialled/ {print substr($0, 1, 27); exit}' "$CLUSTER_WORK/node-b.log"
}
for _ in $(seq 200); do [ -n "$(first_launch)" ] && break; sleep 0.05; done
first=$(first_launch)
python3 - "$t_kill" "$t_lead" "$first" <<'PY'
import sys, datetime
k, l, f = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
ft = datetime.datetime.strptime(f[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp()
print("kill -9 -> node-b leads: %.2f s; -> its first launch: %.2f s" % (l - k, ft - k))
PY
pkill -KILL -f "sipp -sf $CL/" 2>/dev/null || true
fi
cleanup   # before suite_finish removes $WORK (the nodes' PID files)
trap on_exit EXIT
suite_finish
