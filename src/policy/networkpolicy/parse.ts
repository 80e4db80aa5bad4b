// A NetworkPolicy's spec, as the API served it, checked and turned into a ParsedPolicy: effective
// policyTypes (R2), rules with normalised peers (R6, R7, R9) and ports (R10). What the API server
// would never serve (its validation, K3) is reported per policy and treated the safe way (README,
// "NetworkPolicy", bad input):
//   - a rule with any invalid part (peer, selector, ipBlock, port) allows nothing; the policy's other
//     rules still apply. Dropping only the bad peer or port would also be a subset of what the author
//     meant, except for an `except` or a selector requirement, whose loss would widen the match, so
//     the whole rule goes: one simple rule that can never open more than was written;
//   - an invalid podSelector makes the policy select every pod of its namespace, with no rules;
//   - invalid policyTypes, or an ingress/egress that is not a list, isolate both directions (an
//     invalid list contributes no rules).

import { getOrSet } from '../../util/get-or-set.ts';
import { canonicalCidr, cidrInterval, type Interval } from '../cidr.ts';
import type {
  Direction,
  NetworkPolicyObject,
  PeerMeaning,
  PolicyError,
  PolicyRef,
  Protocol,
  Selector,
} from '../types.ts';
import { EVERYTHING, parseSelector } from '../selector.ts';

export type ParsedPort =
  | { protocol: Protocol; kind: 'all' }
  | { protocol: Protocol; kind: 'range'; from: number; to: number }
  | { protocol: Protocol; kind: 'named'; name: string };

export interface ParsedRule {
  index: number;
  /** 'all': any peer (R5). */
  peers: 'all' | readonly PeerMeaning[];
  /** 'all': any port and protocol (R5). */
  ports: 'all' | readonly ParsedPort[];
  /** Invalid: allows nothing. */
  broken: boolean;
}

export interface ParsedPolicy {
  ref: PolicyRef;
  podSelector: Selector;
  /** Effective policyTypes (R2). */
  ingress: boolean;
  egress: boolean;
  ingressRules: readonly ParsedRule[];
  egressRules: readonly ParsedRule[];
  errors: readonly PolicyError[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const absent = (v: unknown): v is undefined | null => v === undefined || v === null;

class RuleProblem extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(message);
    this.path = path;
  }
}

/** IANA_SVC_NAME, as container port names and NetworkPolicy named ports are validated. */
export function isPortName(name: string): boolean {
  return (
    name.length >= 1 &&
    name.length <= 15 &&
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name) &&
    !name.includes('--') &&
    /[a-z]/.test(name)
  );
}

const isPortNumber = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;

function selectorOrThrow(raw: unknown, path: string): Selector {
  const s = parseSelector(raw, path);
  if (!s.ok) throw new RuleProblem(s.path, s.message);
  return s.value;
}

function parseIpBlock(raw: unknown, path: string): PeerMeaning {
  if (!isObject(raw)) throw new RuleProblem(path, 'ipBlock must be an object');
  // The same block as written before (10,000 policies may name one): its meaning, not parsed again.
  const written = blockText(raw);
  const had = written === undefined ? undefined : weakly.get(written)?.deref();
  if (had) return had as BlockMeaning;
  const meaning = parseNewBlock(raw, path);
  if (written !== undefined) remember(written, meaning);
  return meaning;
}

/** A block's text as written (only strings: anything else is parsed, and reported, each time). */
function blockText(raw: Record<string, unknown>): string | undefined {
  const { cidr, except } = raw;
  if (typeof cidr !== 'string') return undefined;
  if (absent(except)) return `w ${cidr}`;
  if (!Array.isArray(except) || !except.every((e) => typeof e === 'string')) return undefined;
  return `w ${cidr} ${except.join(' ')}`;
}

function parseNewBlock(raw: Record<string, unknown>, path: string): BlockMeaning {
  const cidr = typeof raw.cidr === 'string' ? cidrInterval(raw.cidr) : undefined;
  if (!cidr) throw new RuleProblem(`${path}.cidr`, `ipBlock.cidr ${JSON.stringify(raw.cidr)} is not a CIDR`);
  const excepts: Interval[] = [];
  if (!absent(raw.except)) {
    if (!Array.isArray(raw.except)) throw new RuleProblem(`${path}.except`, 'ipBlock.except must be a list of CIDRs');
    raw.except.forEach((text: unknown, i) => {
      const at = `${path}.except[${i}]`;
      const e = typeof text === 'string' ? cidrInterval(text) : undefined;
      if (!e) throw new RuleProblem(at, `except ${JSON.stringify(text)} is not a CIDR`);
      // K3 ValidateIPBlock: every except is a strict subset of the cidr (same family).
      if (
        e.family !== cidr.family ||
        e.first < cidr.first ||
        e.last > cidr.last ||
        (e.first === cidr.first && e.last === cidr.last)
      ) {
        throw new RuleProblem(at, `except ${text} is not strictly inside cidr ${String(raw.cidr)}`);
      }
      excepts.push(e);
    });
  }
  // Canonical excepts: duplicates and those inside another except add nothing.
  const unique = [...new Map(excepts.map((e) => [canonicalCidr(e), e])).values()];
  const kept = unique
    .filter((e) => !unique.some((o) => o !== e && o.first <= e.first && e.last <= o.last))
    .map(canonicalCidr)
    .sort();
  return sharedBlock(cidr.family, canonicalCidr(cidr), kept);
}

function parsePeer(raw: unknown, path: string, policyNamespace: string): PeerMeaning {
  if (!isObject(raw)) throw new RuleProblem(path, 'a peer must be an object');
  const hasPods = !absent(raw.podSelector);
  const hasNs = !absent(raw.namespaceSelector);
  const hasBlock = !absent(raw.ipBlock);
  if (!hasPods && !hasNs && !hasBlock)
    throw new RuleProblem(path, 'a peer must set podSelector, namespaceSelector or ipBlock');
  if (hasBlock) {
    if (hasPods || hasNs)
      throw new RuleProblem(path, 'ipBlock cannot be combined with podSelector or namespaceSelector');
    return parseIpBlock(raw.ipBlock, `${path}.ipBlock`);
  }
  // R6: no namespaceSelector: the policy's namespace; no podSelector next to a namespaceSelector: all
  // pods of the matching namespaces.
  const podSelector = hasPods ? selectorOrThrow(raw.podSelector, `${path}.podSelector`) : EVERYTHING;
  if (!hasNs) return sharedPodsIn(policyNamespace, podSelector);
  return sharedPodsOf(selectorOrThrow(raw.namespaceSelector, `${path}.namespaceSelector`), podSelector);
}

function parsePort(raw: unknown, path: string): ParsedPort {
  if (!isObject(raw)) throw new RuleProblem(path, 'a port must be an object');
  let protocol: Protocol = 'TCP'; // R10: the API defaults the protocol to TCP.
  if (!absent(raw.protocol)) {
    if (raw.protocol !== 'TCP' && raw.protocol !== 'UDP' && raw.protocol !== 'SCTP') {
      throw new RuleProblem(`${path}.protocol`, `unknown protocol ${JSON.stringify(raw.protocol)} (TCP, UDP, SCTP)`);
    }
    protocol = raw.protocol;
  }
  const port = raw.port;
  const endPort = raw.endPort;
  if (absent(port)) {
    if (!absent(endPort)) throw new RuleProblem(`${path}.endPort`, 'endPort needs a numeric port');
    return sharedPort(protocol, 'all', 0, 0, '');
  }
  if (typeof port === 'string') {
    if (!isPortName(port))
      throw new RuleProblem(`${path}.port`, `${JSON.stringify(port)} is neither a port number nor a valid port name`);
    if (!absent(endPort)) throw new RuleProblem(`${path}.endPort`, 'endPort cannot be used with a named port');
    return sharedPort(protocol, 'named', 0, 0, port);
  }
  if (!isPortNumber(port)) throw new RuleProblem(`${path}.port`, `port ${JSON.stringify(port)} is not in 1-65535`);
  if (absent(endPort)) return sharedPort(protocol, 'range', port, port, '');
  if (!isPortNumber(endPort))
    throw new RuleProblem(`${path}.endPort`, `endPort ${JSON.stringify(endPort)} is not in 1-65535`);
  if (endPort < port) throw new RuleProblem(`${path}.endPort`, `endPort ${endPort} is less than port ${port}`);
  return sharedPort(protocol, 'range', port, endPort, '');
}

function parseRule(
  raw: unknown,
  direction: Direction,
  index: number,
  policyNamespace: string,
  errors: (path: string, message: string) => void,
): ParsedRule {
  const path = `spec.${direction}[${index}]`;
  const peersField = direction === 'ingress' ? 'from' : 'to';
  try {
    if (!isObject(raw)) throw new RuleProblem(path, 'a rule must be an object');
    const rawPeers = raw[peersField];
    let peers: ParsedRule['peers'] = 'all';
    if (!absent(rawPeers)) {
      if (!Array.isArray(rawPeers)) throw new RuleProblem(`${path}.${peersField}`, `${peersField} must be a list`);
      if (rawPeers.length > 0)
        peers = rawPeers.map((p: unknown, i) => parsePeer(p, `${path}.${peersField}[${i}]`, policyNamespace));
    }
    const rawPorts = raw.ports;
    let ports: ParsedRule['ports'] = 'all';
    if (!absent(rawPorts)) {
      if (!Array.isArray(rawPorts)) throw new RuleProblem(`${path}.ports`, 'ports must be a list');
      if (rawPorts.length > 0) ports = rawPorts.map((p: unknown, i) => parsePort(p, `${path}.ports[${i}]`));
    }
    return { index, peers, ports, broken: false };
  } catch (err) {
    if (!(err instanceof RuleProblem)) throw err;
    errors(err.path, `${err.message}: rule ${direction}[${index}] allows nothing`);
    return { index, peers: [], ports: [], broken: true };
  }
}

const NO_ERRORS: readonly PolicyError[] = Object.freeze([]);

// Equal peers and ports are one frozen object while a policy holds them (selectors are already,
// selector.ts): 10,000 policies of a few shapes held ~1.2 KB each parsed, 12 MiB at 50,000 pods,
// which the agent now holds from the policies' list on (prepared ahead of the pods). Pods peers are
// found by their interned selectors and namespace, no text built; ipBlocks and ports by a short key,
// held weakly.
type PodsMeaning = Extract<PeerMeaning, { kind: 'pods' }>;
type BlockMeaning = Extract<PeerMeaning, { kind: 'ipBlock' }>;
const podsIn = new WeakMap<Selector, Map<string, PodsMeaning>>();
const podsOf = new WeakMap<Selector, WeakMap<Selector, PodsMeaning>>();

function sharedPodsIn(namespace: string, podSelector: Selector): PodsMeaning {
  const byNs = getOrSet(podsIn, podSelector, () => new Map<string, PodsMeaning>());
  return getOrSet(byNs, namespace, () => Object.freeze({ kind: 'pods', namespace, podSelector }));
}

function sharedPodsOf(namespaceSelector: Selector, podSelector: Selector): PodsMeaning {
  const byPods = getOrSet(podsOf, namespaceSelector, () => new WeakMap<Selector, PodsMeaning>());
  return getOrSet(byPods, podSelector, () => Object.freeze({ kind: 'pods', namespaceSelector, podSelector }));
}

const weakly = new Map<string, WeakRef<object>>();
const forget = new FinalizationRegistry<string>((key) => {
  if (weakly.get(key)?.deref() === undefined) weakly.delete(key);
});

function shared<T extends object>(key: string, make: () => T): T {
  const had = weakly.get(key)?.deref();
  if (had) return had as T;
  return remember(key, Object.freeze(make()));
}

function remember<T extends object>(key: string, value: T): T {
  weakly.set(key, new WeakRef(value));
  forget.register(value, key);
  return value;
}

function sharedBlock(family: BlockMeaning['family'], cidr: string, except: string[]): BlockMeaning {
  return shared(`b ${cidr} ${except.join(' ')}`, () => ({
    kind: 'ipBlock' as const,
    family,
    cidr,
    except: Object.freeze(except),
  }));
}

function sharedPort(protocol: Protocol, kind: ParsedPort['kind'], from: number, to: number, name: string): ParsedPort {
  return shared(`p ${protocol} ${kind} ${from} ${to} ${name}`, (): ParsedPort => {
    if (kind === 'all') return { protocol, kind };
    if (kind === 'named') return { protocol, kind, name };
    return { protocol, kind, from, to };
  });
}

const cache = new WeakMap<NetworkPolicyObject, ParsedPolicy>();

/** Parses one policy; memoised on the object, which the informer replaces on every change. */
export function parsePolicy(policy: NetworkPolicyObject): ParsedPolicy {
  const hit = cache.get(policy);
  if (hit) return hit;
  const parsed = parseUncached(policy);
  cache.set(policy, parsed);
  return parsed;
}

/** Whether parsePolicy has this very object memoised (the agent's tests: parsed ahead of sync). */
export function parsedAlready(policy: NetworkPolicyObject): boolean {
  return cache.has(policy);
}

function parseUncached(policy: NetworkPolicyObject): ParsedPolicy {
  const ref: PolicyRef = { namespace: policy.metadata.namespace ?? '', name: policy.metadata.name };
  const errors: PolicyError[] = [];
  const report = (path: string, message: string) => errors.push({ ...ref, path, message });
  const spec: Record<string, unknown> = isObject(policy.spec) ? policy.spec : {};
  if (!isObject(policy.spec)) report('spec', 'spec is not an object');

  let podSelector: Selector = EVERYTHING;
  let selectorOk = true;
  if (!absent(spec.podSelector)) {
    const s = parseSelector(spec.podSelector, 'spec.podSelector');
    if (s.ok) podSelector = s.value;
    else {
      selectorOk = false;
      report(s.path, `${s.message}: the policy isolates every pod of namespace ${ref.namespace} and allows nothing`);
    }
  }

  const list = (direction: Direction): { rules: unknown[]; ok: boolean } => {
    const v = spec[direction];
    if (absent(v)) return { rules: [], ok: true };
    if (!Array.isArray(v)) {
      report(`spec.${direction}`, `${direction} must be a list: it allows nothing`);
      return { rules: [], ok: false };
    }
    return { rules: v, ok: true };
  };
  const ingressList = list('ingress');
  const egressList = list('egress');

  // R2: explicit policyTypes win; otherwise Ingress, plus Egress iff egress has rules.
  let ingress = true;
  let egress = egressList.rules.length > 0 || !egressList.ok;
  const types = spec.policyTypes;
  if (!absent(types)) {
    if (!Array.isArray(types) || !types.every((t) => t === 'Ingress' || t === 'Egress')) {
      report(
        'spec.policyTypes',
        `policyTypes ${JSON.stringify(types)} is not a list of Ingress and Egress: the policy isolates both directions`,
      );
      ingress = true;
      egress = true;
    } else if (types.length > 0) {
      ingress = types.includes('Ingress');
      egress = types.includes('Egress');
    }
  }

  const rules = (direction: Direction, raw: unknown[]): ParsedRule[] =>
    selectorOk ? raw.map((r, i) => parseRule(r, direction, i, ref.namespace, report)) : [];
  return {
    ref,
    podSelector,
    ingress,
    egress,
    ingressRules: ingress ? rules('ingress', ingressList.rules) : [],
    egressRules: egress ? rules('egress', egressList.rules) : [],
    errors: errors.length === 0 ? NO_ERRORS : errors,
  };
}
