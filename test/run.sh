#!/usr/bin/env bash
# The one test command (README: `npm test`). From a fresh clone it installs npm dependencies, brings the
# local stack up (Kafka, ClickHouse, Redis, Postgres), type-checks, lints and checks formatting (Biome),
# then runs unit and integration tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash infra/local/stack.sh up
bash infra/local/stack.sh install-test-tools
echo "[test] type-checking"
npx tsc -p tsconfig.json --noEmit
# the console's browser code (DOM library, not in the root project)
npx tsc -p services/console/web/tsconfig.json --noEmit
echo "[test] lint and format check (biome)"
npx biome ci .
echo "[test] running unit and integration tests"
mkdir -p .cache
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.cache/vitest-report.json "$@" || status=$?
# one plain closing line: "N passed, N failed, N skipped"
node -e '
  const r = JSON.parse(require("fs").readFileSync(".cache/vitest-report.json", "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' || true
exit $status
