#!/usr/bin/env bash
# The README's first command: builds Strand and shows it wiring pods, with no cluster.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
node scripts/build.mjs
node scripts/demo.mjs
