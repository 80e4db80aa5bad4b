#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, builds dist/strand and
# dist/cni/strand, type-checks, checks format and lint, runs unit, integration (root, real network namespaces) and e2e tests,
# and prints a closing "N passed, N failed" line.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
echo "test: node $(node --version) from $(command -v node)"
node scripts/build.mjs
tsc -p tsconfig.json --noEmit
# Format and lint (Biome) before the tests: a change that does not pass them fails CI here.
biome ci .
report="$(mktemp /tmp/strand-vitest.XXXXXX.json)"
trap 'rm -f "$report"' EXIT
status=0
vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  if (r.numTotalTests === 0) { console.error("test: no test ran"); process.exit(1); }
' "$report" || status=1
exit "$status"
