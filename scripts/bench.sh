#!/usr/bin/env bash
# Runs every benchmark in bench/ against a fresh build; each prints its figures and ratios.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
node scripts/build.mjs
for b in bench/*.mjs; do
  [ "$(basename "$b")" = lib.mjs ] && continue
  echo "== $b"
  node "$b"
done
