// The CNI network configuration list the agent keeps in the CNI conf dir (10-strand.conflist). It is
// the one `strand install` writes (src/contracts/conflist.ts: the shipped
// cni-conf/10-strand.conflist's shape, `strand` with `strand-ipam` on `subnet: usePodCidr`, then
// `portmap`, with Strand's marker so that uninstall knows it), with the agent's paths filled in, and
// the versions and chained plugins that the plugins in the CNI bin dir support (every pass asks
// them, install/conflist-versions.ts, and the list is rewritten when the answer changes). The
// pod MTU is not in it: the plugin reads it from the node state, so an MTU change does not rewrite
// the file that runtimes watch.
import { readFileSync } from 'node:fs';
import {
  conflistPath,
  NETWORK_NAME,
  renderConflist,
  strandConflist,
  type ConflistOptions,
} from '../contracts/conflist.ts';
import type { ConflistPlan } from '../install/conflist-versions.ts';
import { writeFileAtomicAsync } from '../util/atomic-file.ts';
import type { AgentConfig } from './config.ts';

export { conflistPath, NETWORK_NAME };

export type ConflistInputs = Pick<
  AgentConfig,
  'bridge' | 'stateDir' | 'ipamDataDir' | 'cniLogFile' | 'podStartWaitMs'
> &
  Partial<Pick<AgentConfig, 'policyWhenNoAgent'>>;

/** What the node's plugins support (conflist-versions.ts); without it, the shipped file's choice. */
export type ConflistPluginChoice = Pick<ConflistPlan, 'versions' | 'chained'>;

/** The renderer's options from the agent's configuration. */
export function conflistOptions(c: ConflistInputs, plugins?: ConflistPluginChoice): ConflistOptions {
  return {
    bridge: c.bridge,
    stateDir: c.stateDir,
    ipamDataDir: c.ipamDataDir,
    logFile: c.cniLogFile,
    ...(plugins ? { versions: plugins.versions, chained: plugins.chained } : {}),
    agentWaitMs: c.podStartWaitMs,
    ...(c.policyWhenNoAgent !== undefined ? { policyWhenNoAgent: c.policyWhenNoAgent } : {}),
  };
}

/**
 * The conflist as an object (pure). With default values and the same plugin choice it is byte for
 * byte what install writes.
 */
export function buildConflist(c: ConflistInputs, plugins?: ConflistPluginChoice): Record<string, unknown> {
  return strandConflist(conflistOptions(c, plugins));
}

/** The file's text (contracts/conflist.ts's one renderer) for the agent's configuration. */
export function agentConflistText(c: ConflistInputs, plugins?: ConflistPluginChoice): string {
  return renderConflist(conflistOptions(c, plugins));
}

/**
 * Writes `text` to `path` atomically unless the file already holds exactly that; returns whether it
 * wrote. Runtimes watch the conf dir and reload on every change, so an unchanged file is left alone.
 */
export async function writeIfChanged(path: string, text: string, mode = 0o644): Promise<boolean> {
  try {
    if (readFileSync(path, 'utf8') === text) return false;
  } catch {
    // Missing or unreadable: write it.
  }
  await writeFileAtomicAsync(path, text, { mode, mkdir: true });
  return true;
}

/** Writes the conflist into the CNI conf dir if it differs; returns whether it wrote. */
export function ensureConflist(
  cniConfDir: string,
  c: ConflistInputs,
  plugins?: ConflistPluginChoice,
): Promise<boolean> {
  return writeIfChanged(conflistPath(cniConfDir), agentConflistText(c, plugins));
}
