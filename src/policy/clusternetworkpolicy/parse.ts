// A ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2, network-policy-api v0.2.0) as the API
// served it, checked the way its CRD validates it (standard channel, plus the experimental `nodes`
// peer) and turned into a ParsedClusterPolicy. What the API server would refuse but a CNP can still
// carry (a webhook off, an old or newer CRD) is reported with the policy, field and reason, and
// handled fail closed as the API says for a peer it cannot honour (ClusterNetworkPolicyIngressPeer):
//   - a rule with any bad part (peer, selector, CIDR, protocol, port, name), an unknown or empty
//     peer, or a `domainNames` peer (out of scope): an Accept rule matches nothing; a Deny or Pass
//     rule denies everything (every peer, every port), at its own place in its own tier;
//   - a bad action: the rule denies everything (it might have been a Deny);
//   - a bad tier, priority or subject, or more than 25 rules: every rule of the policy fails closed
//     that way; a bad tier places it in Admin (so its denies hold), a bad priority at 0 (first), a
//     bad subject selects every pod-network pod (as an invalid NetworkPolicy podSelector does);
//   - an ingress or egress that is not a list: that direction gets one deny-everything rule.
import { canonicalCidr, cidrInterval } from '../cidr.ts';
import { EVERYTHING, parseSelector } from '../selector.ts';
import type {
  ClusterNetworkPolicyObject,
  Direction,
  PeerMeaning,
  PolicyError,
  PolicyRef,
  Protocol,
  RuleAction,
  Selector,
} from '../types.ts';

export type ClusterTier = 'admin' | 'baseline';

export type ParsedClusterPort =
  | { kind: 'range'; protocol: Protocol; from: number; to: number }
  | { kind: 'named'; name: string };

export interface ParsedClusterRule {
  index: number;
  /** The rule's `name` ('' when absent). */
  name: string;
  action: RuleAction;
  /** 'all': every address (only a fail-closed deny has it: the API requires peers). */
  peers: 'all' | readonly PeerMeaning[];
  /** 'all': every protocol and port (protocols absent). */
  ports: 'all' | readonly ParsedClusterPort[];
  /** Failed closed: an Accept that matches nothing (peers and ports empty). */
  broken: boolean;
}

export type ClusterSubject =
  | { kind: 'namespaces'; namespaces: Selector }
  | { kind: 'pods'; namespaces: Selector; pods: Selector }
  /** A bad subject: every pod-network pod (its rules all fail closed). */
  | { kind: 'every-pod' };

export interface ParsedClusterPolicy {
  ref: PolicyRef;
  tier: ClusterTier;
  priority: number;
  subject: ClusterSubject;
  ingress: readonly ParsedClusterRule[];
  egress: readonly ParsedClusterRule[];
  /** Fields this implementation does not honour (`domainNames`), for the log, metrics and status. */
  unsupported: readonly string[];
  errors: readonly PolicyError[];
}

export const MAX_RULES = 25;
export const MAX_PEERS = 25;
export const MAX_PRIORITY = 1000;
const MAX_RULE_NAME = 100;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const absent = (v: unknown): v is undefined | null => v === undefined || v === null;

class RuleProblem extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(message);
    this.path = path;
  }
}

const ACTIONS: Record<string, RuleAction> = { Accept: 'accept', Deny: 'drop', Pass: 'pass' };
const PROTOCOL_FIELDS = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP' } as const;
const PROTOCOL_KEYS = ['tcp', 'udp', 'sctp', 'destinationNamedPort'];

function selectorOrThrow(raw: unknown, path: string): Selector {
  const s = parseSelector(raw, path);
  if (!s.ok) throw new RuleProblem(s.path, s.message);
  return s.value;
}

/** The one set field of an object the CRD gives MinProperties=1, MaxProperties=1. */
function onlyField(raw: unknown, path: string, what: string): string {
  if (!isObject(raw)) throw new RuleProblem(path, `${what} must be an object`);
  const set = Object.keys(raw).filter((k) => !absent(raw[k]));
  if (set.length !== 1) {
    const which = set.length === 0 ? 'none' : set.join(', ');
    throw new RuleProblem(path, `${what} must set exactly one field (has ${which})`);
  }
  return set[0] as string;
}

function parseNamespacedPod(raw: unknown, path: string): { namespaces: Selector; pods: Selector } {
  if (!isObject(raw)) throw new RuleProblem(path, 'pods must be an object');
  if (absent(raw.podSelector)) throw new RuleProblem(`${path}.podSelector`, 'pods.podSelector is required');
  const namespaces = absent(raw.namespaceSelector)
    ? EVERYTHING
    : selectorOrThrow(raw.namespaceSelector, `${path}.namespaceSelector`);
  return { namespaces, pods: selectorOrThrow(raw.podSelector, `${path}.podSelector`) };
}

function parseNetwork(raw: unknown, path: string): PeerMeaning {
  // The CRD: a string of at most 43 characters that isCIDR accepts (host bits may be set).
  const iv = typeof raw === 'string' && raw.length <= 43 && raw.includes('/') ? cidrInterval(raw) : undefined;
  if (!iv) throw new RuleProblem(path, `${JSON.stringify(raw)} is not a CIDR`);
  return { kind: 'ipBlock', family: iv.family, cidr: canonicalCidr(iv), except: [] };
}

/** A peer's meanings (networks may give several); `unsupported` collects out-of-scope fields. */
function parsePeer(raw: unknown, path: string, direction: Direction, unsupported: Set<string>): PeerMeaning[] {
  const field = onlyField(raw, path, 'a peer');
  const value = (raw as Record<string, unknown>)[field];
  const at = `${path}.${field}`;
  if (field === 'namespaces')
    return [{ kind: 'pods', namespaceSelector: selectorOrThrow(value, at), podSelector: EVERYTHING }];
  if (field === 'pods') {
    const { namespaces, pods } = parseNamespacedPod(value, at);
    return [{ kind: 'pods', namespaceSelector: namespaces, podSelector: pods }];
  }
  if (direction === 'egress' && field === 'networks') {
    if (!Array.isArray(value) || value.length < 1 || value.length > MAX_PEERS) {
      throw new RuleProblem(at, `networks must be a list of 1 to ${MAX_PEERS} CIDRs`);
    }
    return value.map((n: unknown, i) => parseNetwork(n, `${at}[${i}]`));
  }
  if (direction === 'egress' && field === 'nodes') return [{ kind: 'nodes', nodeSelector: selectorOrThrow(value, at) }];
  if (direction === 'egress' && field === 'domainNames') {
    unsupported.add(at);
    throw new RuleProblem(at, 'domainNames peers are not supported');
  }
  throw new RuleProblem(at, `unknown ${direction} peer field ${JSON.stringify(field)}`);
}

function parsePortNumber(raw: unknown, path: string): { from: number; to: number } {
  const field = onlyField(raw, path, 'destinationPort');
  const value = (raw as Record<string, unknown>)[field];
  const valid = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
  if (field === 'number') {
    if (!valid(value)) throw new RuleProblem(`${path}.number`, `port ${JSON.stringify(value)} is not in 1-65535`);
    return { from: value, to: value };
  }
  if (field === 'range') {
    if (!isObject(value)) throw new RuleProblem(`${path}.range`, 'range must be an object');
    const { start, end } = value;
    if (!valid(start)) throw new RuleProblem(`${path}.range.start`, `start ${JSON.stringify(start)} is not in 1-65535`);
    if (!valid(end)) throw new RuleProblem(`${path}.range.end`, `end ${JSON.stringify(end)} is not in 1-65535`);
    if (!(start < end)) throw new RuleProblem(`${path}.range`, `start ${start} must be less than end ${end}`);
    return { from: start, to: end };
  }
  throw new RuleProblem(`${path}.${field}`, `unknown destinationPort field ${JSON.stringify(field)}`);
}

function parseProtocol(raw: unknown, path: string): ParsedClusterPort {
  const field = onlyField(raw, path, 'a protocol');
  const value = (raw as Record<string, unknown>)[field];
  if (field === 'destinationNamedPort') {
    if (typeof value !== 'string' || value === '')
      throw new RuleProblem(`${path}.${field}`, 'a named port must be a non-empty string');
    return { kind: 'named', name: value };
  }
  if (!PROTOCOL_KEYS.includes(field))
    throw new RuleProblem(`${path}.${field}`, `unknown protocol field ${JSON.stringify(field)}`);
  const protocol = PROTOCOL_FIELDS[field as keyof typeof PROTOCOL_FIELDS];
  const at = `${path}.${field}`;
  // MinProperties=1: `tcp: {}` is refused.
  if (!isObject(value) || absent(value.destinationPort)) throw new RuleProblem(at, `${field} must set destinationPort`);
  return { kind: 'range', protocol, ...parsePortNumber(value.destinationPort, `${at}.destinationPort`) };
}

/** A rule that failed closed with this action: Accept matches nothing, Deny and Pass deny everything. */
export function failClosed(index: number, name: string, action: RuleAction | undefined): ParsedClusterRule {
  if (action === 'accept') return { index, name, action, peers: [], ports: [], broken: true };
  return { index, name, action: 'drop', peers: 'all', ports: 'all', broken: false };
}

function parseRule(
  raw: unknown,
  direction: Direction,
  index: number,
  report: (path: string, message: string) => void,
  unsupported: Set<string>,
): ParsedClusterRule {
  const path = `spec.${direction}[${index}]`;
  const rule = isObject(raw) ? raw : {};
  const name = typeof rule.name === 'string' ? rule.name : '';
  const action = typeof rule.action === 'string' ? ACTIONS[rule.action] : undefined;
  try {
    if (!isObject(raw)) throw new RuleProblem(path, 'a rule must be an object');
    if (action === undefined)
      throw new RuleProblem(`${path}.action`, `action ${JSON.stringify(raw.action)} is not Accept, Deny or Pass`);
    if (!absent(raw.name) && (typeof raw.name !== 'string' || raw.name.length > MAX_RULE_NAME)) {
      throw new RuleProblem(`${path}.name`, `a rule name must be a string of at most ${MAX_RULE_NAME} characters`);
    }
    const peersField = direction === 'ingress' ? 'from' : 'to';
    const rawPeers = raw[peersField];
    if (!Array.isArray(rawPeers) || rawPeers.length < 1 || rawPeers.length > MAX_PEERS) {
      throw new RuleProblem(`${path}.${peersField}`, `${peersField} must be a list of 1 to ${MAX_PEERS} peers`);
    }
    const peers = rawPeers.flatMap((p: unknown, i) =>
      parsePeer(p, `${path}.${peersField}[${i}]`, direction, unsupported),
    );
    let ports: ParsedClusterRule['ports'] = 'all';
    if (!absent(raw.protocols)) {
      if (!Array.isArray(raw.protocols) || raw.protocols.length < 1 || raw.protocols.length > MAX_PEERS) {
        throw new RuleProblem(`${path}.protocols`, `protocols must be a list of 1 to ${MAX_PEERS} entries`);
      }
      ports = raw.protocols.map((p: unknown, i) => parseProtocol(p, `${path}.protocols[${i}]`));
      // The experimental CRD's rule: networks and nodes have no named ports.
      if (ports.some((p) => p.kind === 'named') && peers.some((p) => p.kind !== 'pods')) {
        throw new RuleProblem(`${path}.protocols`, 'a named port cannot be used with networks or nodes peers');
      }
    }
    return { index, name, action, peers, ports, broken: false };
  } catch (err) {
    if (!(err instanceof RuleProblem)) throw err;
    const outcome = action === 'accept' ? 'matches nothing' : 'denies everything';
    report(err.path, `${err.message}: rule ${direction}[${index}] fails closed (${outcome})`);
    return failClosed(index, name, action);
  }
}

function parseSubject(raw: unknown): ClusterSubject {
  const field = onlyField(raw, 'spec.subject', 'the subject');
  const value = (raw as Record<string, unknown>)[field];
  if (field === 'namespaces')
    return { kind: 'namespaces', namespaces: selectorOrThrow(value, 'spec.subject.namespaces') };
  if (field === 'pods') return { kind: 'pods', ...parseNamespacedPod(value, 'spec.subject.pods') };
  throw new RuleProblem(`spec.subject.${field}`, `unknown subject field ${JSON.stringify(field)}`);
}

const cache = new WeakMap<ClusterNetworkPolicyObject, ParsedClusterPolicy>();

/** Parses one policy; memoised on the object, which the informer replaces on every change. Never throws. */
export function parseClusterPolicy(policy: ClusterNetworkPolicyObject): ParsedClusterPolicy {
  const hit = cache.get(policy);
  if (hit) return hit;
  const parsed = parseUncached(policy);
  cache.set(policy, parsed);
  return parsed;
}

function parseUncached(policy: ClusterNetworkPolicyObject): ParsedClusterPolicy {
  const ref: PolicyRef = { namespace: '', name: policy.metadata.name };
  const errors: PolicyError[] = [];
  const report = (path: string, message: string) => errors.push({ ...ref, path, message });
  const spec: Record<string, unknown> = isObject(policy.spec) ? policy.spec : {};
  if (!isObject(policy.spec)) report('spec', 'spec is not an object');
  let closed = false; // a policy-level problem: every rule fails closed
  const policyProblem = (path: string, message: string) => {
    closed = true;
    report(path, `${message}: every rule of the policy fails closed`);
  };

  let tier: ClusterTier = 'admin';
  if (spec.tier === 'Baseline') tier = 'baseline';
  else if (spec.tier !== 'Admin')
    policyProblem('spec.tier', `tier ${JSON.stringify(spec.tier)} is not Admin or Baseline (placed in Admin)`);

  let priority = 0;
  const p = spec.priority;
  if (typeof p === 'number' && Number.isInteger(p) && p >= 0 && p <= MAX_PRIORITY) priority = p;
  else
    policyProblem('spec.priority', `priority ${JSON.stringify(p)} is not an integer in 0-${MAX_PRIORITY} (taken as 0)`);

  let subject: ClusterSubject = { kind: 'every-pod' };
  try {
    subject = parseSubject(spec.subject);
  } catch (err) {
    if (!(err instanceof RuleProblem)) throw err;
    policyProblem(err.path, `${err.message} (the policy selects every pod)`);
  }

  const lists: Partial<Record<Direction, unknown[] | 'invalid'>> = {};
  for (const direction of ['ingress', 'egress'] as const) {
    const v = spec[direction];
    if (absent(v)) continue;
    if (!Array.isArray(v)) {
      report(`spec.${direction}`, `${direction} must be a list: the direction denies everything`);
      lists[direction] = 'invalid';
    } else {
      if (v.length > MAX_RULES)
        policyProblem(`spec.${direction}`, `${direction} has ${v.length} rules, more than ${MAX_RULES}`);
      lists[direction] = v;
    }
  }
  const unsupported = new Set<string>();
  const rules = (direction: Direction): ParsedClusterRule[] => {
    const list = lists[direction];
    if (list === undefined) return [];
    if (list === 'invalid') return [failClosed(0, '', undefined)];
    const parsed = list.map((r, i) => parseRule(r, direction, i, report, unsupported));
    return closed
      ? parsed.map((r) => (r.broken ? r : failClosed(r.index, r.name, r.action === 'accept' ? 'accept' : 'drop')))
      : parsed;
  };
  const ingress = rules('ingress');
  const egress = rules('egress');
  return { ref, tier, priority, subject, ingress, egress, unsupported: [...unsupported].sort(), errors };
}
