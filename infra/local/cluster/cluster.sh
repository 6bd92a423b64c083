#!/usr/bin/env bash
# Cluster mode of the local stack (issue #13; ports, env vars and memory budget in
# infra/local/cluster/README.md). Reached through infra/local/stack.sh with `--cluster`, STACK_MODE=cluster
# or a cluster-* command; never touches the single-node stack (its own state dir, its own ports).
#
#   up [--cluster]            3 Kafka 3.9 nodes (KRaft, broker+controller each, RF 3, min.insync 2),
#                             ZooKeeper, 2 ClickHouse replicas of one shard (cluster `meterline`), Redis (AOF),
#                             checks the shared Postgres, then migrates in cluster mode and creates the topics
#   down | status | reset     stop all / what runs where / stop and delete this cluster's data
#   migrate                   re-run migrations + topics (idempotent)
#   env                       print the exports that point services at this cluster
#   cluster-kill <node>       kill -9 one of kafka1 kafka2 kafka3 clickhouse1 clickhouse2 zookeeper redis
#   cluster-start <node>      (re)start it and wait until it serves (a broker: registered again and every
#                             partition back in sync; a replica: ZooKeeper session up, replication caught up)
#
# Every step is idempotent and waits with a deadline. CLUSTER_BASE_PORT moves the whole port range
# (default 19600: Kafka 19601/19611/19621, ZooKeeper 19630, ClickHouse 19641/19651, Redis 19660), so a
# second cluster (the smoke test's) can run next to the default one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/infra/local"
CL="$HERE/cluster"
CACHE="$ROOT/.cache"
STATE="${METERLINE_STATE_DIR:-$CACHE/cluster}"
LOGS="$STATE/logs"

BASE="${CLUSTER_BASE_PORT:-19600}"
CLUSTER_NAME="meterline"
KAFKA_VERSION="3.9.1"
KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
KAFKA_HEAP="${CLUSTER_KAFKA_HEAP:-512m}"
ZOOKEEPER_HEAP="${CLUSTER_ZOOKEEPER_HEAP:-256m}"
ZK_PORT=$((BASE + 30))
REDIS_PORT=$((BASE + 60))
PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
PGUSER="${PGUSER:-postgres}"
PG_DATABASE="${CLUSTER_PG_DATABASE:-meterline_cluster}"
CH_DATABASE="${CLICKHOUSE_DATABASE:-meterline}"

kafka_port() { echo $((BASE + ($1 - 1) * 10 + 1)); }
kafka_controller_port() { echo $((BASE + ($1 - 1) * 10 + 2)); }
ch_http_port() { echo $((BASE + 31 + $1 * 10)); }
ch_tcp_port() { echo $((BASE + 32 + $1 * 10)); }
ch_interserver_port() { echo $((BASE + 33 + $1 * 10)); }
kafka_brokers() { echo "127.0.0.1:$(kafka_port 1),127.0.0.1:$(kafka_port 2),127.0.0.1:$(kafka_port 3)"; }
kafka_voters() { echo "1@127.0.0.1:$(kafka_controller_port 1),2@127.0.0.1:$(kafka_controller_port 2),3@127.0.0.1:$(kafka_controller_port 3)"; }

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND until it succeeds or the deadline passes.
wait_for() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not become ready within ${seconds}s (logs: $LOGS)"
    sleep 0.5
  done
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop_pidfile FILE NAME: SIGTERM, wait up to 30 s, then SIGKILL.
stop_pidfile() {
  local file="$1" name="$2"
  if pid_alive "$file"; then
    local pid; pid="$(cat "$file")"
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# kill9_pidfile FILE NAME: what a crash looks like (no shutdown hooks, no flush); waits until it is gone.
kill9_pidfile() {
  local file="$1" name="$2"
  pid_alive "$file" || die "$name is not running (no live pid in $file)"
  local pid; pid="$(cat "$file")"
  log "kill -9 $name (pid $pid)"
  kill -9 "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && die "$name (pid $pid) still alive after kill -9"
  rm -f "$file"
}

# ---------------------------------------------------------------- install
cmd_install() {
  # the Kafka jars (they include ZooKeeper 3.8, a dependency of kafka_2.13) and clickhouse-server come
  # from the single-node stack's installer; nothing else is needed
  if [ ! -f "$KAFKA_HOME/.complete" ] || ! command -v clickhouse-server >/dev/null; then bash "$HERE/stack.sh" install; fi
  ls "$KAFKA_HOME"/libs/zookeeper-3.*.jar >/dev/null 2>&1 || die "no ZooKeeper jar in $KAFKA_HOME/libs"
  command -v redis-server >/dev/null || die "redis-server is missing"
}

# ---------------------------------------------------------------- Kafka (3 nodes)
kafka_java() {
  local n="$1"; shift
  java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$STATE/kafka$n/log4j.properties" -cp "$KAFKA_HOME/libs/*" "$@"
}

kafka_cluster_id() {
  if [ ! -s "$STATE/kafka-cluster-id" ]; then
    kafka_java 1 kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1 >"$STATE/kafka-cluster-id.tmp"
    mv "$STATE/kafka-cluster-id.tmp" "$STATE/kafka-cluster-id"
  fi
  cat "$STATE/kafka-cluster-id"
}

# launch_kafka N: starts node N without waiting (the 3 voters need each other to form a quorum).
launch_kafka() {
  local n="$1" dir="$STATE/kafka$1" port ctl
  port="$(kafka_port "$n")"; ctl="$(kafka_controller_port "$n")"
  if pid_alive "$STATE/kafka$n.pid"; then log "kafka$n already running"; return; fi
  port_open "$port" && die "port $port is taken by something else (kafka$n; set CLUSTER_BASE_PORT)"
  mkdir -p "$dir/logs"
  sed -e "s#@DATA_DIR@#$dir#g; s#@PORT@#$port#g; s#@CONTROLLER_PORT@#$ctl#g; s#@NODE_ID@#$n#g; s#@VOTERS@#$(kafka_voters)#g" \
    "$CL/kafka.properties" >"$dir/server.properties"
  sed -e "s#@LOG_FILE@#$LOGS/kafka$n-server.log#g" "$CL/log4j.properties" >"$dir/log4j.properties"
  if [ ! -f "$dir/logs/meta.properties" ]; then
    log "formatting kafka$n storage"
    kafka_java "$n" kafka.tools.StorageTool format --ignore-formatted --cluster-id "$(kafka_cluster_id)" \
      --config "$dir/server.properties" >"$LOGS/kafka$n-format.log" 2>&1 || die "formatting kafka$n failed, see $LOGS/kafka$n-format.log"
  fi
  log "starting kafka$n on 127.0.0.1:$port (controller $ctl)"
  nohup java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$dir/log4j.properties" -cp "$KAFKA_HOME/libs/*" \
    kafka.Kafka "$dir/server.properties" >>"$LOGS/kafka$n.out" 2>&1 </dev/null &
  echo $! >"$STATE/kafka$n.pid"
}

# a node serves when it answers metadata and sees all 3 brokers registered
kafka_serves() { node "$CL/wait-kafka-cluster.mjs" "127.0.0.1:$(kafka_port "$1")" 3; }
# every partition of every topic has all its replicas in sync again (after a broker restart)
kafka_in_sync() { node "$CL/kafka-in-sync.mjs" "$(kafka_brokers)"; }

start_kafka() {
  launch_kafka "$1"
  wait_for "kafka$1" 180 kafka_serves "$1"
}

# ---------------------------------------------------------------- ZooKeeper (standalone)
zk_ok() { [ "$( (exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT" && printf ruok >&3 && timeout 2 cat <&3) 2>/dev/null)" = imok ]; }

start_zookeeper() {
  local dir="$STATE/zookeeper"
  if pid_alive "$STATE/zookeeper.pid"; then log "zookeeper already running"
  else
    port_open "$ZK_PORT" && die "port $ZK_PORT is taken by something else (zookeeper; set CLUSTER_BASE_PORT)"
    mkdir -p "$dir/data"
    sed -e "s#@DATA_DIR@#$dir/data#g; s#@PORT@#$ZK_PORT#g" "$CL/zoo.cfg" >"$dir/zoo.cfg"
    sed -e "s#@LOG_FILE@#$LOGS/zookeeper.log#g" "$CL/log4j.properties" >"$dir/log4j.properties"
    log "starting zookeeper on 127.0.0.1:$ZK_PORT"
    nohup java -Xms"$ZOOKEEPER_HEAP" -Xmx"$ZOOKEEPER_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$dir/log4j.properties" -Dzookeeper.jmx.log4j.disable=true -cp "$KAFKA_HOME/libs/*" \
      org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" >>"$LOGS/zookeeper.out" 2>&1 </dev/null &
    echo $! >"$STATE/zookeeper.pid"
  fi
  wait_for "zookeeper" 60 zk_ok
}

# ---------------------------------------------------------------- ClickHouse (2 replicas of one shard)
# ch_query N SQL: runs SQL on replica N over HTTP, prints the result
ch_query() { curl -fsS --max-time 10 "http://127.0.0.1:$(ch_http_port "$1")/" --data-binary "$2"; }
ch_answers() { [ "$(ch_query "$1" 'SELECT 1')" = 1 ]; }
# ZooKeeper session up (system.zookeeper answers) and no replicated table read-only or behind on inserts
ch_replicating() {
  ch_query "$1" "SELECT count() FROM system.zookeeper WHERE path = '/'" >/dev/null &&
    [ "$(ch_query "$1" 'SELECT count() FROM system.replicas WHERE is_readonly OR is_session_expired OR inserts_in_queue > 0')" = 0 ]
}

start_clickhouse() {
  local n="$1" dir="$STATE/clickhouse$1" http
  http="$(ch_http_port "$n")"
  if pid_alive "$dir/clickhouse.pid"; then log "clickhouse$n already running"
  else
    port_open "$http" && die "port $http is taken by something else (clickhouse$n; set CLUSTER_BASE_PORT)"
    mkdir -p "$dir"/{conf,data,tmp,log,user_files,format_schemas}
    sed -e "s#@DATA_DIR@#$dir#g; s#@HTTP_PORT@#$http#g; s#@TCP_PORT@#$(ch_tcp_port "$n")#g" \
      -e "s#@INTERSERVER_PORT@#$(ch_interserver_port "$n")#g; s#@ZK_PORT@#$ZK_PORT#g; s#@REPLICA@#clickhouse$n#g" \
      -e "s#@CH1_TCP_PORT@#$(ch_tcp_port 1)#g; s#@CH2_TCP_PORT@#$(ch_tcp_port 2)#g" \
      "$CL/clickhouse-config.xml" >"$dir/conf/config.xml"
    cp "$CL/clickhouse-users.xml" "$dir/conf/users.xml"
    rm -f "$dir/clickhouse.pid" # a kill -9 leaves it behind
    log "starting clickhouse$n on http 127.0.0.1:$http (tcp $(ch_tcp_port "$n"), interserver $(ch_interserver_port "$n"))"
    (cd "$dir/conf" && clickhouse-server --config-file="$dir/conf/config.xml" --pid-file="$dir/clickhouse.pid" --daemon) \
      >>"$LOGS/clickhouse$n.out" 2>&1 || die "clickhouse$n failed to start, see $dir/log"
    wait_for "clickhouse$n pid file" 20 test -s "$dir/clickhouse.pid"
  fi
  wait_for "clickhouse$n" 90 ch_answers "$n"
  wait_for "clickhouse$n replication (ZooKeeper session, replication queue)" 120 ch_replicating "$n"
}

# ---------------------------------------------------------------- Redis (own instance, AOF on)
redis_ok() { redis-cli -p "$REDIS_PORT" ping; }
start_redis() {
  if redis_ok >/dev/null 2>&1; then log "redis already running on $REDIS_PORT"; return; fi
  mkdir -p "$STATE/redis"
  log "starting redis on 127.0.0.1:$REDIS_PORT (append-only file, fsync every second)"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$STATE/redis" \
    --appendonly yes --appendfsync everysec --save "" --pidfile "$STATE/redis.pid" \
    --logfile "$LOGS/redis.log" >/dev/null
  wait_for "redis" 20 redis_ok
}
stop_redis() {
  if redis_ok >/dev/null 2>&1; then log "stopping redis on $REDIS_PORT"; redis-cli -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || true; fi
  rm -f "$STATE/redis.pid"
}

# ---------------------------------------------------------------- PostgreSQL (the shared one, own database)
ensure_postgres() {
  wait_for "PostgreSQL (the machine's own; start it with stack.sh up)" 30 pg_isready -h "$PGHOST" -p "$PGPORT"
}

# ---------------------------------------------------------------- commands
cmd_env() {
  cat <<EOF
export KAFKA_BROKERS=$(kafka_brokers)
export KAFKA_REPLICATION_FACTOR=3
export KAFKA_MIN_INSYNC_REPLICAS=2
export CLICKHOUSE_URL=http://127.0.0.1:$(ch_http_port 1)
export CLICKHOUSE_CLUSTER=$CLUSTER_NAME
export CLICKHOUSE_DATABASE=$CH_DATABASE
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export DATABASE_URL=postgres://$PGUSER@$PGHOST:$PGPORT/$PG_DATABASE
EOF
}

cmd_migrate() {
  log "applying migrations (cluster mode: Replicated*MergeTree, ON CLUSTER $CLUSTER_NAME) and creating topics (RF 3)"
  # idempotent, so retried: right after the brokers form a quorum, topic creation can still answer
  # UNKNOWN_TOPIC_OR_PARTITION while waiting for leaders
  local attempt
  for attempt in 1 2 3; do
    (cd "$ROOT" && eval "$(cmd_env)" && node --import tsx packages/core/src/setup/cli.ts) >>"$LOGS/migrate.log" 2>&1 && return
    log "migrations/topics attempt $attempt failed (see $LOGS/migrate.log)"
    sleep 2
  done
  die "migrations/topic setup failed, see $LOGS/migrate.log"
}

cmd_up() {
  for arg in "$@"; do
    case "$arg" in --cluster) ;; *) die "unknown option $arg (cluster mode starts no services: infra/local/cluster/README.md)";; esac
  done
  mkdir -p "$STATE" "$LOGS"
  local t0=$SECONDS
  cmd_install
  ensure_postgres
  start_redis
  start_zookeeper
  launch_kafka 1; launch_kafka 2; launch_kafka 3
  start_clickhouse 1
  start_clickhouse 2
  for n in 1 2 3; do wait_for "kafka$n" 180 kafka_serves "$n"; done
  cmd_migrate
  cmd_status
  log "cluster up in $((SECONDS - t0)) s"
}

cmd_down() {
  for n in 1 2; do stop_pidfile "$STATE/clickhouse$n/clickhouse.pid" "clickhouse$n"; done
  for n in 3 2 1; do stop_pidfile "$STATE/kafka$n.pid" "kafka$n"; done
  stop_pidfile "$STATE/zookeeper.pid" zookeeper
  stop_redis
  log "cluster stopped (data kept under $STATE; PostgreSQL is shared and keeps running)"
}

cmd_reset() {
  cmd_down
  case "$STATE" in */.cache/stack | */.cache/stack/) die "refusing to delete the single-node stack's state ($STATE)";; esac
  log "deleting $STATE"
  rm -rf "$STATE"
}

status_line() { printf '  %-12s %-44s %s\n' "$1" "$2" "$3"; }
up_down() { if "$@" >/dev/null 2>&1; then echo up; else echo DOWN; fi; }
cmd_status() {
  echo "Meterline local cluster ($STATE):"
  for n in 1 2 3; do
    status_line "kafka$n" "127.0.0.1:$(kafka_port "$n") (controller $(kafka_controller_port "$n"))" \
      "$(up_down node "$CL/wait-kafka-cluster.mjs" "127.0.0.1:$(kafka_port "$n")" 1)"
  done
  status_line zookeeper "127.0.0.1:$ZK_PORT" "$(up_down zk_ok)"
  for n in 1 2; do
    status_line "clickhouse$n" "http://127.0.0.1:$(ch_http_port "$n") (tcp $(ch_tcp_port "$n"))" "$(up_down ch_answers "$n")"
  done
  status_line redis "redis://127.0.0.1:$REDIS_PORT" "$(up_down redis_ok)"
  status_line postgres "postgres://$PGUSER@$PGHOST:$PGPORT/$PG_DATABASE" "$(up_down pg_isready -h "$PGHOST" -p "$PGPORT")"
  for n in 1 2; do
    if ch_answers "$n" >/dev/null 2>&1; then
      echo "  clickhouse$n replicas: $(ch_query "$n" "SELECT concat(toString(count()), ' tables, ', toString(countIf(is_readonly)), ' read-only, max delay ', toString(max(absolute_delay)), ' s, queue ', toString(sum(queue_size))) FROM system.replicas" 2>/dev/null || echo '?')"
    fi
  done
  echo "Logs: $LOGS   Env for services: bash infra/local/stack.sh env --cluster"
}

node_pidfile() {
  case "$1" in
    kafka1 | kafka2 | kafka3) echo "$STATE/$1.pid";;
    clickhouse1 | clickhouse2) echo "$STATE/$1/clickhouse.pid";;
    zookeeper) echo "$STATE/zookeeper.pid";;
    redis) echo "$STATE/redis.pid";;
    *) die "unknown node '$1' (kafka1 kafka2 kafka3 clickhouse1 clickhouse2 zookeeper redis)";;
  esac
}

cmd_kill() {
  [ $# -ge 1 ] || die "usage: cluster-kill <kafka1|kafka2|kafka3|clickhouse1|clickhouse2|zookeeper|redis>"
  kill9_pidfile "$(node_pidfile "$1")" "$1"
}

cmd_start() {
  [ $# -ge 1 ] || die "usage: cluster-start <kafka1|kafka2|kafka3|clickhouse1|clickhouse2|zookeeper|redis>"
  node_pidfile "$1" >/dev/null
  mkdir -p "$STATE" "$LOGS"
  local t0=$SECONDS
  case "$1" in
    kafka*) start_kafka "${1#kafka}"; wait_for "every partition back in sync" 180 kafka_in_sync;;
    clickhouse*) start_clickhouse "${1#clickhouse}";;
    zookeeper) start_zookeeper;;
    redis) start_redis;;
  esac
  log "$1 serves again ($((SECONDS - t0)) s)"
}

# --cluster may appear anywhere (stack.sh passes every argument on)
args=()
for a in "$@"; do [ "$a" = --cluster ] || args+=("$a"); done
set -- "${args[@]+"${args[@]}"}"

case "${1:-}" in
  install) cmd_install;;
  up) shift; cmd_up "$@";;
  down) cmd_down;;
  status) cmd_status;;
  reset) cmd_reset;;
  migrate) cmd_migrate;;
  env) cmd_env;;
  cluster-kill) shift; cmd_kill "$@";;
  cluster-start) shift; cmd_start "$@";;
  *) echo "usage: $0 up|down|status|reset|migrate|env|cluster-kill <node>|cluster-start <node>  (infra/local/cluster/README.md)" >&2; exit 2;;
esac
