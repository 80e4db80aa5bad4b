#!/usr/bin/env bash
# Installs what building and testing Strand need on a fresh Debian 12 machine: Debian packages
# (iproute2, nftables, the reference CNI plugins, iperf3) and the npm packages, pinned Node included.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v iperf3 >/dev/null || need+=(iperf3)
command -v ping >/dev/null || need+=(iputils-ping)
command -v nc >/dev/null || need+=(netcat-openbsd)
command -v flock >/dev/null || need+=(util-linux)
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
# br_netfilter lets bridged pod traffic reach nftables; load it when the kernel has it as a module.
modprobe br_netfilter 2>/dev/null || true
modprobe vxlan 2>/dev/null || true
