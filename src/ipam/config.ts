// The IPAM configuration, compatible with the reference host-local (CNI spec checklist §9;
// reference allocator/config.go LoadIPAMConfig), loaded and checked in one place before any side
// effect. Strand adds `stateDir` and the `usePodCidr` / `usePodCidrIPv6` subnets, which take the
// node's pod CIDR(s) from the node state file the agent writes.
//
// Range sets, in order (reference): runtimeConfig.ipRanges, then the legacy top-level
// subnet/rangeStart/rangeEnd/gateway as one set, then ipam.ranges.
import { IPAM_DATA_DIR } from '../defaults.ts';
import { K8S_ARG_KEYS, parseCniArgs } from '../cni/args.ts';
import { parseFields } from '../cni/config.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { Route } from '../cni/result.ts';
import { DEFAULT_STATE_DIR, nodeStatePath, readNodeState, type NodeState } from '../contracts/node-state.ts';
import { zod } from '../util/lazy-zod.ts';
import { isObject, isStringArray, isUint } from '../util/plain.ts';
import {
  canonicalizeRange,
  canonicalizeRangeSet,
  familyOfText,
  formatIp,
  parseCidr,
  parseIp,
  RangeConfigError,
  rangeSetsOverlap,
  type Family,
  type IpAddr,
  type RangeInput,
  type RangeSet,
} from './range.ts';

export const DEFAULT_DATA_DIR = IPAM_DATA_DIR;
/** subnet value: the node's pod CIDR(s) from the node state (all of them for the top-level subnet). */
export const USE_POD_CIDR = 'usePodCidr';
/** subnet value: the node's IPv6 pod CIDR. */
export const USE_POD_CIDR_IPV6 = 'usePodCidrIPv6';

export interface RangeSpec extends RangeInput {
  /** Where the range was configured, for error messages: "ipam.ranges[1][0]". */
  field: string;
}

/**
 * A range set as configured. `podCidrs` is the top-level `subnet: "usePodCidr"`, which becomes one
 * set per pod CIDR of the node (dual-stack) once the node state is read.
 */
export type RangeSetSpec =
  | { kind: 'ranges'; field: string; ranges: RangeSpec[] }
  | { kind: 'podCidrs'; field: string; template: RangeSpec };

export interface IpamConfig {
  /** The network name: the store directory is `<dataDir>/<network>`. */
  network: string;
  dataDir: string;
  stateDir: string;
  resolvConf?: string;
  routes: Route[];
  rangeSets: RangeSetSpec[];
  /** Addresses asked for by CNI_ARGS IP, args.cni.ips or runtimeConfig.ips. */
  requestedIps: IpAddr[];
  /** Some range needs the node state (usePodCidr / usePodCidrIPv6). */
  usesPodCidr: boolean;
}

const isPodCidrWord = (s: string): boolean => s === USE_POD_CIDR || s === USE_POD_CIDR_IPV6;

let schemas: ReturnType<typeof makeSchemas> | undefined;
// Built on first use, and only for a configuration the plain checks below do not take: loading zod
// and building schemas is start-up time on the pod start path. Exported for the test that holds the
// plain checks to them.
export function makeSchemas() {
  const z = zod();
  const range = z.looseObject({
    subnet: z.string().min(1),
    rangeStart: z.string().optional(),
    rangeEnd: z.string().optional(),
    gateway: z.string().optional(),
  });
  const rangeSets = z.array(z.array(range));
  const cidr = z.string().refine((s) => parseCidr(s) !== undefined, 'not a CIDR (address/prefix)');
  const uint = z.number().int().nonnegative();
  const route = z.looseObject({
    dst: cidr,
    gw: z
      .string()
      .refine((s) => parseIp(s) !== undefined, 'not an IP address')
      .optional(),
    mtu: uint.optional(),
    advmss: uint.optional(),
    priority: uint.optional(),
    table: uint.optional(),
    scope: uint.optional(),
  });
  // Go's encoding/json reads null as "absent"; so do these schemas.
  const ipam = z.looseObject({
    type: z.string().optional(),
    subnet: z.string().nullish(),
    rangeStart: z.string().nullish(),
    rangeEnd: z.string().nullish(),
    gateway: z.string().nullish(),
    ranges: rangeSets.nullish(),
    routes: z.array(route).nullish(),
    dataDir: z.string().nullish(),
    resolvConf: z.string().nullish(),
    stateDir: z.string().nullish(),
  });
  const runtimeConfig = z.looseObject({ ipRanges: rangeSets.nullish(), ips: z.array(z.string()).nullish() });
  const args = z.looseObject({ cni: z.looseObject({ ips: z.array(z.string()).nullish() }).nullish() });
  return { ipam, runtimeConfig, args };
}

type Schemas = ReturnType<typeof makeSchemas>;
type IpamFields = Schemas['ipam']['_output'];
type RuntimeConfigFields = Schemas['runtimeConfig']['_output'];
type ArgsFields = Schemas['args']['_output'];

const isStr = (v: unknown): v is string => typeof v === 'string';
const nullishStr = (v: unknown): boolean => v === undefined || v === null || isStr(v);

function plainRangeSets(v: unknown): boolean {
  return (
    v === undefined ||
    v === null ||
    (Array.isArray(v) &&
      v.every(
        (set) =>
          Array.isArray(set) &&
          set.every(
            (r) =>
              isObject(r) &&
              isStr(r.subnet) &&
              r.subnet !== '' &&
              [r.rangeStart, r.rangeEnd, r.gateway].every((x) => x === undefined || isStr(x)),
          ),
      ))
  );
}

function plainRoute(r: unknown): boolean {
  return (
    isObject(r) &&
    isStr(r.dst) &&
    parseCidr(r.dst) !== undefined &&
    (r.gw === undefined || (isStr(r.gw) && parseIp(r.gw) !== undefined)) &&
    [r.mtu, r.advmss, r.priority, r.table, r.scope].every((x) => x === undefined || isUint(x))
  );
}

/** The ipam object when the schema plainly accepts it (its output is the same object); else undefined. */
export function plainIpam(v: unknown): IpamFields | undefined {
  if (!isObject(v) || (v.type !== undefined && !isStr(v.type))) return undefined;
  if (![v.subnet, v.rangeStart, v.rangeEnd, v.gateway, v.dataDir, v.resolvConf, v.stateDir].every(nullishStr))
    return undefined;
  if (!plainRangeSets(v.ranges)) return undefined;
  if (v.routes !== undefined && v.routes !== null && !(Array.isArray(v.routes) && v.routes.every(plainRoute)))
    return undefined;
  return v as IpamFields;
}

export function plainRuntimeConfig(v: unknown): RuntimeConfigFields | undefined {
  if (!isObject(v) || !plainRangeSets(v.ipRanges)) return undefined;
  return v.ips === undefined || v.ips === null || isStringArray(v.ips) ? (v as RuntimeConfigFields) : undefined;
}

export function plainArgs(v: unknown): ArgsFields | undefined {
  if (!isObject(v)) return undefined;
  const cni = v.cni;
  if (cni === undefined || cni === null) return v as ArgsFields;
  return isObject(cni) && (cni.ips === undefined || cni.ips === null || isStringArray(cni.ips))
    ? (v as ArgsFields)
    : undefined;
}

function definedRange(
  r: { subnet: string; rangeStart?: string | null; rangeEnd?: string | null; gateway?: string | null },
  field: string,
): RangeSpec {
  const out: RangeSpec = { subnet: r.subnet, field };
  if (r.rangeStart) out.rangeStart = r.rangeStart;
  if (r.rangeEnd) out.rangeEnd = r.rangeEnd;
  if (r.gateway) out.gateway = r.gateway;
  return out;
}

/** "ip" or "ip/prefix" (reference pkg/ip.IP accepts both); the prefix is ignored. */
function requestedIp(text: string, field: string, code: number): IpAddr {
  const ip = parseIp(text) ?? parseCidr(text)?.ip;
  if (!ip) throw new CniError(code, `cannot understand ip: ${field} "${text}" is not an IP address`);
  return ip;
}

/**
 * Reads the IPAM configuration from the whole network configuration `raw` (an IPAM plugin receives
 * all of it) for network `network`, with the request's CNI_ARGS. Errors are code 7 naming the field
 * (code 4 for a bad CNI_ARGS). The pod CIDR ranges are resolved later by resolveRangeSets, so DEL,
 * CHECK and GC work without the node state.
 */
export function loadIpamConfig(raw: Record<string, unknown>, network: string, cniArgs = ''): IpamConfig {
  if (raw.ipam === undefined || raw.ipam === null) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, "IPAM config missing 'ipam' key");
  }
  const schema = (): Schemas => (schemas ??= makeSchemas());
  const ipam = plainIpam(raw.ipam) ?? parseFields(schema().ipam, raw.ipam, 'ipam');
  const runtimeConfig =
    plainRuntimeConfig(raw.runtimeConfig ?? {}) ??
    parseFields(schema().runtimeConfig, raw.runtimeConfig ?? {}, 'runtimeConfig');
  const args = plainArgs(raw.args ?? {}) ?? parseFields(schema().args, raw.args ?? {}, 'args');

  // Requested addresses. CNI conventions ("args"): a key given in both args and CNI_ARGS is taken
  // from args only; the reference host-local merges the two, which the convention forbids.
  const requested: IpAddr[] = [];
  // CNI_ARGS is checked whether or not its IP is used: unknown keys without IgnoreUnknown are code 4.
  const ipArg = cniArgs === '' ? undefined : parseCniArgs(cniArgs, ['IP', ...K8S_ARG_KEYS]).get('IP');
  const argsIps = args.cni?.ips;
  if (argsIps && argsIps.length > 0) {
    for (const [i, s] of argsIps.entries())
      requested.push(requestedIp(s, `args.cni.ips[${i}]`, ErrorCode.InvalidNetworkConfig));
  } else if (ipArg) {
    for (const s of ipArg.split(','))
      requested.push(requestedIp(s.trim(), 'CNI_ARGS IP', ErrorCode.InvalidEnvironment));
  }
  for (const [i, s] of (runtimeConfig.ips ?? []).entries()) {
    requested.push(requestedIp(s, `runtimeConfig.ips[${i}]`, ErrorCode.InvalidNetworkConfig));
  }
  const seen = new Set<string>();
  const requestedIps = requested.filter((ip) => {
    const key = formatIp(ip);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });

  const rangeSets: RangeSetSpec[] = [];
  (runtimeConfig.ipRanges ?? []).forEach((set, i) => {
    const field = `runtimeConfig.ipRanges[${i}]`;
    rangeSets.push({ kind: 'ranges', field, ranges: set.map((r, j) => definedRange(r, `${field}[${j}]`)) });
  });
  if (ipam.subnet) {
    const legacy = definedRange({ ...ipam, subnet: ipam.subnet }, 'ipam.subnet');
    if (ipam.subnet === USE_POD_CIDR) rangeSets.push({ kind: 'podCidrs', field: 'ipam.subnet', template: legacy });
    else rangeSets.push({ kind: 'ranges', field: 'ipam.subnet', ranges: [legacy] });
  }
  (ipam.ranges ?? []).forEach((set, i) => {
    const field = `ipam.ranges[${i}]`;
    rangeSets.push({ kind: 'ranges', field, ranges: set.map((r, j) => definedRange(r, `${field}[${j}]`)) });
  });
  if (rangeSets.length === 0) throw new CniError(ErrorCode.InvalidNetworkConfig, 'no IP ranges specified');

  const usesPodCidr = rangeSets.some((s) =>
    s.kind === 'podCidrs' ? true : s.ranges.some((r) => isPodCidrWord(r.subnet)),
  );
  const conf: IpamConfig = {
    network,
    dataDir: ipam.dataDir || DEFAULT_DATA_DIR,
    stateDir: ipam.stateDir || DEFAULT_STATE_DIR,
    routes: (ipam.routes ?? []).map(routeOf),
    rangeSets,
    requestedIps,
    usesPodCidr,
  };
  if (ipam.resolvConf) conf.resolvConf = ipam.resolvConf;
  // Literal ranges are checked now, so a bad one is reported whatever the node state says.
  if (!usesPodCidr) resolveRangeSets(conf);
  return conf;
}

function routeOf(r: {
  dst: string;
  gw?: string | undefined;
  mtu?: number | undefined;
  advmss?: number | undefined;
  priority?: number | undefined;
  table?: number | undefined;
  scope?: number | undefined;
}): Route {
  const out: Route = { dst: r.dst };
  if (r.gw) out.gw = r.gw;
  for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
    const v = r[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function podCidrsOf(state: NodeState, stateDir: string): { cidr: string; family: Family }[] {
  const out: { cidr: string; family: Family }[] = [];
  for (const cidr of state.podCIDRs) {
    const family = familyOfText(cidr);
    if (family) out.push({ cidr, family });
  }
  if (out.length === 0) {
    throw new CniError(
      ErrorCode.TryAgainLater,
      `node state ${nodeStatePath(stateDir)} lists no pod CIDR for node ${state.nodeName}: the node has no spec.podCIDRs yet`,
    );
  }
  return out;
}

/** The pod CIDR a `usePodCidr` (first IPv4, else the first) or `usePodCidrIPv6` range stands for. */
function pickPodCidr(
  word: string,
  cidrs: { cidr: string; family: Family }[],
  stateDir: string,
  state: NodeState,
): string {
  if (word === USE_POD_CIDR_IPV6) {
    const v6 = cidrs.find((c) => c.family === 6);
    if (!v6) {
      throw new CniError(
        ErrorCode.TryAgainLater,
        `node state ${nodeStatePath(stateDir)} has no IPv6 pod CIDR for node ${state.nodeName} (podCIDRs: ${state.podCIDRs.join(', ')})`,
      );
    }
    return v6.cidr;
  }
  return (cidrs.find((c) => c.family === 4) ?? (cidrs[0] as { cidr: string })).cidr;
}

function invalidSet(index: number, field: string, err: unknown): unknown {
  if (!(err instanceof RangeConfigError)) return err;
  return new CniError(ErrorCode.InvalidNetworkConfig, `invalid range set ${index} (${field}): ${err.message}`);
}

/**
 * Turns the configured range sets into canonical ones, reading the node state (through `readState`)
 * only if a range uses the pod CIDR. Node state problems are code 11, range problems code 7.
 */
export function resolveRangeSets(
  conf: IpamConfig,
  readState: () => NodeState = () => readNodeState(conf.stateDir),
): RangeSet[] {
  let state: NodeState | undefined;
  const nodeState = (): NodeState => (state ??= readState());
  const sets: RangeSet[] = [];
  const fields: string[] = [];
  const add = (inputs: RangeSpec[], field: string): void => {
    // Each range alone first, so that an error names the range's own field.
    for (const r of inputs) {
      try {
        canonicalizeRange(r);
      } catch (err) {
        throw invalidSet(sets.length, r.field, err);
      }
    }
    try {
      sets.push(canonicalizeRangeSet(inputs));
      fields.push(field);
    } catch (err) {
      throw invalidSet(sets.length, field, err);
    }
  };
  for (const spec of conf.rangeSets) {
    if (spec.kind === 'podCidrs') {
      const s = nodeState();
      // Top-level rangeStart/rangeEnd/gateway apply to the pod CIDR of their own family only.
      const { template } = spec;
      for (const { cidr, family } of podCidrsOf(s, conf.stateDir)) {
        const r: RangeSpec = { subnet: cidr, field: `${template.field} (pod CIDR ${cidr})` };
        for (const k of ['rangeStart', 'rangeEnd', 'gateway'] as const) {
          const v = template[k];
          if (v !== undefined && familyOfText(v) === family) r[k] = v;
        }
        add([r], r.field);
      }
      continue;
    }
    const ranges = spec.ranges.map((r) => {
      if (!isPodCidrWord(r.subnet)) return r;
      const s = nodeState();
      return {
        ...r,
        subnet: pickPodCidr(r.subnet, podCidrsOf(s, conf.stateDir), conf.stateDir, s),
        field: `${r.field}.subnet (${r.subnet})`,
      };
    });
    add(ranges, spec.field);
  }
  for (let i = 0; i < sets.length; i++) {
    for (let j = i + 1; j < sets.length; j++) {
      if (rangeSetsOverlap(sets[i] as RangeSet, sets[j] as RangeSet)) {
        throw new CniError(
          ErrorCode.InvalidNetworkConfig,
          `range set ${i} overlaps with ${j} (${fields[i]} and ${fields[j]})`,
        );
      }
    }
  }
  return sets;
}
