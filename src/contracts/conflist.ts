// The network configuration list Strand installs as 10-strand.conflist, rendered in one place: the
// shipped cni-conf/10-strand.conflist with its paths and bridge filled in, its versions and chained
// plugins those the node's plugins support (install/conflist-versions.ts), plus a marker that says
// Strand wrote it. `strand install` writes it and the agent may rewrite it (with the node's values,
// agent/cni-conflist.ts); both use this one renderer, and uninstall removes the file only when the
// marker is there.
//
// The marker is a top-level key. libcni reads the list's known keys (cniVersion, cniVersions, name,
// disableCheck, disableGC, plugins) and ignores the rest, and a plugin only receives its own entry
// of `plugins` (with name and cniVersion injected), so the key reaches no plugin (CNI 1.1 §1).

import { BRIDGE, CNI_LOG_FILE, CONFLIST_FILE, IPAM_DATA_DIR, STATE_DIR } from '../defaults.ts';
import { join } from 'node:path';

export { CONFLIST_FILE };

/** cniVersion and cniVersions of a list. */
export interface ListVersions {
  cniVersion: string;
  cniVersions: string[];
}

/** The plugin's own default for agentWaitMs (src/plugin/config.ts): left out of the file when equal. */
export const PLUGIN_AGENT_WAIT_MS = 2000;

export function conflistPath(cniConfDir: string): string {
  return join(cniConfDir, CONFLIST_FILE);
}
export const NETWORK_NAME = 'strand';
export const MANAGED_KEY = 'strand.dev/managed';

export interface ConflistOptions {
  /** The bridge the pods' host veths join. */
  bridge?: string;
  /** Node state dir: the agent's node.json (pod CIDRs, MTU) and agent.sock. */
  stateDir?: string;
  /** strand-ipam's data dir (host-local layout). */
  ipamDataDir?: string;
  /** The plugin's log file. */
  logFile?: string;
  /** cniVersion and cniVersions (conflist-versions.ts: what every plugin of the list supports). */
  versions?: ListVersions;
  /** The chained plugins after strand, in order (a plugin missing on the node is left out). */
  chained?: readonly string[];
  /** The plugin's agentWaitMs; written only when it is not the plugin's default. */
  agentWaitMs?: number;
  /** The plugin's policyWhenNoAgent; written only when it is not the plugin's default ("allow"). */
  policyWhenNoAgent?: 'allow' | 'fail';
}

/** The plugins Strand chains after its own, and each one's entry. */
export const CHAINED_PLUGINS = ['portmap'] as const;
export type ChainedPlugin = (typeof CHAINED_PLUGINS)[number];
const CHAINED_ENTRIES: Record<ChainedPlugin, Record<string, unknown>> = {
  portmap: { type: 'portmap', capabilities: { portMappings: true } },
};

/**
 * The versions of the shipped file, for a node whose plugins were not asked: 1.0.0, what the
 * reference plugins 1.0 to 1.4 (Debian 12, Ubuntu 22.04 and 24.04 ship 1.1.1) and every runtime
 * with libcni 1.0 or later (containerd 1.6+, CRI-O 1.23+) support. 1.1.0 needs reference plugins
 * 1.5 or later; 0.3.1 (what flannel, Calico and kindnet write) only matters for plugins older than
 * 1.0 or containerd 1.5.
 */
export const DEFAULT_VERSIONS: ListVersions = { cniVersion: '1.0.0', cniVersions: ['0.3.1', '0.4.0', '1.0.0'] };

type PathOptions = Omit<ConflistOptions, 'versions' | 'chained' | 'agentWaitMs' | 'policyWhenNoAgent'>;
/** The defaults of cni-conf/10-strand.conflist (and of the plugin's own fields). */
export const CONFLIST_DEFAULTS: Required<PathOptions> = {
  bridge: BRIDGE,
  stateDir: STATE_DIR,
  ipamDataDir: IPAM_DATA_DIR,
  logFile: CNI_LOG_FILE,
};

/** The configuration list as an object. */
export function strandConflist(opts: ConflistOptions = {}): Record<string, unknown> {
  const o = { ...CONFLIST_DEFAULTS, ...definedOnly(opts) };
  const versions = opts.versions ?? DEFAULT_VERSIONS;
  const chained = opts.chained ?? CHAINED_PLUGINS;
  return {
    cniVersion: versions.cniVersion,
    cniVersions: [...versions.cniVersions],
    name: NETWORK_NAME,
    [MANAGED_KEY]: true,
    plugins: [
      {
        type: 'strand',
        bridge: o.bridge,
        isGateway: true,
        isDefaultGateway: true,
        hairpinMode: true,
        stateDir: o.stateDir,
        logFile: o.logFile,
        ipam: {
          type: 'strand-ipam',
          subnet: 'usePodCidr',
          stateDir: o.stateDir,
          dataDir: o.ipamDataDir,
        },
        // Left out at the plugin's defaults, so the default file stays what install writes.
        ...(opts.agentWaitMs !== undefined && opts.agentWaitMs !== PLUGIN_AGENT_WAIT_MS
          ? { agentWaitMs: opts.agentWaitMs }
          : {}),
        ...(opts.policyWhenNoAgent === 'fail' ? { policyWhenNoAgent: 'fail' } : {}),
      },
      ...chained.map(chainedEntry),
    ],
  };
}

function chainedEntry(type: string): Record<string, unknown> {
  const entry = (CHAINED_ENTRIES as Record<string, Record<string, unknown> | undefined>)[type];
  if (!entry)
    throw new Error(`no configuration for a chained plugin "${type}" (Strand chains ${CHAINED_PLUGINS.join(', ')})`);
  return structuredClone(entry);
}

/** The file's content: stable formatting, so an unchanged configuration is byte-identical. */
export function renderConflist(opts: ConflistOptions = {}): string {
  return `${JSON.stringify(strandConflist(opts), null, 2)}\n`;
}

/** Whether a conflist file's text is one Strand wrote: its network name and the marker. */
export function isStrandConflist(text: string): boolean {
  try {
    const json = JSON.parse(text) as Record<string, unknown> | null;
    return typeof json === 'object' && json !== null && json.name === NETWORK_NAME && json[MANAGED_KEY] === true;
  } catch {
    return false;
  }
}

function definedOnly(o: ConflistOptions): Partial<typeof CONFLIST_DEFAULTS> {
  const { bridge, stateDir, ipamDataDir, logFile } = o;
  return Object.fromEntries(
    Object.entries({ bridge, stateDir, ipamDataDir, logFile }).filter(([, v]) => v !== undefined),
  );
}
