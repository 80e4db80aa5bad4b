// The datapath backends' contract with the agent: the agent turns Node objects into Peers
// (peerFromNode) and calls a Backend with the whole list; the backend makes the kernel hold exactly
// one route (and, for VXLAN, one neighbour and one FDB entry) per peer. This is the seam flannel has
// between its subnet manager and pkg/backend: the backend never sees the Kubernetes API.

/** Node annotations a Strand agent publishes about its own node (DESIGN.md "Kubernetes is the datastore"). */
export const ANNOTATIONS = {
  /** The backend this node runs: "vxlan" or "host-gw". */
  backend: 'strand.dev/backend',
  /** The node's underlay addresses, one per family, comma separated, the VXLAN endpoint first:
   * "198.18.0.2" or "198.18.0.2,2001:db8::2". Peers send encapsulated or directly routed traffic there. */
  underlayIp: 'strand.dev/underlay-ip',
  /** MAC of the node's VXLAN device ("0e:12:34:56:78:9a"); VXLAN only. */
  vtepMac: 'strand.dev/vtep-mac',
} as const;

/**
 * rtm_protocol of every route a backend installs (0x53, "S"; not in iproute2's rt_protos list).
 * Reconciliation treats the routes of the main table with this protocol as Strand's and only those:
 * any other route, even to a peer's pod CIDR, is never changed or deleted. Nothing else in Strand may
 * install routes with it.
 */
export const STRAND_ROUTE_PROTOCOL = 0x53;

export type BackendKind = 'vxlan' | 'host-gw';

/** This node, as the agent knows it when it sets the backend up. */
export interface LocalNode {
  name: string;
  /** The underlay interface ("eth0"): the VXLAN device's lower device, host-gw routes' output. */
  underlayIface: string;
  /** The node's underlay addresses, at most one per family. The first is the VXLAN endpoint
   * (IFLA_VXLAN_LOCAL), so its family decides the encapsulation overhead (50 or 70 bytes). */
  underlayIps: string[];
  /** Node.spec.podCIDRs: at most one per family. */
  podCidrs: string[];
  /** MTU of the underlay interface; read from the kernel when left out. */
  underlayMtu?: number;
  /** The cluster's service range(s), when known: a peer's pod CIDR overlapping one gets no route. */
  serviceCidrs?: string[];
}

/** Another node, as read from its Node object by peerFromNode. */
export interface Peer {
  name: string;
  /** Underlay addresses, at most one per family, the VXLAN endpoint first. */
  underlayIps: string[];
  /** Pod CIDRs as network addresses ("10.244.2.0/24"), at most one per family. */
  podCidrs: string[];
  /** MAC of its VXLAN device; absent on a node that does not run VXLAN. */
  vtepMac?: string;
  /** The backend it says it runs (strand.dev/backend), when it says. */
  backend?: string;
  /** metadata.creationTimestamp (RFC 3339): of two Nodes whose pod CIDRs overlap, the older keeps its. */
  createdAt?: string;
}

/** What setUp hands back to the agent. */
export interface SetUpResult {
  /** Node annotations to publish (merge into metadata.annotations). */
  annotations: Record<string, string>;
  /** The MTU pods on this node must use (node state file `mtu`): underlay MTU minus encapsulation. */
  podMtu: number;
  /** Changes made to the kernel (device created, MAC or MTU fixed…). */
  changes: Change[];
  /** Things that will keep pods on other nodes from working but that the backend does not own
   * (forwarding switched off, for one). */
  warnings: string[];
}

export type KernelObject = 'device' | 'address' | 'route' | 'neighbour' | 'fdb';

export interface Change {
  object: KernelObject;
  /** The peer the object is for, when it is for one. */
  peer?: string;
  /** What it is, in `ip` syntax: "10.244.2.0/24 via 10.244.2.0 dev strand.1 onlink". */
  detail: string;
}

export interface Problem {
  /** The peer this is about, when it is about one. */
  peer?: string;
  /** When the problem is a pod CIDR refused for overlapping one claimed before: that CIDR, and the node
   * holding it (an older peer, or this node; absent for the service range). */
  overlaps?: { cidr: string; node?: string };
  message: string;
}

export interface ReconcileReport {
  added: Change[];
  changed: Change[];
  removed: Change[];
  /** Entries already as wanted. */
  unchanged: number;
  /** Peers (or parts of them) that got no entries, and kernel operations that failed. */
  problems: Problem[];
  durationMs: number;
}

/** What a reconcile's entries are on, as rtnetlink's notifications name them (drift-watch.ts). */
export interface OwnedEntries {
  /** The links whose change can take entries along: the underlay and the VXLAN device. */
  links: ReadonlySet<number>;
  /** The device whose neighbour and FDB entries are Strand's (the VXLAN device), if any. */
  entriesOn: number | undefined;
  /** The destinations of the routes the reconcile wants, as the kernel formats them ("10.244.3.0/24"). */
  routes: ReadonlySet<string>;
}

/** Who follows a reconcile for the drift watch: told what it owns right before it reads the kernel,
 * and given the queue of notifications to keep up with between the slices of its writes. */
export interface ReconcileWatch {
  owns(entries: OwnedEntries): void;
  keepUp(): void;
}

/**
 * A datapath backend. Its netlink requests are synchronous (netlink in process, DESIGN.md "Kernel
 * access"); reconcile gives the event loop back between its requests every few milliseconds, so it
 * returns a promise. It works on the network namespace of the socket it was made with.
 */
export interface Backend {
  readonly kind: BackendKind;
  /** Creates or repairs node-level state (the VXLAN device) and says what to publish. Call once at
   * start and again whenever LocalNode changes (new underlay address, pod CIDR). */
  setUp(local: LocalNode): SetUpResult;
  /** Makes the kernel hold exactly the entries for these peers (level-based: the whole list every
   * time; this node's own Node may be in it and is skipped). Call after setUp, on every Node
   * change, and periodically. Never throws for a single bad peer or entry: those are problems. */
  reconcile(peers: readonly Peer[], watch?: ReconcileWatch): Promise<ReconcileReport>;
  /** Removes everything the backend made (the device, Strand's routes). */
  tearDown(): Change[];
}
