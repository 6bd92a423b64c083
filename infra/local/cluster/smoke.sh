#!/usr/bin/env bash
# Cluster smoke test (npm run test:cluster:smoke): up --cluster on its own ports and state (CLUSTER_BASE_PORT
# 19500, .cache/cluster-smoke: the default cluster on 19600 is left alone), migrate, insert into replica 1 and
# read it from replica 2, kill -9 one broker and produce with acks=all, restart it, down. Prints timings.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
export CLUSTER_BASE_PORT="${CLUSTER_BASE_PORT:-19500}" METERLINE_STATE_DIR="${METERLINE_STATE_DIR:-$ROOT/.cache/cluster-smoke}"
S="bash $ROOT/infra/local/stack.sh"
B=$CLUSTER_BASE_PORT
q() { curl -fsS --max-time 10 "http://127.0.0.1:$1/" --data-binary "$2"; }
step() { printf '[smoke] %-58s %s s\n' "$1" "$(( SECONDS - t ))"; t=$SECONDS; }
trap '$S down --cluster >/dev/null 2>&1 || true' EXIT
t=$SECONDS; t0=$SECONDS
$S up --cluster >/dev/null; step "up --cluster + migrations + topics"
id="smoke-$(date +%s%N)"
q $((B + 41)) "INSERT INTO meterline.events (organization_id, customer_id, event_name, idempotency_id, time_created, properties, source) VALUES ('$id', 'c', 'e', '$id', now(), '{}', 'smoke')"
deadline=$((SECONDS + 60))
until [ "$(q $((B + 51)) "SELECT count() FROM meterline.events_v WHERE organization_id = '$id'")" = 1 ]; do
  [ $SECONDS -lt $deadline ] || { echo "[smoke] FAIL: row not on replica 2 within 60 s"; exit 1; }; sleep 0.2
done
[ "$(q $((B + 51)) "SELECT count() FROM meterline.events_by_offset WHERE organization_id = '$id'")" = 1 ] || { echo "[smoke] FAIL: materialized view row not replicated"; exit 1; }
step "insert on replica 1 -> read on replica 2 (events + MV target)"
$S cluster-kill kafka2 --cluster >/dev/null; step "kill -9 kafka2"
(cd "$ROOT" && node infra/local/cluster/produce-acks-all.mjs "127.0.0.1:$((B + 1)),127.0.0.1:$((B + 21))" 50 meterline.events); step "50 acks=all sends with 2 of 3 brokers"
$S cluster-start kafka2 --cluster >/dev/null; step "cluster-start kafka2 (registered, all partitions in sync)"
$S down --cluster >/dev/null; trap - EXIT; step "down --cluster"
echo "[smoke] OK in $(( SECONDS - t0 )) s"
