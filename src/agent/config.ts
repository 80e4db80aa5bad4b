// Over 400 lines: the single option table that drives flags, TOML, environment and README.
// The agent's configuration: defaults, a TOML file, the environment and flags, merged in that order
// of priority (a flag wins over the environment, which wins over the file, which wins over the
// default) and validated field by field into one typed object, before any side effect. Every option
// is described once, in OPTIONS below: the yargs flags, the TOML keys, the environment variables and
// the README's reference all come from there.
//
//   TOML keys are the flag names without the dashes in front: `node-name = "n1"`, `vni = 1`,
//   `cluster-cidr = ["10.244.0.0/16", "fd00:10:244::/56"]` (or one comma-separated string).
//   Environment: STRAND_<FLAG_IN_UPPER_SNAKE_CASE> for every option (STRAND_NODE_NAME, STRAND_VNI…),
//   plus the conventional NODE_NAME (from the downward API) and KUBECONFIG.
//
// A bad value is refused with the option, where it came from and why, on one line (ConfigError).
// zod and the TOML parser are imported when a configuration is loaded, not when the CLI starts: the
// option table is read by every `strand` command line for --help.
import {
  BRIDGE,
  CNI_BIN_DIR,
  CNI_CONF_DIR,
  CNI_LOG_FILE,
  HEALTH_ADDR,
  IPAM_DATA_DIR,
  STATE_DIR,
  VNI,
  VXLAN_PORT,
} from '../defaults.ts';
import { isCidr } from '../net/text.ts';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import type { ZodType } from 'zod';
import { interfaceNameProblem } from '../cni/env.ts';
import type { LogLevel } from '../log.ts';
import { parseHostPort } from './health.ts';

export const AGENT_BACKENDS = ['vxlan', 'host-gw'] as const;
export type AgentBackend = (typeof AGENT_BACKENDS)[number];
/** BIG TCP for pods: `auto` follows the underlay interface, `off` keeps the kernel's 64 KiB. */
export const BIG_TCP_MODES = ['auto', 'off'] as const;
export type BigTcpMode = (typeof BIG_TCP_MODES)[number];
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;

export interface AgentConfig {
  /** The TOML file read, if any. */
  configFile: string | undefined;
  /** A kubeconfig file; undefined means the in-cluster service account. */
  kubeconfig: string | undefined;
  nodeName: string;
  /** At most one per address family, IPv4 first. */
  clusterCIDRs: string[];
  /** The cluster's service range(s), at most one per family: a Node's pod CIDR inside one gets no route. */
  serviceCIDRs: string[];
  backend: AgentBackend;
  /** The underlay interface; undefined means the default route's. */
  iface: string | undefined;
  cniBinDir: string;
  cniConfDir: string;
  stateDir: string;
  ipamDataDir: string;
  /** The agent's log; undefined means stderr. */
  logFile: string | undefined;
  /** Written into the conflist: where the CNI plugins log. */
  cniLogFile: string;
  healthAddr: string;
  logLevel: LogLevel;
  bridge: string;
  vni: number;
  vxlanPort: number;
  /** VXLAN: peers on the same layer-2 segment get direct routes (host-gw), the others the tunnel. */
  directRouting: boolean;
  /** Pod MTU override; undefined means computed from the underlay and the backend. */
  mtu: number | undefined;
  /** Pods' GSO/GRO sizes: the underlay's when above 64 KiB (auto, not over VXLAN), or the kernel's. */
  bigTcp: BigTcpMode;
  /** Written into the conflist (agentWaitMs): how long the plugin waits for the agent's answer. */
  podStartWaitMs: number;
  /** Delete the conntrack entries of established flows a NetworkPolicy change denies. */
  policyConntrack: boolean;
  /** Log denied new connections (nft `log`, rate-limited). */
  policyLogDenied: boolean;
  /** Written into the conflist: what ADD does while no agent answers ("allow" or "fail"). */
  policyWhenNoAgent: PolicyWhenNoAgent;
}

export const POLICY_WHEN_NO_AGENT = ['allow', 'fail'] as const;
export type PolicyWhenNoAgent = (typeof POLICY_WHEN_NO_AGENT)[number];

/** Why a configuration is refused, as one line. The CLI prints it and exits with status 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Kind = 'text' | 'path' | 'int' | 'bool' | 'cidrs';

interface OptionSpec {
  key: keyof AgentConfig;
  /** Flag name without dashes; also the TOML key. */
  flag: string;
  kind: Kind;
  describe: string;
  /** undefined: optional, no default. */
  default?: string | number | boolean | string[];
  /** Shown in --help and the README instead of the default value. */
  defaultText?: string;
  /** Environment variables besides STRAND_<FLAG>, lower priority than it. */
  env?: string[];
  /** Valid values, for enums. */
  choices?: readonly string[];
  required?: boolean;
  /** Checks a value of the right type; returns why it is bad. */
  check?: (value: never) => string | undefined;
}

const ifnameCheck = (v: string) => interfaceNameProblem(v);

export const OPTIONS: readonly OptionSpec[] = [
  {
    key: 'configFile',
    flag: 'config',
    kind: 'path',
    describe: 'TOML configuration file (keys are the flag names: node-name = "n1")',
  },
  {
    key: 'kubeconfig',
    flag: 'kubeconfig',
    kind: 'path',
    env: ['KUBECONFIG'],
    describe: 'kubeconfig file',
    defaultText: 'the in-cluster service account',
  },
  {
    key: 'nodeName',
    flag: 'node-name',
    kind: 'text',
    env: ['NODE_NAME'],
    required: true,
    describe: "this node's name in Kubernetes (required)",
    check: (v: string) =>
      v.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(v)
        ? 'is not a valid node name (a lowercase DNS subdomain: a-z, 0-9, "-" and ".")'
        : undefined,
  },
  {
    key: 'clusterCIDRs',
    flag: 'cluster-cidr',
    kind: 'cidrs',
    default: [],
    describe: 'the cluster pod CIDR(s), comma-separated for dual-stack',
    defaultText: 'none',
  },
  {
    key: 'serviceCIDRs',
    flag: 'service-cidr',
    kind: 'cidrs',
    default: [],
    describe: "the cluster's service CIDR(s): a Node whose pod CIDR overlaps one gets no route",
    defaultText: 'none (not checked)',
  },
  {
    key: 'backend',
    flag: 'backend',
    kind: 'text',
    default: 'vxlan',
    choices: AGENT_BACKENDS,
    describe: 'how pods reach other nodes',
  },
  {
    key: 'iface',
    flag: 'iface',
    kind: 'text',
    check: ifnameCheck,
    describe: 'underlay interface',
    defaultText: "the default route's interface",
  },
  { key: 'cniBinDir', flag: 'cni-bin-dir', kind: 'path', default: CNI_BIN_DIR, describe: 'CNI plugin directory' },
  {
    key: 'cniConfDir',
    flag: 'cni-conf-dir',
    kind: 'path',
    default: CNI_CONF_DIR,
    describe: 'CNI configuration directory (the agent writes 10-strand.conflist there)',
  },
  {
    key: 'stateDir',
    flag: 'state-dir',
    kind: 'path',
    default: STATE_DIR,
    describe: 'node state directory (node.json, agent.sock)',
  },
  { key: 'ipamDataDir', flag: 'ipam-data-dir', kind: 'path', default: IPAM_DATA_DIR, describe: 'IPAM data directory' },
  { key: 'logFile', flag: 'log-file', kind: 'path', describe: "the agent's log file", defaultText: 'stderr' },
  {
    key: 'cniLogFile',
    flag: 'cni-log-file',
    kind: 'path',
    default: CNI_LOG_FILE,
    describe: 'log file of the CNI plugins (written into the conflist)',
  },
  {
    key: 'healthAddr',
    flag: 'health-addr',
    kind: 'text',
    default: HEALTH_ADDR,
    describe: 'HOST:PORT of /healthz, /readyz and /metrics',
    check: (v: string) => {
      try {
        parseHostPort(v);
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    },
  },
  { key: 'logLevel', flag: 'log-level', kind: 'text', default: 'info', choices: LOG_LEVELS, describe: 'log level' },
  { key: 'bridge', flag: 'bridge', kind: 'text', default: BRIDGE, check: ifnameCheck, describe: 'the pod bridge' },
  {
    key: 'vni',
    flag: 'vni',
    kind: 'int',
    default: VNI,
    check: (v: number) => range(v, 1, 16_777_215),
    describe: 'VXLAN network identifier',
  },
  {
    key: 'vxlanPort',
    flag: 'vxlan-port',
    kind: 'int',
    default: VXLAN_PORT,
    check: (v: number) => range(v, 1, 65_535),
    describe: 'VXLAN UDP port',
  },
  {
    key: 'directRouting',
    flag: 'direct-routing',
    kind: 'bool',
    default: false,
    describe: 'with vxlan: direct routes to peers on the same layer-2 segment, the tunnel to the others',
  },
  {
    key: 'mtu',
    flag: 'mtu',
    kind: 'int',
    check: (v: number) => range(v, 68, 65_535),
    describe: 'pod MTU',
    defaultText: 'the underlay MTU, minus 50 for vxlan over IPv4 (70 over IPv6)',
  },
  {
    key: 'bigTcp',
    flag: 'big-tcp',
    kind: 'text',
    default: 'auto',
    choices: BIG_TCP_MODES,
    describe:
      "auto: pods and the bridge take the underlay interface's GSO/GRO sizes when they exceed 64 KiB (BIG TCP), except with vxlan; off: 64 KiB",
  },
  {
    key: 'podStartWaitMs',
    flag: 'pod-start-wait-ms',
    kind: 'int',
    default: 2000,
    check: (v: number) => range(v, 0, 60_000),
    describe:
      "how long the plugin waits for the agent's answer to a pod-start notice (the agent answers within it: ok once the pod's NetworkPolicy rules are in place, else not ready)",
  },
  {
    key: 'policyConntrack',
    flag: 'policy-conntrack',
    kind: 'bool',
    default: true,
    describe:
      'when a NetworkPolicy change denies a flow conntrack already holds, delete its conntrack entries so that it stops at once (flows still allowed are left alone)',
  },
  {
    key: 'policyLogDenied',
    flag: 'policy-log-denied',
    kind: 'bool',
    default: false,
    describe:
      'log new connections NetworkPolicy denies to the kernel log (nft log, prefix "strand-deny ", at most 10 a second per pod and direction)',
  },
  {
    key: 'policyWhenNoAgent',
    flag: 'policy-when-no-agent',
    kind: 'text',
    default: 'allow',
    choices: POLICY_WHEN_NO_AGENT,
    describe:
      'written into the conflist: what CNI ADD does while no agent answers: allow starts the pod before its NetworkPolicy rules are in place, fail refuses it (try again later)',
  },
];

function range(v: number, min: number, max: number): string | undefined {
  if (v < min) return `must be at least ${min}`;
  if (v > max) return `must be at most ${max}`;
  return undefined;
}

/** STRAND_NODE_NAME for node-name. */
export function envName(flag: string): string {
  return `STRAND_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** The default as text, for --help and the README. */
export function defaultText(o: OptionSpec): string {
  if (o.defaultText !== undefined) return o.defaultText;
  if (o.default === undefined) return 'none';
  return Array.isArray(o.default) ? o.default.join(',') : String(o.default);
}

/** A value with where it came from, for the error message. */
interface Sourced {
  value: unknown;
  /** "flag --vni", "STRAND_VNI", "config file /etc/strand/agent.toml". */
  from: string;
  /** Flags and the environment are text; TOML values have their own types. */
  text: boolean;
}

export interface ConfigInputs {
  /** Parsed flags (yargs argv), keyed by flag name; undefined when not given. */
  flags: Record<string, unknown>;
  env: NodeJS.ProcessEnv;
  /** Reads the config file (tests replace it). */
  readFile?: (path: string) => string;
  /** Where relative paths are resolved from. */
  cwd?: string;
}

/** Reads a TOML file into top-level values; unknown keys and TOML errors are ConfigErrors. */
export async function parseConfigFile(path: string, text: string): Promise<Map<string, unknown>> {
  const TOML = (await import('@iarna/toml')).default;
  let doc: Record<string, unknown>;
  try {
    doc = TOML.parse(text) as Record<string, unknown>;
  } catch (err) {
    const e = err as Error & { line?: number; col?: number };
    const first = e.message.split('\n')[0]?.replace(/ at row \d+, col \d+, pos \d+:?$/, '') ?? 'invalid TOML';
    const where = e.line !== undefined && e.col !== undefined ? ` line ${e.line + 1}, column ${e.col + 1}:` : '';
    throw new ConfigError(`config file ${path}:${where} ${first}`);
  }
  const out = new Map<string, unknown>();
  for (const [key, value] of Object.entries(doc)) {
    const spec = OPTIONS.find((o) => o.flag === key);
    if (!spec || spec.key === 'configFile') {
      const hint = OPTIONS.find(
        (o) => o.key === key || o.flag.replace(/-/g, '') === key.toLowerCase().replace(/[-_]/g, ''),
      );
      throw new ConfigError(
        `config file ${path}: unknown key "${key}"${hint && hint.key !== 'configFile' ? ` (did you mean "${hint.flag}"?)` : ''}; keys are the flag names: ${OPTIONS.filter(
          (o) => o.key !== 'configFile',
        )
          .map((o) => o.flag)
          .join(', ')}`,
      );
    }
    out.set(key, value);
  }
  return out;
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a table';
  return `a ${typeof v}`;
}

function describeValue(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

let schemas: Record<Kind, ZodType> | undefined;
// The value type of each kind of option, after text from flags and the environment is converted.
async function kindSchemas(): Promise<Record<Kind, ZodType>> {
  if (schemas) return schemas;
  const z = await import('zod');
  schemas = {
    text: z.string({ error: (i) => `must be a string, not ${typeName(i.input)}` }).min(1, 'must not be empty'),
    path: z.string({ error: (i) => `must be a path (a string), not ${typeName(i.input)}` }).min(1, 'must not be empty'),
    int: z.number({ error: (i) => `must be an integer, not ${typeName(i.input)}` }).int('must be an integer'),
    bool: z.boolean({ error: (i) => `must be true or false, not ${typeName(i.input)}` }),
    cidrs: z
      .array(z.string({ error: (i) => `must be CIDR strings, not ${typeName(i.input)}` }), {
        error: (i) => `must be a CIDR list, not ${typeName(i.input)}`,
      })
      .superRefine((list, ctx) => {
        for (const c of list)
          if (!isCidr(c)) ctx.addIssue({ code: 'custom', message: `"${c}" is not a CIDR (address/prefix)` });
        const families = list.map((c) => isIP(c.slice(0, c.indexOf('/'))));
        if (new Set(families).size !== families.length)
          ctx.addIssue({ code: 'custom', message: 'at most one CIDR per address family' });
      }),
  };
  return schemas;
}

/** Text from a flag or the environment into the option's type (a wrong one is left for zod to name). */
function fromText(kind: Kind, text: string): unknown {
  const t = text.trim();
  if (kind === 'int') return /^-?\d+$/.test(t) ? Number(t) : t;
  if (kind === 'bool') return t === 'true' || t === '1' ? true : t === 'false' || t === '0' ? false : t;
  if (kind === 'cidrs') return t === '' ? [] : t.split(',').map((s) => s.trim());
  return t;
}

function normalise(o: OptionSpec, s: Sourced): unknown {
  let v = s.value;
  if (s.text) {
    if (Array.isArray(v)) {
      // A flag given more than once: a list for cluster-cidr, an error otherwise.
      if (o.kind !== 'cidrs')
        throw new ConfigError(`invalid configuration: ${o.flag} (${s.from}): given more than once`);
      return v.flatMap((x) => fromText('cidrs', String(x)) as string[]);
    }
    return fromText(o.kind, String(v));
  }
  // TOML: a comma-separated string is accepted for the CIDR list as well.
  if (o.kind === 'cidrs' && typeof v === 'string') v = fromText('cidrs', v);
  return v;
}

async function check(o: OptionSpec, s: Sourced, cwd: string): Promise<unknown> {
  const value = normalise(o, s);
  const bad = (why: string) =>
    new ConfigError(`invalid configuration: ${o.flag} = ${describeValue(s.value)} (${s.from}): ${why}`);
  const parsed = (await kindSchemas())[o.kind].safeParse(value);
  if (!parsed.success) throw bad(parsed.error.issues[0]?.message ?? 'invalid');
  let v = parsed.data as string | number | boolean | string[];
  if (o.choices && !o.choices.includes(v as string)) throw bad(`must be one of ${o.choices.join(', ')}`);
  const why = o.check?.(v as never);
  if (why) throw bad(why);
  if (o.kind === 'path') v = resolve(cwd, v as string);
  // IPv4 first, as the node state keeps pod CIDRs.
  if (o.kind === 'cidrs')
    v = [...(v as string[])].sort((a, b) => (a.includes(':') ? 1 : 0) - (b.includes(':') ? 1 : 0));
  return v;
}

/**
 * Merges and validates. Throws ConfigError naming the first bad option, its source and the reason;
 * a config file that cannot be read or parsed, or that has unknown keys, is refused the same way.
 */
export async function loadAgentConfig(inputs: ConfigInputs): Promise<AgentConfig> {
  const { flags, env } = inputs;
  const cwd = inputs.cwd ?? process.cwd();
  const readFile = inputs.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const given = (v: unknown) => v !== undefined && v !== null;

  const pick = (
    o: OptionSpec,
    file: Map<string, unknown> | undefined,
    filePath: string | undefined,
  ): Sourced | undefined => {
    const flag = flags[o.flag];
    if (given(flag)) return { value: flag, from: `flag --${o.flag}`, text: true };
    for (const name of [envName(o.flag), ...(o.env ?? [])]) {
      const v = env[name];
      if (v !== undefined && v !== '') return { value: v, from: `environment ${name}`, text: true };
    }
    if (file?.has(o.flag)) return { value: file.get(o.flag), from: `config file ${filePath}`, text: false };
    return undefined;
  };

  const configSpec = OPTIONS.find((o) => o.key === 'configFile') as OptionSpec;
  const configSource = pick(configSpec, undefined, undefined);
  const configFile = configSource ? ((await check(configSpec, configSource, cwd)) as string) : undefined;
  let file: Map<string, unknown> | undefined;
  if (configFile !== undefined) {
    let text: string;
    try {
      text = readFile(configFile);
    } catch (err) {
      throw new ConfigError(
        `config file ${configFile}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    file = await parseConfigFile(configFile, text);
  }

  const out: Record<string, unknown> = { configFile };
  for (const o of OPTIONS) {
    if (o.key === 'configFile') continue;
    const s = pick(o, file, configFile);
    if (s === undefined) {
      if (o.required) {
        throw new ConfigError(
          `invalid configuration: ${o.flag} is required: give --${o.flag}, set ${[...(o.env ?? []), envName(o.flag)].join(' or ')}, or put ${o.flag} in the config file`,
        );
      }
      out[o.key] = Array.isArray(o.default)
        ? [...o.default]
        : o.kind === 'path' && typeof o.default === 'string'
          ? resolve(cwd, o.default)
          : o.default;
      continue;
    }
    out[o.key] = await check(o, s, cwd);
  }
  return out as unknown as AgentConfig;
}

/** The configuration reference as Markdown rows (option, TOML key, environment, default, meaning). */
export function configReference(): string {
  const rows = OPTIONS.map((o) => {
    const envs = o.key === 'configFile' ? [envName(o.flag)] : [envName(o.flag), ...(o.env ?? [])];
    const key = o.key === 'configFile' ? '-' : `\`${o.flag}\``;
    return `| \`--${o.flag}\` | ${key} | ${envs.map((e) => `\`${e}\``).join(', ')} | ${defaultText(o)} | ${o.describe}${o.choices ? ` (${o.choices.join(', ')})` : ''} |`;
  });
  return ['| flag | TOML key | environment | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}

// ---- the command line ------------------------------------------------------------------------------

/** The agent's flags for yargs: all text, so that every value is converted and checked here. */
export function agentOptions(y: Argv<object>): Argv<Record<string, string | string[] | undefined>> {
  let out = y;
  for (const o of OPTIONS) {
    const envs = [envName(o.flag), ...(o.env ?? [])].join(', ');
    const dflt = defaultText(o);
    out = out.option(o.flag, {
      type: 'string',
      requiresArg: true,
      describe: `${o.describe}${o.choices ? ` (${o.choices.join(' | ')})` : ''} [default: ${dflt}] [env: ${envs}]`,
    });
  }
  return out as Argv<Record<string, string | string[] | undefined>>;
}
