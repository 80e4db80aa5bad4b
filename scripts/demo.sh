#!/usr/bin/env bash
# The README's first command: builds Strand and runs it on a simulated two-node cluster (network
# namespaces, one `strand agent` per node, a test API server), with no real Kubernetes.
# Options go to scripts/demo.mjs: npm run demo -- --backend host-gw
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
flock /tmp/strand-build.lock node scripts/build.mjs
node scripts/demo.mjs "$@"
