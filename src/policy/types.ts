// The policy layer's shared vocabulary: the compiler's input (its own types, structural subsets of
// the Kubernetes layer's slim cache objects, so a caller passes its cache objects as they are), the
// compiled model, packets and verdicts, and the rendered nftables objects. Types only: every module
// of src/policy imports what it needs from here; callers outside use the public entry, index.ts.
//
// Pure throughout: no kernel, no I/O, never throws on what the API serves (or fails to serve).
// Semantics follow networking.k8s.io/v1 as written down in the team's netpol-semantics.md (rules
// R1–R18 are named where they decide something); the open choices are listed in README.md,
// "NetworkPolicy".
import type { Chain, Element, NftMap, NftSet, Rule } from '../nft/objects.ts';
import type { Expr } from '../nft/expr.ts';

export type Direction = 'ingress' | 'egress';
export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

/**
 * What a compiled rule does to a packet it matches: accept it (no later tier is asked), drop it, or
 * pass it on to the next tier (ClusterNetworkPolicy's `Pass`). NetworkPolicy's rules all accept; an
 * isolated pod's traffic that none matches is dropped by its tier's fall-through.
 */
export type RuleAction = 'accept' | 'drop' | 'pass';

/** The tiers of the pipeline (pipeline.ts orders them); a new kind of policy adds its name here.
 * `admin` and `baseline` are ClusterNetworkPolicy's tiers, before and after NetworkPolicy. */
export type TierName = 'admin' | 'networkpolicy' | 'baseline';

export interface PodRef {
  namespace: string;
  name: string;
}

/** A policy: a NetworkPolicy by namespace and name; a ClusterNetworkPolicy (cluster-scoped) has
 * namespace ''. */
export interface PolicyRef {
  namespace: string;
  name: string;
}

/** One rule of one policy: `spec.<direction>[index]`. */
export interface RuleRef extends PolicyRef {
  direction: Direction;
  index: number;
  /** A ClusterNetworkPolicy rule's `name` (absent when the rule has none, and for NetworkPolicy). */
  ruleName?: string;
}

// ---- input ------------------------------------------------------------------------------------------

/** The metadata the compiler reads of any object. */
export interface PolicyObjectMeta {
  name: string;
  namespace?: string;
  labels?: Readonly<Record<string, string>>;
}

/** A container port as a pod declares it (named ports resolve against these, R10). */
export interface PolicyPodPort {
  name?: string;
  containerPort: number;
  /** The API's text ('TCP' when absent); anything else matches no named port. */
  protocol: string;
}

/** What the compiler reads of a Pod. */
export interface PolicyPod {
  metadata: PolicyObjectMeta;
  spec: {
    nodeName?: string;
    hostNetwork?: boolean;
    containers: readonly { ports: readonly PolicyPodPort[] }[];
  };
  status: {
    phase?: string;
    podIPs: readonly { ip: string }[];
  };
}

/** What the compiler reads of a Namespace. */
export interface PolicyNamespace {
  metadata: PolicyObjectMeta;
}

/** A NetworkPolicy as the API served it: the spec unchecked (the NetworkPolicy tier's parser checks it). */
export interface NetworkPolicyObject {
  metadata: PolicyObjectMeta;
  spec: unknown;
}

/** A ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2) as the API served it: the spec
 * unchecked (the ClusterNetworkPolicy tiers' parser checks it). */
export interface ClusterNetworkPolicyObject {
  metadata: PolicyObjectMeta;
  spec: unknown;
}

/** What the compiler reads of a Node: its labels (metadata) and addresses, for `nodes` peers. */
export interface PolicyNode {
  metadata: PolicyObjectMeta;
  status?: { addresses?: readonly { type?: string; address: string }[] };
}

export interface CompileInput {
  /** This node's name: pods with `spec.nodeName` equal to it are the ones the compiler isolates. */
  nodeName: string;
  /**
   * Every address of this node (InternalIP, ExternalIP, the bridge's gateway address…): traffic from
   * them to a local pod is allowed (R11), and so is a local pod's traffic to them.
   */
  nodeAddresses: readonly string[];
  namespaces: readonly PolicyNamespace[];
  pods: readonly PolicyPod[];
  policies: readonly NetworkPolicyObject[];
  /** ClusterNetworkPolicies (both tiers); absent: none (the CRD is not installed). */
  clusterNetworkPolicies?: readonly ClusterNetworkPolicyObject[];
  /** The cluster's nodes, for ClusterNetworkPolicy `nodes` peers; absent: none. */
  nodes?: readonly PolicyNode[];
  /**
   * Addresses of local pods the API does not show yet, keyed "namespace/name" (from the plugin's
   * pod-start notice): a pod is isolated from the moment its ADD returns, before the kubelet reports
   * its IPs (R16). Merged with the pod's status IPs.
   */
  extraPodIps?: ReadonlyMap<string, readonly string[]>;
}

// ---- compiled model ---------------------------------------------------------------------------------

/** One requirement of a normalised label selector (matchLabels k=v becomes k In [v]). */
export interface Requirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  /** Sorted, without duplicates; empty for Exists/DoesNotExist. */
  values: readonly string[];
}

/** A normalised label selector: requirements sorted by key, operator and values; none = everything. */
export interface Selector {
  requirements: readonly Requirement[];
}

/** What a peer means, independent of which policy wrote it; its canonical JSON is hashed into the id. */
export type PeerMeaning =
  /** Pods (never host-network ones, R17) in one namespace (`namespace`) or in the namespaces that
   * `namespaceSelector` matches, whose labels `podSelector` matches (R6). */
  | { kind: 'pods'; namespace?: string; namespaceSelector?: Selector; podSelector: Selector }
  /** Addresses in cidr and in none of except (R9); cidr and except in canonical text, host bits cleared. */
  | { kind: 'ipBlock'; family: 4 | 6; cidr: string; except: readonly string[] }
  /** The addresses (status.addresses) of the nodes whose labels `nodeSelector` matches
   * (ClusterNetworkPolicy's experimental `nodes` peer). */
  | { kind: 'nodes'; nodeSelector: Selector };

export interface PeerSet {
  /** Stable: a hash of the meaning, so a label change changes members, never the id. */
  id: string;
  meaning: PeerMeaning;
  /** For pods and nodes peers: the matching pods' (nodes') addresses, canonical text, sorted. */
  v4: readonly string[];
  v6: readonly string[];
  /** For ipBlock peers: the covered addresses as canonical prefixes (except subtracted), sorted. */
  intervals: readonly string[];
}

/** A named port of an egress rule, to be resolved on each destination pod (R10). */
export interface NamedPort {
  protocol: Protocol;
  name: string;
}

/** (destination address, protocol, port) triples for egress named ports (R10): for each pod the peer
 * (or every pod, when the rule has no peers) matches, its container ports with one of the names. */
export interface NamedPortSet {
  id: string;
  /** The peer whose pods resolve the names; undefined: every pod-network pod of the cluster. */
  peer?: string;
  ports: readonly NamedPort[];
  v4: readonly NamedPortElement[];
  v6: readonly NamedPortElement[];
}

export interface NamedPortElement {
  address: string;
  protocol: Protocol;
  port: number;
}

/** Destination ports `from`..`to` inclusive of one protocol (a single port has from === to). */
export interface PortRange {
  protocol: Protocol;
  from: number;
  to: number;
}

export interface CompiledRule {
  source: RuleRef;
  /** The tier the rule belongs to, and its place in the evaluation: tiers by order, then rules by
   * priority (lower first; NetworkPolicy's rules are all 0, their order is irrelevant, R4). */
  tier: TierName;
  priority: number;
  action: RuleAction;
  /** 'all': every peer, external addresses included (from/to absent or empty, R5); else peer ids (OR). */
  peers: 'all' | readonly string[];
  /** 'all': every port of every protocol (ports absent or empty, R5); else numeric ranges (OR). For
   * ingress, named ports are already resolved against the local pod (a name it lacks adds nothing). */
  ports: 'all' | readonly PortRange[];
  /** Egress named ports: ids of NamedPortSets (OR with the numeric part). Empty for ingress. */
  namedPorts: readonly string[];
  /** The rule had invalid parts: it allows nothing (its policy's errors say why). */
  broken?: true;
}

export interface PodDirection {
  /** The policies that select the pod with this policy type (R3), sorted. */
  isolatedBy: readonly PolicyRef[];
  /** Their rules in policy order, then rule order (order is irrelevant to the verdict, R4). */
  rules: readonly CompiledRule[];
}

/** A tier's rules for a pod, per direction (absent: the tier has nothing for it that way). */
export type TierRules = Partial<Record<Direction, PodDirection>>;

export interface LocalPod extends PodRef {
  /** Canonical addresses, sorted. */
  ips: readonly string[];
  /** NetworkPolicy. undefined: not isolated for ingress (R4, all allowed). */
  ingress?: PodDirection;
  /** NetworkPolicy. undefined: not isolated for egress. */
  egress?: PodDirection;
  /** ClusterNetworkPolicy's Admin tier: the rules of the policies whose subject is this pod, in
   * evaluation order (isolatedBy: those policies). */
  admin?: TierRules;
  /** ClusterNetworkPolicy's Baseline tier, the same way. */
  baseline?: TierRules;
}

export interface PolicyError extends PolicyRef {
  /** Where in the object, e.g. `spec.ingress[0].from[1].ipBlock.except[0]`. */
  path: string;
  message: string;
}

export interface CompiledPolicy {
  nodeName: string;
  /** Canonical, sorted. */
  nodeAddresses: readonly string[];
  /** This node's pod-network pods with addresses (host-network and finished pods are not), sorted by
   * namespace and name. */
  pods: readonly LocalPod[];
  /** Every peer a local pod's rule names, by id. */
  peers: ReadonlyMap<string, PeerSet>;
  namedPorts: ReadonlyMap<string, NamedPortSet>;
  /** Per policy, what was wrong with it (bad input: logged by the agent, the policy applied safely). */
  errors: readonly PolicyError[];
  /** Things that are not the policies' fault but were resolved one way (e.g. two local pods with one
   * address), for the log. */
  warnings: readonly string[];
}

// ---- packets and verdicts ---------------------------------------------------------------------------

/** The first packet of a connection (after Service DNAT: the real destination, R9). */
export interface Packet {
  src: string;
  dst: string;
  protocol: Protocol;
  dport: number;
}

export type DirectionReason =
  | 'not-local' // the pod at this end is not one of this node's pods (its own node judges it)
  | 'not-isolated' // no policy isolates it in this direction (R4)
  | 'node' // ingress from this node, or egress to this node (R11)
  | 'self' // a pod's traffic to itself (R12)
  | 'allowed' // some rule allows it (rules lists them all)
  | 'denied'; // isolated and no rule allows it (isolatedBy lists the isolating policies)

export interface DirectionVerdict {
  allowed: boolean;
  reason: DirectionReason;
  pod?: PodRef;
  /** For 'allowed': every rule that allows the packet. */
  rules: readonly RuleRef[];
  /** For 'allowed' and 'denied': the policies that isolate the pod in this direction. */
  isolatedBy: readonly PolicyRef[];
  /**
   * The tiers that had something to say, in order, when a ClusterNetworkPolicy tier was among them
   * (absent otherwise, so NetworkPolicy-only verdicts read as before): each passed on but the last,
   * which decided (unless the default allowed, reason 'not-isolated').
   */
  steps?: readonly TierStep[];
}

/** What one tier did with a packet in one direction (for `strand explain`). */
export interface TierStep {
  tier: TierName;
  /** The tier's rule that matched first (absent: none matched, the tier's fall-through applied). */
  rule?: RuleRef;
  /** Its policy's priority (ClusterNetworkPolicy), 0 for NetworkPolicy. */
  priority?: number;
  /** What the tier did: accept or drop decided; pass went on to the next tier. */
  action: RuleAction;
}

export interface Verdict {
  /** Both directions allow (R1). */
  allowed: boolean;
  egress: DirectionVerdict;
  ingress: DirectionVerdict;
}

// ---- rendered nftables objects ----------------------------------------------------------------------

/** Who a per-pod chain belongs to, and what a rule comment stands for, for counters and explain. */
export interface ChainOwner {
  pod: PodRef;
  direction: Direction;
}

/** What an allow rule's comment (`<ns>/<name> <direction> <index>`, or a hash form when too long)
 * stands for; deny rules have the comment DENY_COMMENT, self rules SELF_COMMENT. */
export type CommentMeaning =
  | { verdict: 'allow'; rule: RuleRef }
  | { verdict: 'deny' }
  | { verdict: 'self' }
  | { verdict: 'log' }
  /** A ClusterNetworkPolicy rule (`cnp/<name> <direction> <index> <rule name>`): its tier, its
   * policy's priority and its action, for per-rule counters and the denied-connection log. */
  | { verdict: 'cnp'; tier: TierName; priority: number; action: RuleAction; rule: RuleRef };

export interface DesiredChain {
  chain: Chain;
  rules: readonly Rule[];
}

/**
 * The policy's part of table `inet strand`: all names start with POLICY_PREFIX. Deterministic: the
 * same model renders to the same objects in the same order.
 */
export interface DesiredPolicyTable {
  chains: ReadonlyMap<string, DesiredChain>;
  sets: ReadonlyMap<string, NftSet | NftMap>;
  /** By set or map name, sorted by key text. */
  elements: ReadonlyMap<string, readonly Element[]>;
  chainOwners: ReadonlyMap<string, ChainOwner>;
  comments: ReadonlyMap<string, CommentMeaning>;
}

/** A table as the nft evaluator reads it: DesiredPolicyTable through nftView(), or FakeNft's state. */
export interface NftView {
  chains: ReadonlyMap<string, { rules: readonly { body: readonly Expr[]; comment?: string | undefined }[] }>;
  sets: ReadonlyMap<
    string,
    { type: string; elements: readonly { key: readonly string[]; value?: readonly string[] | undefined }[] }
  >;
}

export interface NftVerdict {
  allowed: boolean;
  /** The chains a packet went through, in order, and the comment of the rule that ended each. */
  path: readonly { chain: string; comment?: string }[];
}
