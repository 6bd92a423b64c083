#!/usr/bin/env bash
# Meterline's local stack on loopback, without Docker.
#
#   stack.sh install            fetch/install what is missing (Kafka jars via mvn, clickhouse-server via apt)
#   stack.sh up [--with-services]  install, start Kafka, ClickHouse, Redis, check Postgres, migrate, create topics;
#                               with --with-services also start gateway, aggregator, billing and the console
#   stack.sh down               stop everything this script started (data is kept under .cache/stack)
#   stack.sh status             print what runs where
#   stack.sh reset              down, then delete all local data
#
# Every step is idempotent: running `up` twice is fine. Each service is waited for until it really answers.
# Ports and paths come from the environment (defaults below); infra/local/README.md documents them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# Cluster mode (issue #13, infra/local/cluster/README.md): `--cluster`, STACK_MODE=cluster or a cluster-*
# command hands over to infra/local/cluster/cluster.sh before anything of the single-node stack is touched.
if [ "${STACK_MODE:-}" = cluster ] || [[ " $* " == *" --cluster "* ]] || [[ "${1:-}" == cluster-* ]]; then
  exec bash "$HERE/cluster/cluster.sh" "$@"
fi
CACHE="$ROOT/.cache"                              # downloads (Kafka jars)
STATE="${METERLINE_STATE_DIR:-$CACHE/stack}"     # data, logs and pid files of one stack instance
LOGS="$STATE/logs"
mkdir -p "$STATE" "$LOGS"

KAFKA_VERSION="3.9.1"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP="${KAFKA_HEAP:-512m}"
CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_HTTP_PORT:-8123}"
CLICKHOUSE_TCP_PORT="${CLICKHOUSE_TCP_PORT:-9000}"
REDIS_PORT="${REDIS_PORT:-6380}"
PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
PGUSER="${PGUSER:-postgres}"
GATEWAY_PORT="${GATEWAY_PORT:-8080}"
AGGREGATOR_PORT="${AGGREGATOR_PORT:-8081}"
BILLING_PORT="${BILLING_PORT:-8082}"
CONSOLE_PORT="${CONSOLE_PORT:-8083}"  # the web console (services/console)

KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
KAFKA_DATA="$STATE/kafka"
CH_DIR="$STATE/clickhouse"
REDIS_DIR="$STATE/redis"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

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

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- install
install_kafka() {
  if [ -f "$KAFKA_HOME/.complete" ]; then return; fi
  command -v mvn >/dev/null || die "mvn is required to fetch Kafka from Maven Central"
  command -v java >/dev/null || die "java (17+) is required to run Kafka"
  log "fetching Kafka $KAFKA_VERSION from Maven Central (first run only)"
  rm -rf "$KAFKA_HOME"; mkdir -p "$KAFKA_HOME/libs"
  mvn -q -B -f "$HERE/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$KAFKA_HOME/libs" -DincludeScope=runtime >"$LOGS/mvn.log" 2>&1 \
    || die "mvn failed, see $LOGS/mvn.log"
  touch "$KAFKA_HOME/.complete"
}

install_clickhouse() {
  if command -v clickhouse-server >/dev/null; then return; fi
  command -v apt-get >/dev/null || die "clickhouse-server is missing and apt-get is not available; install ClickHouse or set CLICKHOUSE_URL"
  log "installing clickhouse-server from Debian's packages (first run only)"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >"$LOGS/apt.log" 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clickhouse-server clickhouse-client >>"$LOGS/apt.log" 2>&1 \
    || die "apt-get install clickhouse-server failed, see $LOGS/apt.log"
  # The package's own service is not used: the stack runs ClickHouse with its own config and data dir.
}

install_node_modules() {
  if [ -d "$ROOT/node_modules/.bin" ] && [ "$ROOT/node_modules/.package-lock.json" -nt "$ROOT/package-lock.json" ]; then return; fi
  log "installing npm dependencies"
  (cd "$ROOT" && npm ci --no-audit --no-fund >"$LOGS/npm.log" 2>&1) || die "npm ci failed, see $LOGS/npm.log"
}

# Tools only the test suite needs: docker-compose validates docker-compose.yml (no engine required).
# docker-compose validates docker-compose.yml; promtool (Debian's prometheus package, no daemon is
# started) checks the Prometheus config and runs the alert rules' unit tests; chromium (headless, driven by
# playwright-core) renders the invoice HTML document in services/billing/test/invoice-document.int.test.ts.
cmd_install_test_tools() {
  local missing=()
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v chromium >/dev/null || missing+=(chromium)
  [ ${#missing[@]} -eq 0 ] && return
  command -v apt-get >/dev/null || die "${missing[*]} missing and apt-get is not available"
  log "installing ${missing[*]} from Debian's packages (used by the tests: docker-compose.yml, alert rules, invoice document rendering)"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >"$LOGS/apt.log" 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$LOGS/apt.log" 2>&1 \
    || die "apt-get install ${missing[*]} failed, see $LOGS/apt.log"
}

cmd_install() { install_node_modules; install_kafka; install_clickhouse; command -v redis-server >/dev/null || die "redis-server is missing"; }

# ---------------------------------------------------------------- Kafka
kafka_java() {
  java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$KAFKA_DATA/log4j.properties" -Dkafka.logs.dir="$LOGS" \
    -cp "$KAFKA_HOME/libs/*" "$@"
}

start_kafka() {
  if pid_alive "$STATE/kafka.pid"; then log "Kafka already running"
  elif node "$HERE/wait-kafka.mjs" "127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1; then
    log "a Kafka broker already answers on 127.0.0.1:$KAFKA_PORT (not started here); using it"; return
  else
    mkdir -p "$KAFKA_DATA/logs"
    sed -e "s#@DATA_DIR@#$KAFKA_DATA#g; s#@PORT@#$KAFKA_PORT#g; s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
      "$HERE/kafka/server.properties" >"$KAFKA_DATA/server.properties"
    sed -e "s#@LOG_DIR@#$LOGS#g" "$HERE/kafka/log4j.properties" >"$KAFKA_DATA/log4j.properties"
    if [ ! -f "$KAFKA_DATA/logs/meta.properties" ]; then
      log "formatting Kafka storage"
      kafka_java kafka.tools.StorageTool format --ignore-formatted \
        --cluster-id "$(cat "$KAFKA_DATA/cluster-id" 2>/dev/null || { kafka_java kafka.tools.StorageTool random-uuid | tail -1 | tee "$KAFKA_DATA/cluster-id"; })" \
        --config "$KAFKA_DATA/server.properties" >"$LOGS/kafka-format.log" 2>&1 || die "formatting Kafka storage failed, see $LOGS/kafka-format.log"
    fi
    log "starting Kafka on 127.0.0.1:$KAFKA_PORT"
    nohup java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$KAFKA_DATA/log4j.properties" -cp "$KAFKA_HOME/libs/*" \
      kafka.Kafka "$KAFKA_DATA/server.properties" >"$LOGS/kafka.out" 2>&1 &
    echo $! >"$STATE/kafka.pid"
  fi
  wait_for "Kafka" 90 node "$HERE/wait-kafka.mjs" "127.0.0.1:$KAFKA_PORT"
}

# ---------------------------------------------------------------- ClickHouse
start_clickhouse() {
  if [ -n "${CLICKHOUSE_URL_EXTERNAL:-}" ]; then return; fi
  if pid_alive "$CH_DIR/clickhouse.pid"; then log "ClickHouse already running"
  elif curl -fsS "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/?query=SELECT%201" >/dev/null 2>&1; then
    log "a ClickHouse already answers on 127.0.0.1:$CLICKHOUSE_HTTP_PORT (not started here); using it"; return
  else
    if port_open "$CLICKHOUSE_HTTP_PORT"; then die "port $CLICKHOUSE_HTTP_PORT is taken by something that is not ClickHouse; set CLICKHOUSE_HTTP_PORT"; fi
    mkdir -p "$CH_DIR"/{conf,data,tmp,log,user_files,format_schemas}
    sed -e "s#@DATA_DIR@#$CH_DIR#g; s#@HTTP_PORT@#$CLICKHOUSE_HTTP_PORT#g; s#@TCP_PORT@#$CLICKHOUSE_TCP_PORT#g" \
      "$HERE/clickhouse/config.xml" >"$CH_DIR/conf/config.xml"
    cp "$HERE/clickhouse/users.xml" "$CH_DIR/conf/users.xml"
    log "starting ClickHouse on 127.0.0.1:$CLICKHOUSE_HTTP_PORT"
    (cd "$CH_DIR/conf" && clickhouse-server --config-file="$CH_DIR/conf/config.xml" --pid-file="$CH_DIR/clickhouse.pid" --daemon) \
      >"$LOGS/clickhouse.out" 2>&1 || die "ClickHouse failed to start, see $CH_DIR/log"
    # --daemon writes the pid file a moment after forking
    wait_for "ClickHouse pid file" 20 test -s "$CH_DIR/clickhouse.pid"
  fi
  wait_for "ClickHouse" 60 curl -fsS "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/?query=SELECT%201"
}

stop_clickhouse() {
  stop_pidfile "$CH_DIR/clickhouse.pid" ClickHouse
}

# ---------------------------------------------------------------- Redis (own instance, AOF on)
start_redis() {
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then log "Redis already running on $REDIS_PORT"; return; fi
  mkdir -p "$REDIS_DIR"
  log "starting Redis on 127.0.0.1:$REDIS_PORT (append-only file, fsync every second)"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" \
    --appendonly yes --appendfsync everysec --save "" --pidfile "$REDIS_DIR/redis.pid" \
    --logfile "$LOGS/redis.log" >/dev/null
  wait_for "Redis" 20 redis-cli -p "$REDIS_PORT" ping
}

stop_redis() {
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    log "stopping Redis on $REDIS_PORT"
    redis-cli -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || true
  fi
}

# ---------------------------------------------------------------- PostgreSQL (the machine's own)
ensure_postgres() {
  if ! pg_isready -h "$PGHOST" -p "$PGPORT" >/dev/null 2>&1; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
      log "starting PostgreSQL"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    fi
  fi
  wait_for "PostgreSQL" 30 pg_isready -h "$PGHOST" -p "$PGPORT"
}

# ---------------------------------------------------------------- services
start_service() {
  local name="$1" port="$2"
  if pid_alive "$STATE/$name.pid"; then log "$name already running"; else
    log "starting $name on 127.0.0.1:$port"
    # exec: the pid file holds node's own pid; no stdout is inherited, so callers piping `npm start` return
    (cd "$ROOT" && exec nohup node --import tsx "services/$name/src/main.ts" >>"$LOGS/$name.log" 2>&1 </dev/null) &
    echo $! >"$STATE/$name.pid"
  fi
  wait_for "$name" 60 curl -fsS "http://127.0.0.1:$port/readyz"
}

services_env() {
  export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:$KAFKA_PORT}"
  export CLICKHOUSE_URL="${CLICKHOUSE_URL:-http://127.0.0.1:$CLICKHOUSE_HTTP_PORT}"
  export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}"
  export GATEWAY_PORT AGGREGATOR_PORT BILLING_PORT CONSOLE_PORT
}

# ---------------------------------------------------------------- commands
cmd_up() {
  local with_services=0
  for arg in "$@"; do case "$arg" in --with-services) with_services=1;; *) die "unknown option $arg";; esac; done
  cmd_install
  ensure_postgres
  start_redis
  start_clickhouse
  start_kafka
  services_env
  log "applying migrations and creating topics"
  (cd "$ROOT" && node --import tsx packages/core/src/setup/cli.ts) || die "migrations/topic setup failed"
  if [ $with_services = 1 ]; then
    start_service billing "$BILLING_PORT"
    start_service aggregator "$AGGREGATOR_PORT"
    start_service gateway "$GATEWAY_PORT"
    start_service console "$CONSOLE_PORT"
  fi
  cmd_status
  if [ $with_services = 1 ]; then
    node "$HERE/demo.mjs" "$STATE" "http://127.0.0.1:$GATEWAY_PORT" "http://127.0.0.1:$BILLING_PORT" "$CLICKHOUSE_TCP_PORT"
    echo "Console: http://127.0.0.1:$CONSOLE_PORT  (sign in with the API key above)"
  fi
}

cmd_down() {
  for s in console gateway aggregator billing; do stop_pidfile "$STATE/$s.pid" "$s"; done
  stop_pidfile "$STATE/kafka.pid" Kafka
  stop_clickhouse
  stop_redis
  log "stopped (PostgreSQL is the machine's own and keeps running)"
}

status_line() { printf '  %-11s %-34s %s\n' "$1" "$2" "$3"; }
cmd_status() {
  local up="up" down="DOWN"
  echo "Meterline local stack:"
  status_line Kafka "127.0.0.1:$KAFKA_PORT" "$(node "$HERE/wait-kafka.mjs" "127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1 && echo $up || echo $down)"
  status_line ClickHouse "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT" "$(curl -fsS "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/?query=SELECT%201" >/dev/null 2>&1 && echo $up || echo $down)"
  status_line Redis "redis://127.0.0.1:$REDIS_PORT" "$(redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && echo $up || echo $down)"
  status_line PostgreSQL "postgres://$PGUSER@$PGHOST:$PGPORT" "$(pg_isready -h "$PGHOST" -p "$PGPORT" >/dev/null 2>&1 && echo $up || echo $down)"
  status_line gateway "http://127.0.0.1:$GATEWAY_PORT" "$(curl -fsS "http://127.0.0.1:$GATEWAY_PORT/readyz" >/dev/null 2>&1 && echo $up || echo $down)"
  status_line aggregator "http://127.0.0.1:$AGGREGATOR_PORT" "$(curl -fsS "http://127.0.0.1:$AGGREGATOR_PORT/readyz" >/dev/null 2>&1 && echo $up || echo $down)"
  status_line billing "http://127.0.0.1:$BILLING_PORT" "$(curl -fsS "http://127.0.0.1:$BILLING_PORT/readyz" >/dev/null 2>&1 && echo $up || echo $down)"
  status_line console "http://127.0.0.1:$CONSOLE_PORT" "$(curl -fsS "http://127.0.0.1:$CONSOLE_PORT/readyz" >/dev/null 2>&1 && echo $up || echo $down)"
  echo "Logs: $LOGS"
}

cmd_reset() { cmd_down; log "deleting $STATE"; rm -rf "$STATE"; }

case "${1:-}" in
  install) shift; cmd_install "$@";;
  install-test-tools) cmd_install_test_tools;;
  up) shift; cmd_up "$@";;
  down) shift; cmd_down;;
  status) shift; cmd_status;;
  reset) shift; cmd_reset;;
  # used by tests and drills to inject faults
  kafka-start) start_kafka;; kafka-stop) stop_pidfile "$STATE/kafka.pid" Kafka;;
  clickhouse-start) start_clickhouse;; clickhouse-stop) stop_clickhouse;;
  redis-start) start_redis;; redis-stop) stop_redis;;
  *) echo "usage: $0 install|up [--with-services]|down|status|reset" >&2; exit 2;;
esac
