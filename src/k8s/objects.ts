// The slim objects Strand keeps of Nodes, Pods, Namespaces, NetworkPolicies and ClusterNetworkPolicies,
// and the slimmers that make them from the API's JSON: only the fields Strand uses are kept (a Pod
// keeps name, namespace, labels, node, IPs, hostNetwork and container ports), which keeps the agent
// small on large clusters; a malformed object (no metadata, a string where an object belongs…) is
// refused with a reason, never passed on.
import { normalizeIp } from '../net/text.ts';

export interface SlimMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** metadata.creationTimestamp as the API sends it (RFC 3339; not under its own name, which
   * client-node types as a Date). Kept for Nodes only: of two Nodes whose pod CIDRs overlap, the older
   * keeps its (datapath/desired.ts). */
  createdAt?: string;
}

// The slim objects have the API's shape (a subset of V1Node, V1Pod…), so code written against the API
// types reads them, and peers' Nodes can go to the backends as they are.

export interface NodeInfo {
  metadata: SlimMeta;
  /** podCIDRs is filled from podCIDR when only that is set (older API servers). */
  spec: { podCIDRs: string[] };
  status: {
    /** InternalIP, ExternalIP, Hostname… */
    addresses: { type: string; address: string }[];
    /** Only NetworkUnavailable, the condition Strand sets. */
    conditions: { type: string; status: string; reason?: string }[];
  };
}

export interface PodPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol: string;
}

export interface PodInfo {
  metadata: SlimMeta;
  spec: {
    nodeName?: string;
    hostNetwork?: boolean;
    /** Only containers with ports, and of them only the ports; frozen, shared by the pods that declare the same. */
    containers: readonly { readonly name: string; readonly ports: readonly PodPort[] }[];
  };
  status: {
    phase?: string;
    /** Filled from podIP when only that is set. */
    podIPs: { ip: string }[];
  };
}

export interface NamespaceInfo {
  metadata: SlimMeta;
}

export interface NetworkPolicyInfo {
  metadata: SlimMeta;
  /** The NetworkPolicySpec as the API served it; the policy compiler checks it. */
  spec: Record<string, unknown>;
}

export interface ClusterNetworkPolicyInfo {
  /** creationTimestamp is kept for `strand status` (which of two equal priorities came first). */
  metadata: SlimMeta & { creationTimestamp?: Date };
  /** The ClusterNetworkPolicySpec as the API served it, even when not an object: the policy compiler
   * checks it and reports what is wrong (fail closed), which skipping the object here would hide. */
  spec: unknown;
}

export const podIPs = (pod: PodInfo): string[] => pod.status.podIPs.map((p) => p.ip);

export type Slimmed<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Annotations the agent keeps from Nodes: its own (VXLAN peers publish their VTEP there). */
export const ANNOTATION_PREFIX = 'strand.dev/';

export type Json = Record<string, unknown>;

export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

class Malformed extends Error {}

function field<T>(obj: Json, key: string, check: (v: unknown) => v is T, what: string, where: string): T | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!check(v)) throw new Malformed(`${where}.${key} is not ${what}`);
  return v;
}

export const isString = (v: unknown): v is string => typeof v === 'string';
const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';
const isArray = (v: unknown): v is unknown[] => Array.isArray(v);
const isStringMap = (v: unknown): v is Record<string, string> => isObject(v) && Object.values(v).every(isString);

function slimMeta(raw: unknown, namespaced: boolean, keepAnnotations?: (key: string) => boolean): SlimMeta {
  if (!isObject(raw)) throw new Malformed('not an object');
  const meta = raw.metadata;
  if (!isObject(meta)) throw new Malformed('metadata is missing or not an object');
  const name = meta.name;
  if (typeof name !== 'string' || name === '') throw new Malformed('metadata.name is missing');
  const out: SlimMeta = { name };
  if (namespaced) {
    const ns = meta.namespace;
    if (typeof ns !== 'string' || ns === '') throw new Malformed('metadata.namespace is missing');
    out.namespace = ns;
  }
  const uid = field(meta, 'uid', isString, 'a string', 'metadata');
  if (uid !== undefined) out.uid = uid;
  const rv = field(meta, 'resourceVersion', isString, 'a string', 'metadata');
  if (rv !== undefined) out.resourceVersion = rv;
  const labels = copiedStringMap(meta.labels, 'metadata.labels');
  if (labels !== undefined) out.labels = labels;
  if (keepAnnotations) {
    const annotations = field(meta, 'annotations', isStringMap, 'a map of strings', 'metadata');
    const kept = Object.entries(annotations ?? {}).filter(([k]) => keepAnnotations(k));
    if (kept.length > 0) out.annotations = Object.fromEntries(kept);
  }
  return out;
}

/**
 * A copy of a map of strings, undefined when absent or empty; one walk that checks and copies (the
 * labels of every listed pod: a check, a count and a copy were three walks and two arrays).
 */
function copiedStringMap(v: unknown, where: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new Malformed(`${where} is not a map of strings`);
  let out: Record<string, string> | undefined;
  for (const k of Object.keys(v)) {
    const x = v[k];
    if (typeof x !== 'string') throw new Malformed(`${where} is not a map of strings`);
    (out ??= {})[k] = x;
  }
  return out;
}

function section(raw: unknown, key: 'spec' | 'status'): Json {
  const v = (raw as Json)[key];
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new Malformed(`${key} is not an object`);
  return v;
}

function slimming<T>(fn: (raw: unknown) => T): (raw: unknown) => Slimmed<T> {
  return (raw) => {
    try {
      return { ok: true, value: fn(raw) };
    } catch (err) {
      if (err instanceof Malformed) return { ok: false, reason: err.message };
      throw err;
    }
  };
}

export const slimNode = slimming((raw): NodeInfo => {
  const metadata = slimMeta(raw, false, (k) => k.startsWith(ANNOTATION_PREFIX));
  // Not a reason to refuse the Node when malformed: it then counts as the newest (datapath/desired.ts).
  const created = ((raw as Json).metadata as Json).creationTimestamp;
  if (isString(created)) metadata.createdAt = created;
  const spec = section(raw, 'spec');
  const status = section(raw, 'status');
  const podCIDRs = field(spec, 'podCIDRs', isArray, 'an array', 'spec') ?? [];
  if (!podCIDRs.every(isString)) throw new Malformed('spec.podCIDRs has a value that is not a string');
  const podCIDR = field(spec, 'podCIDR', isString, 'a string', 'spec');
  const addresses: { type: string; address: string }[] = [];
  for (const a of field(status, 'addresses', isArray, 'an array', 'status') ?? []) {
    if (isObject(a) && isString(a.type) && isString(a.address)) addresses.push({ type: a.type, address: a.address });
  }
  const conditions: NodeInfo['status']['conditions'] = [];
  for (const c of field(status, 'conditions', isArray, 'an array', 'status') ?? []) {
    if (isObject(c) && c.type === 'NetworkUnavailable' && isString(c.status)) {
      conditions.push({ type: c.type, status: c.status, ...(isString(c.reason) ? { reason: c.reason } : {}) });
    }
  }
  return {
    metadata,
    spec: { podCIDRs: podCIDRs.length > 0 ? [...podCIDRs] : podCIDR ? [podCIDR] : [] },
    status: { addresses, conditions },
  };
});

/**
 * A pod's containers with ports (only the ports), shared: the pods of one workload declare the same
 * ports, so one frozen copy serves all of them (at 50,000 pods the copies were ~270 bytes a pod, 13
 * MiB, a third of the pods' cache). The copy is found by a key written from the raw ports, so a pod
 * whose ports are known allocates nothing for them but the key. The table is emptied when it holds
 * SHARED_CONTAINERS_MAX kinds: sharing is only a saving.
 */
function podContainers(raw: unknown[]): PodInfo['spec']['containers'] {
  let key = '';
  for (const c of raw) {
    if (!isObject(c)) throw new Malformed('spec.containers has an entry that is not an object');
    let ports = '';
    for (const p of field(c, 'ports', isArray, 'an array', 'spec.containers[]') ?? []) {
      if (!isObject(p) || typeof p.containerPort !== 'number')
        throw new Malformed('spec.containers[].ports has an entry without a numeric containerPort');
      ports += `${isString(p.name) ? p.name : '\u0000'}\u0001${p.containerPort}\u0001${isString(p.protocol) ? p.protocol : 'TCP'}\u0002`;
    }
    if (ports !== '') key += `${isString(c.name) ? c.name : ''}\u0003${ports}\u0004`;
  }
  if (key === '') return NO_CONTAINERS;
  const known = sharedContainers.get(key);
  if (known !== undefined) return known;
  const containers: PodInfo['spec']['containers'][number][] = [];
  for (const c of raw as Json[]) {
    const ports: PodPort[] = [];
    for (const p of (c.ports as Json[] | undefined) ?? []) {
      ports.push(
        Object.freeze({
          ...(isString(p.name) ? { name: p.name } : {}),
          containerPort: p.containerPort as number,
          protocol: isString(p.protocol) ? p.protocol : 'TCP',
        }),
      );
    }
    if (ports.length > 0)
      containers.push(Object.freeze({ name: isString(c.name) ? c.name : '', ports: Object.freeze(ports) }));
  }
  const frozen = Object.freeze(containers);
  if (sharedContainers.size >= SHARED_CONTAINERS_MAX) sharedContainers.clear();
  sharedContainers.set(key, frozen);
  return frozen;
}

const NO_CONTAINERS: PodInfo['spec']['containers'] = Object.freeze([]);
const SHARED_CONTAINERS_MAX = 4_096;
const sharedContainers = new Map<string, PodInfo['spec']['containers']>();

export const slimPod = slimming((raw): PodInfo => {
  const metadata = slimMeta(raw, true);
  const spec = section(raw, 'spec');
  const status = section(raw, 'status');
  const containers = podContainers(field(spec, 'containers', isArray, 'an array', 'spec') ?? []);
  const ips: { ip: string }[] = [];
  for (const p of field(status, 'podIPs', isArray, 'an array', 'status') ?? []) {
    if (isObject(p) && isString(p.ip)) ips.push({ ip: p.ip });
  }
  const podIP = field(status, 'podIP', isString, 'a string', 'status');
  if (ips.length === 0 && podIP) ips.push({ ip: podIP });
  const phase = field(status, 'phase', isString, 'a string', 'status');
  const nodeName = field(spec, 'nodeName', isString, 'a string', 'spec');
  const hostNetwork = field(spec, 'hostNetwork', isBoolean, 'a boolean', 'spec');
  // Written out rather than spread: the spreads made two objects a pod only to copy them.
  let podSpec: PodInfo['spec'];
  if (nodeName) podSpec = hostNetwork ? { nodeName, hostNetwork, containers } : { nodeName, containers };
  else podSpec = hostNetwork ? { hostNetwork, containers } : { containers };
  const podIPs = exact(ips);
  const pod: PodInfo = {
    metadata,
    spec: podSpec,
    status: phase !== undefined ? { phase, podIPs } : { podIPs },
  };
  let bad: string[] | undefined;
  for (const { ip } of ips) if (normalizeIp(ip) === undefined) (bad ??= []).push(ip);
  if (bad !== undefined) {
    malformedIps.set(pod.status.podIPs, bad);
    malformedPods++;
  }
  return pod;
});

/** The address lists of pods slimmed here that hold addresses that are not IP addresses, with those. */
const malformedIps = new WeakMap<readonly { ip: string }[], readonly string[]>();
/** How many such pods were ever slimmed: none, the usual case, and no pod need be looked at. */
let malformedPods = 0;

/**
 * The addresses of a pod slimmed by slimPod (or a copy sharing its status) that are not IP addresses,
 * found as it was slimmed (a list page at a time); undefined when it has none. The policy input warns
 * of them: parsing every address again in its first build held the event loop ~100 ms at 50,000 pods,
 * and even a look-up per pod is 10-45 ms there, so `anyMalformedPodIps` says first whether any exist.
 */
export function malformedPodIps(pod: PodInfo): readonly string[] | undefined {
  return malformedIps.get(pod.status.podIPs);
}

export function anyMalformedPodIps(): boolean {
  return malformedPods > 0;
}

/** An array grown by push keeps room for 17 entries (V8's first growth); a slim object is kept for the
 * informer's life, so its arrays are copied to their length: about 18 MB of 50,000 pods' heap. */
function exact<T>(a: T[]): T[] {
  return a.length === 0 ? [] : a.slice();
}

export const slimNamespace = slimming((raw): NamespaceInfo => ({ metadata: slimMeta(raw, false) }));

export const slimNetworkPolicy = slimming((raw): NetworkPolicyInfo => {
  const metadata = slimMeta(raw, true);
  const spec = (raw as Json).spec;
  if (!isObject(spec)) throw new Malformed('spec is missing or not an object');
  return { metadata, spec };
});

export const slimClusterNetworkPolicy = slimming((raw): ClusterNetworkPolicyInfo => {
  const metadata: ClusterNetworkPolicyInfo['metadata'] = slimMeta(raw, false);
  const created = field((raw as Json).metadata as Json, 'creationTimestamp', isString, 'a string', 'metadata');
  // A Date, as the API types have it (V1ObjectMeta), so the slim object is a KubernetesObject.
  if (created !== undefined && !Number.isNaN(Date.parse(created))) metadata.creationTimestamp = new Date(created);
  return { metadata, spec: (raw as Json).spec };
});

/** A deleted object only needs its metadata to leave the cache. */
export const metaOnly = (namespaced: boolean) =>
  slimming((raw): { metadata: SlimMeta } => ({ metadata: slimMeta(raw, namespaced) }));

/** Deep equality of JSON-like values (a Date by its time), for sameSlim. */
function equalValues(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Date || b instanceof Date)
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bs = b as unknown[];
    return a.length === bs.length && a.every((v, i) => equalValues(v, bs[i]));
  }
  const ao = a as Json;
  const bo = b as Json;
  const keys = Object.keys(ao);
  if (keys.length !== Object.keys(bo).length) return false;
  return keys.every((k) => Object.hasOwn(bo, k) && equalValues(ao[k], bo[k]));
}

/**
 * Whether two slim objects say the same thing to the agent: equal in every kept field but the
 * resourceVersion (kubelet's status updates and heartbeats bump it and change only fields the slim
 * object drops).
 */
export function sameSlim(a: { metadata: SlimMeta }, b: { metadata: SlimMeta }): boolean {
  if (a === b) return true;
  const { resourceVersion: _a, ...am } = a.metadata;
  const { resourceVersion: _b, ...bm } = b.metadata;
  if (!equalValues(am, bm)) return false;
  const { metadata: _am, ...ar } = a as unknown as Json;
  const { metadata: _bm, ...br } = b as unknown as Json;
  return equalValues(ar, br);
}
