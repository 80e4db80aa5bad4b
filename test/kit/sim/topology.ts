// The simulated cluster's layout: where everything is (paths, addresses, ports) and the shapes the
// rest of the simulator shares (options, pods, what a node's kernel holds).
//
// Topology (addresses from 198.18.0.0/15, the benchmarking range, used only inside these namespaces):
//
//   <base>sw  the "switch": bridge br0 = the underlay 198.18.0.0/24 (198.18.0.1 is the router), bridge
//             mgmt = the management segment 198.18.1.0/24 (198.18.1.1 runs the API server), and a
//             veth to the outside; forwarding on. Nothing is added to the root namespace.
//   <base>nI  node I: eth0 198.18.0.(10+I)/24 on br0 with the default route via 198.18.0.1 (the
//             agent's underlay, --iface eth0), mgmt0 198.18.1.(10+I)/24 on mgmt (the API server).
//             eth0 and its switch port take 192 KiB packets (BIG TCP, underlayOffload) unless told.
//             Node object node-I: spec.podCIDR 10.244.I.0/24, InternalIP 198.18.0.(10+I).
//   <base>out the outside stand-in, 198.19.0.1/24: it routes back only to 198.18.0.0/16, so a pod's
//             connection there works only if it is masqueraded to its node's address.
//   <base>pN  pods.
//
// The API server (test/kit/sim/api-server.ts) runs in its own process inside the switch namespace: a
// node namespace cannot reach another namespace's 127.0.0.1, so the agents reach it at 198.18.1.1
// over their mgmt0. It is controlled over its stdin (JSON lines). The management segment is separate
// from the underlay so that changing a node's underlay address does not cut its agent's API
// connection (a real node's agent reaches the API through a stable address as well).
//
// Everything is removed by destroy(), by a SIGINT/SIGTERM handler (installSignalCleanup) and, as a
// last resort, synchronously when the process exits. Agents run under `setpriv --pdeathsig TERM`, so
// they stop even if the simulator is killed with SIGKILL; the API server stops when its stdin closes.
import { dirname, join, resolve } from 'node:path';
import type { SimNode } from './node.ts';

export const REPO = resolve(import.meta.dirname, '../../..');
/** The agent the simulator runs: dist/strand, or $STRAND_SIM_BIN (another build). */
export const DEFAULT_STRAND = process.env.STRAND_SIM_BIN || join(REPO, 'dist', 'strand');
/** The CNI executable pods are made with: cni/strand beside the agent's, as the build and the image ship it. */
export const cniExecutableFor = (strand: string): string => join(dirname(strand), 'cni', 'strand');
export const POD_SERVER = join(REPO, 'test', 'kit', 'sim', 'pod-server.mjs');
/** The manifest whose RBAC the agents run under. */
export const DEPLOY_MANIFEST = join(REPO, 'deploy', 'strand.yaml');
export const STATE_DIR = '/run/strand-sim';

export const CLUSTER_CIDR = '10.244.0.0/16';
export const UNDERLAY_PREFIX = '198.18.0';
export const ROUTER_IP = '198.18.0.1';
export const MGMT_PREFIX = '198.18.1';
export const API_IP = '198.18.1.1';
export const API_PORT = 6443;
export const OUTSIDE_IP = '198.19.0.1';
export const OUTSIDE_GW = '198.19.0.254';
export const HEALTH_PORT = 9797;
/** Where every pod's test server (pod-server.mjs) listens. */
export const POD_PORT = 8080;

export type SimBackend = 'vxlan' | 'host-gw';

export interface SimOptions {
  /** Prefix of every namespace name (up to 5 of [a-z0-9]): "stt" for tests, "sdemo" for the demo. */
  prefix: string;
  nodes: number;
  backend?: SimBackend;
  /** The agent and command line; default dist/strand. */
  strand?: string;
  /** The CNI executable; default cni/strand beside `strand`. */
  strandCni?: string;
  /** VXLAN network identifier: the device is strand.<vni>. Default 1. */
  vni?: number;
  /** MTU of the underlay veths. Default 1500. */
  underlayMtu?: number;
  /**
   * GSO/GRO size of the underlay veths and switch (BIG TCP on the simulated NICs), default 196608
   * (SIM_OFFLOAD_SIZE); 65536 is a NIC without BIG TCP.
   */
  underlayOffload?: number;
  /** The agents' log level. Default "info". */
  logLevel?: string;
  /** Extra flags for every agent. */
  agentArgs?: string[];
  /**
   * The manifest whose ClusterRoles and bindings the API server authorizes the agents by (they run
   * as its DaemonSet's ServiceAccount). Default deploy/strand.yaml.
   */
  rbacManifest?: string;
  /** Start the agents in create() (default true). */
  startAgents?: boolean;
  /** Progress messages (default: none). */
  log?: (message: string) => void;
}

/** A Kubernetes object as the API server returns it (plain JSON). */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    [k: string]: unknown;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [k: string]: unknown;
}

export interface RouteEntry {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  flags?: string[];
  [k: string]: unknown;
}

export interface NeighEntry {
  dst: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
  [k: string]: unknown;
}

export interface FdbEntry {
  mac: string;
  dst?: string;
  ifname?: string;
  flags?: string[];
  state?: string;
  [k: string]: unknown;
}

/** What a node's kernel holds for one peer: the datapath entries a backend made for it. */
export interface PeerEntries {
  routes: RouteEntry[];
  neighbours: NeighEntry[];
  fdb: FdbEntry[];
}

/** A container port of a simulated pod (named ports are what NetworkPolicy resolves). */
export interface SimContainerPort {
  name?: string;
  containerPort: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

export interface SimPod {
  name: string;
  namespace: string;
  uid: string;
  node: SimNode;
  /** The pod's network namespace. */
  netns: string;
  containerId: string;
  /** The pod's addresses (without prefix length), IPv4 first. */
  ips: string[];
  ip: string;
  /** The network configuration ADD was run with (DEL gets the same, as a runtime caches it). */
  netconf: Record<string, unknown>;
  /** ADD's result (DEL gets it as prevResult). */
  result: Record<string, unknown>;
}

/** Ports the nodes serve as probe targets: the upstream ClusterNetworkPolicy conformance's host ports
 * (test/support/cnp-conformance-manifests.ts HOST_PORTS), kept out of the nodes' ephemeral ports. */
export const NODE_PROBE_PORTS = '34345-34352';
