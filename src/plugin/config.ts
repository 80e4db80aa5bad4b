// The `strand` plugin's configuration: the reference bridge plugin's fields with their names and
// meanings (cni-spec.md §8), so a bridge conflist works by changing `type`, plus Strand's own
// optional fields. Loaded and defaulted in one place, before any side effect.
import { BRIDGE, CNI_LOG_FILE, STATE_DIR } from '../defaults.ts';
import { parseCniArgs } from '../cni/args.ts';
import { parseFields, type NetConf } from '../cni/config.ts';
import { interfaceNameProblem } from '../cni/env.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { Invocation } from '../cni/skel.ts';
import { zod } from '../util/lazy-zod.ts';
import { flagOr, isIntIn, type Json } from '../util/plain.ts';

export const DEFAULT_BRIDGE = BRIDGE;
export const DEFAULT_STATE_DIR = STATE_DIR;
export const DEFAULT_LOG_FILE = CNI_LOG_FILE;

export interface PluginConfig {
  net: NetConf;
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  forceAddress: boolean;
  ipMasq: boolean;
  mtu: number | undefined;
  hairpinMode: boolean;
  promiscMode: boolean;
  portIsolation: boolean;
  enableDad: boolean;
  disableContainerInterface: boolean;
  /** The container-side MAC, from runtimeConfig.mac, args.cni.mac or CNI_ARGS MAC (that priority). */
  mac: string | undefined;
  /** L3 mode: an IPAM plugin is configured. */
  ipamType: string | undefined;
  stateDir: string;
  logFile: string;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** The agent's pod-start socket; absent means do not notify. */
  agentSocket: string | undefined;
  agentWaitMs: number;
  /**
   * What ADD does when no agent answers the pod-start notice (no socket, nobody listening, or no
   * answer in time): "allow" starts the pod without waiting for its NetworkPolicy rules (the agent
   * applies them when it runs), "fail" fails the ADD with try-again-later (11) so that no pod starts
   * before its rules can be in place.
   */
  policyWhenNoAgent: 'allow' | 'fail';
}

const MAC = /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/;

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;

let schema: ReturnType<typeof makeSchema> | undefined;
/** The plugin's schema (exported for the test that holds plainPluginFields to it). */
export function makeSchema() {
  const z = zod();
  const flag = z.boolean().default(false);
  const ifname = z.string().refine((s) => interfaceNameProblem(s) === undefined, 'is not a valid interface name');
  return z.looseObject({
    bridge: ifname.default(DEFAULT_BRIDGE),
    isGateway: flag,
    isDefaultGateway: flag,
    forceAddress: flag,
    ipMasq: flag,
    ipMasqBackend: z.enum(['iptables', 'nftables']).optional(),
    mtu: z.number().int().min(68).max(65535).optional(),
    hairpinMode: flag,
    promiscMode: flag,
    portIsolation: flag,
    enabledad: flag,
    disableContainerInterface: flag,
    macspoofchk: flag,
    vlan: z.number().int().min(0).max(4094).default(0),
    vlanTrunk: z.array(z.unknown()).optional(),
    preserveDefaultVlan: z.boolean().optional(),
    stateDir: z.string().min(1).default(DEFAULT_STATE_DIR),
    logFile: z.string().min(1).default(DEFAULT_LOG_FILE),
    logLevel: z.enum(LOG_LEVELS).default('info'),
    agentSocket: z.union([z.string().min(1), z.literal(false)]).optional(),
    agentWaitMs: z.number().int().min(0).max(60_000).default(2_000),
    policyWhenNoAgent: z.enum(['allow', 'fail']).default('allow'),
  });
}

type Fields = ReturnType<typeof makeSchema>['_output'];

/** The keys makeSchema declares; plainPluginFields must check them all (test/unit/fast-validation.test.ts). */
export const PLUGIN_FIELDS = [
  'bridge',
  'isGateway',
  'isDefaultGateway',
  'forceAddress',
  'ipMasq',
  'ipMasqBackend',
  'mtu',
  'hairpinMode',
  'promiscMode',
  'portIsolation',
  'enabledad',
  'disableContainerInterface',
  'macspoofchk',
  'vlan',
  'vlanTrunk',
  'preserveDefaultVlan',
  'stateDir',
  'logFile',
  'logLevel',
  'agentSocket',
  'agentWaitMs',
  'policyWhenNoAgent',
] as const;

/** The schema's keys, for the test that keeps PLUGIN_FIELDS complete. */
export function schemaKeys(): string[] {
  return Object.keys((schema ??= makeSchema()).shape);
}

const FLAGS = [
  'isGateway',
  'isDefaultGateway',
  'forceAddress',
  'ipMasq',
  'hairpinMode',
  'promiscMode',
  'portIsolation',
  'enabledad',
  'disableContainerInterface',
  'macspoofchk',
] as const;

const nonEmptyOr = (v: unknown, d: string): string | undefined =>
  v === undefined ? d : typeof v === 'string' && v !== '' ? v : undefined;

/**
 * The plugin's fields of a configuration the schema plainly accepts, with its defaults applied, in
 * microseconds; undefined for anything else, which the schema decides (and words the error).
 */
export function plainPluginFields(raw: Json): Fields | undefined {
  const out: Json = { ...raw };
  for (const k of FLAGS) {
    const v = flagOr(raw[k], false);
    if (v === undefined) return undefined;
    out[k] = v;
  }
  const bridge = nonEmptyOr(raw.bridge, DEFAULT_BRIDGE);
  if (bridge === undefined || interfaceNameProblem(bridge) !== undefined) return undefined;
  out.bridge = bridge;
  if (raw.ipMasqBackend !== undefined && raw.ipMasqBackend !== 'iptables' && raw.ipMasqBackend !== 'nftables')
    return undefined;
  if (raw.mtu !== undefined && !isIntIn(raw.mtu, 68, 65535)) return undefined;
  const vlan = raw.vlan ?? 0;
  if (!isIntIn(vlan, 0, 4094)) return undefined;
  out.vlan = vlan;
  if (raw.vlanTrunk !== undefined && !Array.isArray(raw.vlanTrunk)) return undefined;
  if (raw.preserveDefaultVlan !== undefined && typeof raw.preserveDefaultVlan !== 'boolean') return undefined;
  const stateDir = nonEmptyOr(raw.stateDir, DEFAULT_STATE_DIR);
  const logFile = nonEmptyOr(raw.logFile, DEFAULT_LOG_FILE);
  if (stateDir === undefined || logFile === undefined) return undefined;
  out.stateDir = stateDir;
  out.logFile = logFile;
  const logLevel = raw.logLevel ?? 'info';
  if (!(LOG_LEVELS as readonly unknown[]).includes(logLevel)) return undefined;
  out.logLevel = logLevel;
  if (raw.agentSocket !== undefined && raw.agentSocket !== false && nonEmptyOr(raw.agentSocket, '') === undefined)
    return undefined;
  const agentWaitMs = raw.agentWaitMs ?? 2_000;
  if (!isIntIn(agentWaitMs, 0, 60_000)) return undefined;
  out.agentWaitMs = agentWaitMs;
  const policyWhenNoAgent = raw.policyWhenNoAgent ?? 'allow';
  if (policyWhenNoAgent !== 'allow' && policyWhenNoAgent !== 'fail') return undefined;
  out.policyWhenNoAgent = policyWhenNoAgent;
  return out as Fields;
}

function unsupported(key: string, value: unknown, why: string): never {
  throw new CniError(ErrorCode.UnsupportedField, `unsupported field ${key}=${JSON.stringify(value)}: ${why}`);
}

function macFrom(inv: Invocation): string | undefined {
  const fromRuntime = inv.conf.runtimeConfig.mac;
  const fromArgs = (inv.conf.args?.cni as { mac?: unknown } | undefined)?.mac;
  const fromEnv = parseCniArgs(inv.env.args, [
    'MAC',
    'IP',
    'K8S_POD_NAMESPACE',
    'K8S_POD_NAME',
    'K8S_POD_INFRA_CONTAINER_ID',
    'K8S_POD_UID',
  ]).get('MAC');
  // Priority as the reference: runtimeConfig > args > CNI_ARGS (CONVENTIONS.md: args wins over CNI_ARGS).
  const mac = [fromRuntime, fromArgs, fromEnv].find((m) => typeof m === 'string' && m !== '') as string | undefined;
  if (mac !== undefined && !MAC.test(mac)) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid MAC address "${mac}"`);
  }
  return mac?.toLowerCase();
}

export function loadPluginConfig(inv: Invocation): PluginConfig {
  const c = plainPluginFields(inv.raw) ?? parseFields((schema ??= makeSchema()), inv.raw);
  if (c.vlan !== 0) unsupported('vlan', c.vlan, 'Strand does not do VLAN tagging on the bridge');
  if (c.vlanTrunk && c.vlanTrunk.length > 0)
    unsupported('vlanTrunk', c.vlanTrunk, 'Strand does not do VLAN tagging on the bridge');
  if (c.macspoofchk)
    unsupported('macspoofchk', true, 'not implemented by Strand; NetworkPolicy is enforced by the agent');
  if (c.hairpinMode && c.promiscMode) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, 'cannot set hairpin mode and promiscuous mode at the same time');
  }
  const ipamType = inv.conf.ipam?.type || undefined;
  if (c.disableContainerInterface && ipamType) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, 'cannot use IPAM when DisableContainerInterface flag is set');
  }
  const isGateway = c.isGateway || c.isDefaultGateway;
  return {
    net: inv.conf,
    bridge: c.bridge,
    isGateway,
    isDefaultGateway: c.isDefaultGateway,
    forceAddress: c.forceAddress,
    ipMasq: c.ipMasq,
    mtu: c.mtu,
    hairpinMode: c.hairpinMode,
    promiscMode: c.promiscMode,
    portIsolation: c.portIsolation,
    enableDad: c.enabledad,
    disableContainerInterface: c.disableContainerInterface,
    mac: macFrom(inv),
    ipamType,
    stateDir: c.stateDir,
    logFile: c.logFile,
    logLevel: c.logLevel,
    agentSocket: c.agentSocket === false ? undefined : (c.agentSocket ?? `${c.stateDir}/agent.sock`),
    agentWaitMs: c.agentWaitMs,
    policyWhenNoAgent: c.policyWhenNoAgent,
  };
}
