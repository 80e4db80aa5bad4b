// Every default path, file name and port of Strand, once. The agent's option table
// (agent/config.ts, which drives flags, TOML, environment and the README), the shipped conflist,
// the plugins' own defaults, the CLI and install read them from here. Pure constants: the CNI
// executable imports this file, so it must stay free of imports.
// (src/sea/native-dir.cjs has its own '/run/strand/native': it is CommonJS run before any module.)

/** The node state directory: node.json and the agent's socket. */
export const STATE_DIR = '/run/strand';
/** The node state file in STATE_DIR. */
export const NODE_STATE_FILE = 'node.json';
/** The agent's socket in STATE_DIR (pod-start notices, the CLI's queries). */
export const AGENT_SOCKET_FILE = 'agent.sock';
/** Where the runtime looks for CNI plugins. */
export const CNI_BIN_DIR = '/opt/cni/bin';
/** Where the runtime reads network configuration lists. */
export const CNI_CONF_DIR = '/etc/cni/net.d';
/** Strand's configuration list in CNI_CONF_DIR. */
export const CONFLIST_FILE = '10-strand.conflist';
/** host-local's data directory, which strand-ipam shares. */
export const IPAM_DATA_DIR = '/var/lib/cni/networks';
/** The CNI plugins' log file. */
export const CNI_LOG_FILE = '/var/log/strand/cni.log';
/** The pod bridge. */
export const BRIDGE = 'cni0';
/** HOST:PORT of the agent's /healthz, /readyz and /metrics. */
export const HEALTH_ADDR = '0.0.0.0:9797';
/** VXLAN network identifier. */
export const VNI = 1;
/** VXLAN's IANA UDP port. */
export const VXLAN_PORT = 4789;
