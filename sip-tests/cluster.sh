#!/usr/bin/env bash
# The cluster topology of configs/examples/cluster/ as local processes on loopback (the
# docker-compose.yml topology without containers): PostgreSQL at 127.0.0.1:5432 (the
# machine's own; started if installed but stopped), holdless node-a (127.0.0.11: SIP 5060,
# HTTP 8080, admin 9080) and node-b (127.0.0.12), both on one database, and a Kamailio
# dispatcher in front (127.0.0.10:5060; installed from Debian's kamailio when missing).
#
#   bash sip-tests/cluster.sh up        # start everything, print where it runs
#   bash sip-tests/cluster.sh status    # which node leads, who is ready
#   bash sip-tests/cluster.sh down      # stop the nodes (SIGTERM: they drain) and Kamailio
#
# Environment: CLUSTER_DB (database, default holdless; created if missing),
#   CLUSTER_WORK (configs, logs and PIDs; default /tmp/holdless-cluster), NO_KAMAILIO=1,
#   HOLDLESS_BIN (default target/release/holdless, built when missing).
# suite-cluster.sh sources this file for its functions (CLUSTER_FUNCTIONS_ONLY=1).
CL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CL_EX=$CL_ROOT/configs/examples/cluster
CLUSTER_DB=${CLUSTER_DB:-holdless}
CLUSTER_WORK=${CLUSTER_WORK:-/tmp/holdless-cluster}
PG_ADMIN="psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -qAt"
declare -A NODE_IP=([a]=127.0.0.11 [b]=127.0.0.12)
KAM_ADDR=127.0.0.10:5060

cluster_pg_up() {  # PostgreSQL answers at 127.0.0.1:5432 (starting the machine's cluster)
    pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && return 0
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        local v
        for v in $(ls /etc/postgresql); do
            pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
        done
        for _ in $(seq 30); do pg_isready -h 127.0.0.1 -p 5432 -q && return 0; sleep 1; done
    fi
    echo "no PostgreSQL answers at 127.0.0.1:5432" >&2
    return 1
}

cluster_db_create() {  # NAME
    [ "$($PG_ADMIN -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$1'")" = 1 ] ||
        $PG_ADMIN -d postgres -c "CREATE DATABASE $1"
}

cluster_db_drop() {  # NAME
    $PG_ADMIN -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)"
}

cluster_bin() {
    HOLDLESS_BIN=${HOLDLESS_BIN:-${CARGO_TARGET_DIR:-$CL_ROOT/target}/release/holdless}
    [ -x "$HOLDLESS_BIN" ] || (cd "$CL_ROOT" && cargo build --release >&2)
}

# cluster_config NODE [SED-EXPR...] -- $CLUSTER_WORK/node-NODE.toml from the example, on
# $CLUSTER_DB, with each sed expression applied (tests: ports, pacing, delays)
cluster_config() {
    local node=$1 args=()
    shift
    mkdir -p "$CLUSTER_WORK"
    args=(-e "s#postgres://postgres@127.0.0.1:5432/holdless\"#postgres://postgres@127.0.0.1:5432/$CLUSTER_DB\"#")
    local e
    for e in "$@"; do args+=(-e "$e"); done
    sed "${args[@]}" "$CL_EX/node-$node.toml" >"$CLUSTER_WORK/node-$node.toml"
    grep -q "/$CLUSTER_DB\"" "$CLUSTER_WORK/node-$node.toml"
}

# cluster_start NODE -- runs node NODE (its config from cluster_config) in the background
# from the repository root (the example's prompt paths); waits until /healthz answers
cluster_start() {
    local node=$1 ip=${NODE_IP[$1]}
    mkdir -p "$CLUSTER_WORK"
    (cd "$CL_ROOT" && NO_COLOR=1 RUST_LOG=${RUST_LOG:-info} exec "$HOLDLESS_BIN" run \
        --config "$CLUSTER_WORK/node-$node.toml") >>"$CLUSTER_WORK/node-$node.log" 2>&1 &
    echo $! >"$CLUSTER_WORK/node-$node.pid"
    for _ in $(seq 150); do
        curl -fsS --max-time 1 "http://$ip:8080/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$(cat "$CLUSTER_WORK/node-$node.pid")" 2>/dev/null || break
        sleep 0.1
    done
    echo "node-$node did not come up (log: $CLUSTER_WORK/node-$node.log)" >&2
    return 1
}

cluster_pid() { cat "$CLUSTER_WORK/node-$1.pid" 2>/dev/null; }

# cluster_stop NODE [SIGNAL] -- TERM (drain, waits up to 30 s) or KILL
cluster_stop() {
    local pid sig=${2:-TERM}
    pid=$(cluster_pid "$1") || return 0
    [ -n "$pid" ] || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    timeout 30 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    rm -f "$CLUSTER_WORK/node-$1.pid"
}

cluster_node() {  # NODE -- its /admin/node JSON
    curl -fsS --max-time 2 "http://${NODE_IP[$1]}:9080/admin/node"
}

cluster_kamailio_start() {
    command -v kamailio >/dev/null || {
        echo "kamailio not found: installing it (Debian's kamailio)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q kamailio >&2
    }
    mkdir -p "$CLUSTER_WORK"
    kamailio -f "$CL_EX/kamailio.cfg" -DD -E -A "DISPATCHER_LIST=\"$CL_EX/dispatcher.list\"" \
        >"$CLUSTER_WORK/kamailio.log" 2>&1 &
    echo $! >"$CLUSTER_WORK/kamailio.pid"
    sleep 1
    kill -0 "$(cat "$CLUSTER_WORK/kamailio.pid")" 2>/dev/null
}

cluster_kamailio_stop() {
    local pid
    pid=$(cat "$CLUSTER_WORK/kamailio.pid" 2>/dev/null) || return 0
    kill -TERM "$pid" 2>/dev/null || true
    timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    rm -f "$CLUSTER_WORK/kamailio.pid"
}

[ "${CLUSTER_FUNCTIONS_ONLY:-0}" = 1 ] && return 0

set -euo pipefail
case ${1:-} in
up)
    cluster_pg_up
    cluster_db_create "$CLUSTER_DB"
    cluster_bin
    for n in a b; do cluster_config "$n"; cluster_start "$n"; done
    [ "${NO_KAMAILIO:-0}" = 1 ] || cluster_kamailio_start
    echo "node-a: SIP ${NODE_IP[a]}:5060, API http://${NODE_IP[a]}:8080, admin ${NODE_IP[a]}:9080"
    echo "node-b: SIP ${NODE_IP[b]}:5060, API http://${NODE_IP[b]}:8080, admin ${NODE_IP[b]}:9080"
    [ "${NO_KAMAILIO:-0}" = 1 ] || echo "Kamailio dispatcher: SIP $KAM_ADDR"
    echo "database: postgres://postgres@127.0.0.1:5432/$CLUSTER_DB; logs: $CLUSTER_WORK"
    ;;
status)
    for n in a b; do echo "node-$n: $(cluster_node "$n" 2>/dev/null || echo down)"; done
    ;;
down)
    for n in a b; do cluster_stop "$n"; done
    cluster_kamailio_stop
    ;;
*)
    echo "usage: $0 up|status|down" >&2
    exit 2
    ;;
esac
