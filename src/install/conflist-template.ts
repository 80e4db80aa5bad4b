// The network configuration list Strand installs as 10-strand.conflist: the shipped
// cni-conf/10-strand.conflist with its paths and bridge filled in, plus a marker that says Strand
// wrote it. `strand install` writes it and the agent may rewrite it (with the node's values); both
// use this one function, and uninstall removes the file only when the marker is there.
//
// The marker is a top-level key. libcni reads the list's known keys (cniVersion, cniVersions, name,
// disableCheck, disableGC, plugins) and ignores the rest, and a plugin only receives its own entry
// of `plugins` (with name and cniVersion injected), so the key reaches no plugin (CNI 1.1 §1).

export const CONFLIST_FILE = '10-strand.conflist';
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
}

/** The defaults of cni-conf/10-strand.conflist (and of the plugin's own fields). */
export const CONFLIST_DEFAULTS: Required<ConflistOptions> = {
  bridge: 'cni0',
  stateDir: '/run/strand',
  ipamDataDir: '/var/lib/cni/networks',
  logFile: '/var/log/strand/cni.log',
};

/** The configuration list as an object. */
export function strandConflist(opts: ConflistOptions = {}): Record<string, unknown> {
  const o = { ...CONFLIST_DEFAULTS, ...definedOnly(opts) };
  return {
    cniVersion: '1.1.0',
    cniVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'],
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
      },
      {
        type: 'portmap',
        capabilities: { portMappings: true },
      },
    ],
  };
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

function definedOnly(o: ConflistOptions): ConflistOptions {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as ConflistOptions;
}
