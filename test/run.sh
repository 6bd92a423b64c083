#!/usr/bin/env bash
# The one test command (README: `npm test`). From a fresh clone it installs npm dependencies, brings the
# local stack up (Kafka, ClickHouse, Redis, Postgres), type-checks, then runs unit and integration tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash infra/local/stack.sh up
bash infra/local/stack.sh install-test-tools
echo "[test] type-checking"
npx tsc -p tsconfig.json --noEmit
echo "[test] running unit and integration tests"
npx vitest run "$@"
