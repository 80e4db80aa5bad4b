// A simulated Kubernetes cluster on one machine, for the e2e tests, the demo and the benchmark:
// nodes are network namespaces, each running `strand agent` against a test API server, and pods are
// wired by running dist/strand exactly as a container runtime does.
//
//   const cluster = await SimCluster.create({ prefix: 'stt', nodes: 3, backend: 'vxlan' });
//   try {
//     await cluster.waitReady();                       // every agent's /readyz
//     const pod = await cluster.addPod(cluster.nodes[0]); // CNI ADD + the Pod object
//     …
//   } finally {
//     await cluster.destroy();                         // DEL, agents, API server, namespaces, files
//   }
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
// A state file in /run/strand-sim/ lets `cli.ts down` clean up after anything worse.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { bridgeJson, ipJson, run, sh, sleep, trySh, waitFor } from './exec.ts';
import { setOffloadSizes, SIM_OFFLOAD_SIZE } from './offload.ts';
import type { LeastPrivilegeReport } from '../k8s/rbac.ts';

export const REPO = resolve(import.meta.dirname, '../../..');
/** The agent the simulator runs: dist/strand, or $STRAND_SIM_BIN (another build). */
export const DEFAULT_STRAND = process.env.STRAND_SIM_BIN || join(REPO, 'dist', 'strand');
/** The CNI executable pods are made with: cni/strand beside the agent's, as the build and the image ship it. */
export const cniExecutableFor = (strand: string): string => join(dirname(strand), 'cni', 'strand');
export const POD_SERVER = join(REPO, 'test', 'kit', 'sim', 'pod-server.mjs');
/** The manifest whose RBAC the agents run under. */
const DEPLOY_MANIFEST = join(REPO, 'deploy', 'strand.yaml');
export const STATE_DIR = '/run/strand-sim';

export const CLUSTER_CIDR = '10.244.0.0/16';
export const UNDERLAY_PREFIX = '198.18.0';
export const ROUTER_IP = '198.18.0.1';
export const MGMT_PREFIX = '198.18.1';
export const API_IP = '198.18.1.1';
export const API_PORT = 6443;
export const OUTSIDE_IP = '198.19.0.1';
const OUTSIDE_GW = '198.19.0.254';
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
  metadata: { name: string; namespace?: string; uid?: string; annotations?: Record<string, string>; labels?: Record<string, string>; [k: string]: unknown };
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

// ---- the API server's control channel ------------------------------------------------------------

/** Talks to test/kit/sim/api-server.ts over its stdin/stdout. */
export class ApiControl {
  readonly url: string;
  /** The bearer token of the manifest's DaemonSet ServiceAccount: the agents' identity. */
  readonly agentToken: string;
  private readonly proc: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private stderr = '';
  readonly exited: Promise<void>;

  private constructor(proc: ChildProcess, url: string, agentToken: string) {
    this.proc = proc;
    this.url = url;
    this.agentToken = agentToken;
    this.exited = new Promise((r) => proc.once('exit', () => r()));
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Starts the API server inside `netns`, listening on host:port there, authorizing by the manifest's RBAC. */
  static start(netns: string, host: string, port: number, rbacManifest: string): Promise<ApiControl> {
    const script = join(REPO, 'test', 'kit', 'sim', 'api-server.ts');
    const proc = spawn('ip', ['netns', 'exec', netns, process.execPath, script, '--listen', `${host}:${port}`, '--rbac', rbacManifest], {
      env: { PATH: process.env.PATH },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new Promise((resolvePromise, reject) => {
      let api: ApiControl | undefined;
      let stderr = '';
      proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
        stderr = (stderr + d).slice(-4000);
        if (api) api.stderr = stderr;
      });
      proc.once('exit', (code) => {
        if (!api) reject(new Error(`the API server exited (${code}) before it was ready: ${stderr.trim()}`));
        else for (const p of api.pending.values()) p.reject(new Error(`the API server exited (${code}): ${stderr.trim()}`));
      });
      proc.once('error', reject);
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        let msg: { ready?: boolean; url?: string; agentToken?: string; id?: number; ok?: boolean; result?: unknown; error?: string; code?: number };
        try {
          msg = JSON.parse(line);
        } catch {
          return;
        }
        if (msg.ready && !api) {
          if (typeof msg.agentToken !== 'string') {
            reject(new Error('the API server started without RBAC (no agent token)'));
            proc.kill('SIGKILL');
            return;
          }
          api = new ApiControl(proc, msg.url ?? `http://${host}:${port}`, msg.agentToken);
          resolvePromise(api);
          return;
        }
        const p = msg.id !== undefined ? api?.pending.get(msg.id) : undefined;
        if (!p || !api) return;
        api.pending.delete(msg.id as number);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(Object.assign(new Error(`API server: ${msg.error}`), { code: msg.code }));
      });
      proc.stdin!.on('error', () => {});
    });
  }

  private request<T>(op: string, fields: Record<string, unknown> = {}): Promise<T> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return Promise.reject(new Error(`the API server is not running: ${this.stderr.trim()}`));
    const id = this.nextId++;
    return new Promise<T>((resolvePromise, reject) => {
      this.pending.set(id, { resolve: resolvePromise as (v: unknown) => void, reject });
      this.proc.stdin!.write(`${JSON.stringify({ id, op, ...fields })}\n`);
    });
  }

  create<T = KubeObject>(resource: string, body: object): Promise<T> {
    return this.request('create', { resource, body });
  }
  upsert<T = KubeObject>(resource: string, body: object): Promise<T> {
    return this.request('upsert', { resource, body });
  }
  patch<T = KubeObject>(resource: string, name: string, body: unknown, opts: { namespace?: string; type?: 'strategic' | 'merge' | 'json'; subresource?: 'status' } = {}): Promise<T> {
    return this.request('patch', { resource, name, body, ...opts });
  }
  delete<T = KubeObject>(resource: string, name: string, namespace?: string): Promise<T | null> {
    return this.request('delete', { resource, name, namespace });
  }
  get<T = KubeObject>(resource: string, name: string, namespace?: string): Promise<T | null> {
    return this.request('get', { resource, name, namespace });
  }
  list<T = KubeObject>(resource: string, namespace?: string): Promise<T[]> {
    return this.request('list', { resource, namespace });
  }
  /** An outage: stops listening and cuts every connection (state kept). */
  stop(): Promise<void> {
    return this.request('stop');
  }
  start(): Promise<void> {
    return this.request('start');
  }
  /** Which of the manifest's permissions the agents' identity was granted, used and refused so far. */
  leastPrivilege(): Promise<LeastPrivilegeReport> {
    return this.request('leastPrivilege');
  }

  /** Closes the control channel: the server stops. Waits up to 3 s, then kills it. */
  async close(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.stdin!.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(timer);
  }

  killSync(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

// ---- nodes ---------------------------------------------------------------------------------------

export class SimNode {
  readonly cluster: SimCluster;
  /** 1-based. */
  readonly index: number;
  /** The Node's name in the API. */
  readonly name: string;
  /** The node's network namespace. */
  readonly netns: string;
  readonly podCidr: string;
  readonly dir: string;
  readonly binDir: string;
  readonly confDir: string;
  readonly stateDir: string;
  readonly ipamDir: string;
  readonly agentLog: string;
  readonly cniLog: string;
  readonly mgmtIp: string;
  /** The current underlay address (eth0). */
  underlayIp: string;
  /** Extra agent flags for this node (besides the cluster's). */
  agentArgs: string[] = [];
  private agent: ChildProcess | undefined;
  private agentExit: Promise<void> | undefined;
  private agentStderr = '';
  /** Every agent pid this node ever had, for the state file. */
  readonly agentPids: number[] = [];

  constructor(cluster: SimCluster, index: number) {
    this.cluster = cluster;
    this.index = index;
    this.name = `node-${index}`;
    this.netns = `${cluster.base}n${index}`;
    this.podCidr = `10.244.${index}.0/24`;
    this.underlayIp = `${UNDERLAY_PREFIX}.${10 + index}`;
    this.mgmtIp = `${MGMT_PREFIX}.${10 + index}`;
    this.dir = join(cluster.root, this.name);
    this.binDir = join(this.dir, 'bin');
    this.confDir = join(this.dir, 'net.d');
    this.stateDir = join(this.dir, 'state');
    this.ipamDir = join(this.dir, 'ipam');
    this.agentLog = join(this.dir, 'agent.log');
    this.cniLog = join(this.dir, 'cni.log');
  }

  /** The VXLAN endpoint address of this node's pods' traffic (the pod CIDR's network address). */
  get vtepIp(): string {
    return this.podCidr.split('/')[0] as string;
  }

  get agentPid(): number | undefined {
    return this.agent?.pid;
  }

  get agentRunning(): boolean {
    return this.agent !== undefined && this.agent.exitCode === null && this.agent.signalCode === null;
  }

  /** The Node object as the simulator creates it (no annotations: the agent publishes those). */
  nodeObject(): KubeObject {
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: this.name, labels: { 'kubernetes.io/hostname': this.name, 'kubernetes.io/os': 'linux' } },
      spec: { podCIDR: this.podCidr, podCIDRs: [this.podCidr] },
      status: {
        addresses: [
          { type: 'InternalIP', address: this.underlayIp },
          { type: 'Hostname', address: this.name },
        ],
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'simulated', lastHeartbeatTime: new Date().toISOString(), lastTransitionTime: new Date().toISOString() }],
      },
    };
  }

  /** Runs `ip netns exec <node> cmd args` and returns stdout (throws on failure). */
  exec(cmd: string, args: readonly string[]): string {
    return sh('ip', ['netns', 'exec', this.netns, cmd, ...args]);
  }

  /** Starts `strand agent` in the node namespace (no-op if it runs). */
  startAgent(): void {
    if (this.agentRunning) return;
    const c = this.cluster;
    const args = [
      'netns', 'exec', this.netns,
      // The agent dies with the simulator, whatever kills it.
      'setpriv', '--pdeathsig', 'TERM', '--',
      c.strand, 'agent',
      '--kubeconfig', c.kubeconfig,
      '--node-name', this.name,
      '--cluster-cidr', CLUSTER_CIDR,
      '--backend', c.backend,
      '--iface', 'eth0',
      '--cni-bin-dir', this.binDir,
      '--cni-conf-dir', this.confDir,
      '--state-dir', this.stateDir,
      '--ipam-data-dir', this.ipamDir,
      '--health-addr', `127.0.0.1:${HEALTH_PORT}`,
      '--log-level', c.logLevel,
      '--log-file', this.agentLog,
      '--cni-log-file', this.cniLog,
      '--bridge', 'cni0',
      ...(c.backend === 'vxlan' ? ['--vni', String(c.vni)] : []),
      ...c.agentArgs,
      ...this.agentArgs,
    ];
    const proc = spawn('ip', args, { env: { PATH: process.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
    this.agentStderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.agentStderr = (this.agentStderr + d).slice(-4000)));
    proc.on('error', () => {});
    this.agentExit = new Promise((r) => proc.once('exit', () => r()));
    this.agent = proc;
    if (proc.pid !== undefined) this.agentPids.push(proc.pid);
    c.saveState();
  }

  /** Stops the agent: `signal` (default SIGTERM), then SIGKILL after graceMs; waits for the exit. */
  async stopAgent(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    const proc = this.agent;
    if (!proc || !this.agentRunning) return;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await this.agentExit;
    clearTimeout(timer);
  }

  /** SIGKILL now (the synchronous last-resort cleanup). */
  killAgentSync(): void {
    if (this.agentRunning) this.agent!.kill('SIGKILL');
  }

  /** The agent's stderr (last 4 KB): where it reports a refused configuration. */
  get stderr(): string {
    return this.agentStderr;
  }

  /** GET on the agent's health server (inside the node namespace). */
  async health(path = '/readyz'): Promise<{ status: number; body: string }> {
    const r = await run('ip', ['netns', 'exec', this.netns, 'curl', '-s', '-m', '2', '-w', '\n%{http_code}', `http://127.0.0.1:${HEALTH_PORT}${path}`], { timeoutMs: 5000 });
    const cut = r.stdout.lastIndexOf('\n');
    return { status: cut < 0 ? 0 : Number(r.stdout.slice(cut + 1)), body: cut < 0 ? r.stdout : r.stdout.slice(0, cut) };
  }

  async ready(): Promise<boolean> {
    return this.agentRunning && (await this.health('/readyz')).status === 200;
  }

  /** The last `lines` lines of the agent's log (JSON lines as text). */
  logTail(lines = 20): string {
    if (!existsSync(this.agentLog)) return '(no agent log)';
    return readFileSync(this.agentLog, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** The agent's log, parsed. */
  logs(): { level: number; msg: string; [k: string]: unknown }[] {
    if (!existsSync(this.agentLog)) return [];
    return readFileSync(this.agentLog, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .flatMap((l) => {
        try {
          return [JSON.parse(l)];
        } catch {
          return [];
        }
      });
  }

  /** The Node object in the API (null when deleted). */
  node(): Promise<KubeObject | null> {
    return this.cluster.api.get('nodes', this.name);
  }

  async annotations(): Promise<Record<string, string>> {
    return (await this.node())?.metadata.annotations ?? {};
  }

  /** The node's main routing table. */
  routes(): RouteEntry[] {
    return ipJson<RouteEntry[]>(this.netns, ['route', 'show']);
  }

  /** Neighbour entries, of one device if given ([] when it does not exist). */
  neighbours(dev?: string): NeighEntry[] {
    if (dev !== undefined && !this.link(dev)) return [];
    const all = ipJson<NeighEntry[]>(this.netns, ['neigh', 'show', ...(dev ? ['dev', dev] : [])]);
    return dev ? all.map((n) => ({ ...n, dev })) : all;
  }

  /** FDB entries of a device (the VXLAN device by default); [] when it does not exist. */
  fdb(dev = this.cluster.vxlanDevice): FdbEntry[] {
    return bridgeJson<FdbEntry[]>(this.netns, ['fdb', 'show', 'dev', dev]);
  }

  link(dev: string): { ifname: string; address?: string; mtu: number; [k: string]: unknown } | undefined {
    const r = trySh('ip', ['-n', this.netns, '-j', '-d', 'link', 'show', 'dev', dev]);
    if (r.code !== 0) return undefined;
    return (JSON.parse(r.stdout) as { ifname: string; mtu: number }[])[0];
  }

  /**
   * What this node's kernel holds for `peer`: routes to its pod CIDR, neighbour entries on the VXLAN
   * device for its VTEP address or MAC, FDB entries for its MAC or underlay address.
   */
  entriesFor(peer: { podCidr: string; vtepIp?: string; vtepMac?: string; underlayIps?: string[] }): PeerEntries {
    const dev = this.cluster.vxlanDevice;
    const vtepIp = peer.vtepIp ?? peer.podCidr.split('/')[0];
    const mac = peer.vtepMac?.toLowerCase();
    const routes = this.routes().filter((r) => r.dst === peer.podCidr);
    const neighbours = this.neighbours(dev).filter((n) => n.dst === vtepIp || (mac !== undefined && n.lladdr === mac));
    const fdb = this.fdb(dev).filter((f) => (mac !== undefined && f.mac === mac) || (f.dst !== undefined && (peer.underlayIps ?? []).includes(f.dst)));
    return { routes, neighbours, fdb };
  }

  /**
   * Moves the node's underlay address: the new address goes on eth0 before the old one is removed
   * (the default route stays), and the Node's InternalIP is changed in the API, as kubelet would.
   */
  async setUnderlayIp(ip: string): Promise<void> {
    const old = this.underlayIp;
    if (ip === old) return;
    // Without promote_secondaries, deleting the primary address takes the secondaries with it.
    sh('ip', ['netns', 'exec', this.netns, 'sysctl', '-qw', 'net.ipv4.conf.eth0.promote_secondaries=1']);
    sh('ip', ['-n', this.netns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', this.netns, 'addr', 'del', `${old}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', this.netns, 'route', 'replace', 'default', 'via', ROUTER_IP, 'dev', 'eth0']);
    this.underlayIp = ip;
    const node = await this.node();
    if (node) {
      const addresses = ((node.status?.addresses as { type: string; address: string }[] | undefined) ?? []).map((a) =>
        a.type === 'InternalIP' && a.address === old ? { ...a, address: ip } : a,
      );
      await this.cluster.api.patch('nodes', this.name, { status: { addresses } }, { type: 'merge', subresource: 'status' });
    }
  }
}

// ---- pods ----------------------------------------------------------------------------------------

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

// ---- the cluster ---------------------------------------------------------------------------------

const live = new Set<SimCluster>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) c.destroySync();
  });
}

/**
 * On SIGINT/SIGTERM (Ctrl-C), destroys every live cluster and exits (130/143). For the CLI, the demo
 * and the benchmark; a test runner has its own teardown.
 */
export function installSignalCleanup(): void {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: tearing the simulated cluster down\n`);
      const code = sig === 'SIGINT' ? 130 : 143;
      Promise.allSettled([...live].map((c) => c.destroy())).finally(() => process.exit(code));
      setTimeout(() => process.exit(code), 15_000).unref();
    });
  }
}

export class SimCluster {
  readonly base: string;
  readonly backend: SimBackend;
  readonly strand: string;
  readonly strandCni: string;
  readonly vni: number;
  readonly underlayMtu: number;
  readonly underlayOffload: number;
  readonly logLevel: string;
  readonly agentArgs: string[];
  readonly rbacManifest: string;
  readonly root: string;
  readonly kubeconfig: string;
  readonly switchNetns: string;
  readonly outsideNetns: string;
  readonly nodes: SimNode[] = [];
  readonly pods: SimPod[] = [];
  private apiControl: ApiControl | undefined;
  private readonly namespaces: string[] = [];
  private readonly servers = new Map<string, ChildProcess>();
  private podSeq = 0;
  private readonly knownNamespaces = new Set<string>();
  private destroyed = false;
  private readonly say: (message: string) => void;

  private constructor(opts: SimOptions) {
    if (!/^[a-z0-9]{1,5}$/.test(opts.prefix)) throw new Error(`prefix ${JSON.stringify(opts.prefix)}: 1 to 5 characters of [a-z0-9]`);
    if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 200) throw new Error('nodes: 1 to 200');
    this.base = `${opts.prefix}${randomBytes(3).toString('hex')}`;
    this.backend = opts.backend ?? 'vxlan';
    this.strand = opts.strand ?? DEFAULT_STRAND;
    this.strandCni = opts.strandCni ?? cniExecutableFor(this.strand);
    this.vni = opts.vni ?? 1;
    this.underlayMtu = opts.underlayMtu ?? 1500;
    this.underlayOffload = opts.underlayOffload ?? SIM_OFFLOAD_SIZE;
    this.logLevel = opts.logLevel ?? 'info';
    this.agentArgs = opts.agentArgs ?? [];
    this.rbacManifest = opts.rbacManifest ?? DEPLOY_MANIFEST;
    this.say = opts.log ?? (() => {});
    this.root = mkdtempSync(join(tmpdir(), `strand-sim-${this.base}-`));
    this.kubeconfig = join(this.root, 'kubeconfig');
    this.switchNetns = `${this.base}sw`;
    this.outsideNetns = `${this.base}out`;
    for (let i = 1; i <= opts.nodes; i++) this.nodes.push(new SimNode(this, i));
  }

  /** Builds the cluster; on any failure everything made so far is removed before the error is thrown. */
  static async create(opts: SimOptions): Promise<SimCluster> {
    const c = new SimCluster(opts);
    if (!existsSync(c.strand)) throw new Error(`${c.strand} is missing: build first (node scripts/build.mjs)`);
    live.add(c);
    installExitHook();
    try {
      c.saveState();
      c.buildNetwork();
      c.say(`network: switch ${c.switchNetns}, outside ${c.outsideNetns}, nodes ${c.nodes.map((n) => n.netns).join(' ')}`);
      c.apiControl = await ApiControl.start(c.switchNetns, API_IP, API_PORT, c.rbacManifest);
      c.saveState();
      c.writeKubeconfig();
      for (const ns of ['default', 'kube-system']) await c.api.create('namespaces', { metadata: { name: ns } });
      for (const n of c.nodes) await c.api.create('nodes', n.nodeObject());
      c.say(`API server ${c.api.url} in ${c.switchNetns}, ${c.nodes.length} Node objects`);
      if (opts.startAgents ?? true) for (const n of c.nodes) n.startAgent();
      return c;
    } catch (err) {
      await c.destroy();
      throw err;
    }
  }

  get api(): ApiControl {
    if (!this.apiControl) throw new Error('the API server is not running');
    return this.apiControl;
  }

  get vxlanDevice(): string {
    return `strand.${this.vni}`;
  }

  node(nameOrIndex: string | number): SimNode {
    const n = typeof nameOrIndex === 'number' ? this.nodes[nameOrIndex - 1] : this.nodes.find((x) => x.name === nameOrIndex || x.netns === nameOrIndex);
    if (!n) throw new Error(`no node ${nameOrIndex}`);
    return n;
  }

  // ---- network -----------------------------------------------------------------------------------

  private addNetns(name: string): void {
    sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  }

  private buildNetwork(): void {
    const sw = this.switchNetns;
    const mtu = String(this.underlayMtu);
    this.addNetns(sw);
    sh('ip', ['netns', 'exec', sw, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    for (const [br, ip] of [['br0', `${ROUTER_IP}/24`], ['mgmt', `${API_IP}/24`]] as const) {
      sh('ip', ['-n', sw, 'link', 'add', br, 'mtu', mtu, 'type', 'bridge']);
      sh('ip', ['-n', sw, 'addr', 'add', ip, 'dev', br]);
      sh('ip', ['-n', sw, 'link', 'set', br, 'up']);
    }
    // The outside: reached through the switch, and routing back only to the underlay's range.
    this.addNetns(this.outsideNetns);
    sh('ip', ['-n', sw, 'link', 'add', 'out0', 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', mtu, 'netns', this.outsideNetns]);
    sh('ip', ['-n', sw, 'addr', 'add', `${OUTSIDE_GW}/24`, 'dev', 'out0']);
    sh('ip', ['-n', sw, 'link', 'set', 'out0', 'up']);
    sh('ip', ['-n', this.outsideNetns, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', this.outsideNetns, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', this.outsideNetns, 'route', 'add', '198.18.0.0/16', 'via', OUTSIDE_GW]);
    for (const n of this.nodes) this.buildNode(n);
  }

  private buildNode(n: SimNode): void {
    const sw = this.switchNetns;
    const mtu = String(this.underlayMtu);
    this.addNetns(n.netns);
    for (const [port, inner, bridge, ip] of [
      [`u${n.index}`, 'eth0', 'br0', n.underlayIp],
      [`m${n.index}`, 'mgmt0', 'mgmt', n.mgmtIp],
    ] as const) {
      sh('ip', ['-n', sw, 'link', 'add', port, 'mtu', mtu, 'type', 'veth', 'peer', 'name', inner, 'mtu', mtu, 'netns', n.netns]);
      sh('ip', ['-n', sw, 'link', 'set', port, 'master', bridge, 'up']);
      sh('ip', ['-n', n.netns, 'addr', 'add', `${ip}/24`, 'dev', inner]);
      sh('ip', ['-n', n.netns, 'link', 'set', inner, 'up']);
    }
    sh('ip', ['-n', n.netns, 'route', 'add', 'default', 'via', ROUTER_IP, 'dev', 'eth0']);
    // The node's NIC and its switch port (the switch's bridge too, now that it has a port).
    setOffloadSizes(n.netns, ['eth0'], this.underlayOffload);
    setOffloadSizes(sw, [`u${n.index}`, 'br0'], this.underlayOffload);
    for (const d of [n.binDir, n.confDir, n.stateDir, n.ipamDir]) mkdirSync(d, { recursive: true });
    // The CNI bin dir as a node has it (strand install): the CNI executable as strand, and
    // strand-ipam as a link to the same executable.
    symlinkSync(this.strandCni, join(n.binDir, 'strand'));
    symlinkSync(this.strandCni, join(n.binDir, 'strand-ipam'));
    for (const ref of ['portmap', 'host-local', 'bridge', 'loopback']) {
      if (existsSync(`/usr/lib/cni/${ref}`)) symlinkSync(`/usr/lib/cni/${ref}`, join(n.binDir, ref));
    }
  }

  /** The agents' kubeconfig: the API server over the management segment, as the DaemonSet's ServiceAccount. */
  private writeKubeconfig(): void {
    const yaml = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: sim',
      '  cluster:',
      `    server: ${this.api.url}`,
      // client-node refuses http:// unless TLS verification is "skipped" (test/kit/k8s-api-server.ts).
      '    insecure-skip-tls-verify: true',
      'users:',
      '- name: sim',
      '  user:',
      `    token: ${JSON.stringify(this.api.agentToken)}`,
      'contexts:',
      '- name: sim',
      '  context:',
      '    cluster: sim',
      '    user: sim',
      'current-context: sim',
      '',
    ].join('\n');
    writeFileSync(this.kubeconfig, yaml, { mode: 0o600 });
  }

  // ---- agents ------------------------------------------------------------------------------------

  /** Waits until every running agent answers /readyz with 200. */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    const pending = new Set(this.nodes.filter((n) => n.agentRunning));
    try {
      await waitFor(
        async () => {
          for (const n of [...pending]) {
            if (!n.agentRunning) throw new Error(`the agent of ${n.name} exited: ${n.stderr.trim() || n.logTail(5)}`);
            if (await n.ready()) pending.delete(n);
          }
          return pending.size === 0;
        },
        timeoutMs,
        'the agents to be ready',
        200,
      );
    } catch (err) {
      const detail = [...pending].map((n) => `--- ${n.name} (readyz: ${JSON.stringify((n.agentRunning ? 'running' : 'exited'))})\n${n.logTail(8)}`).join('\n');
      throw new Error(`${(err as Error).message}\n${detail}`);
    }
  }

  /**
   * Waits until every node whose agent runs and whose Node exists has a route to every other
   * existing Node's pod CIDR (backend-agnostic convergence).
   */
  async waitRoutes(timeoutMs = 20_000): Promise<void> {
    await waitFor(async () => (await this.missingRoutes()).length === 0, timeoutMs, 'routes between all nodes', 100).catch(async (err: Error) => {
      throw new Error(`${err.message}: missing ${(await this.missingRoutes()).join(', ')}`);
    });
  }

  private async missingRoutes(): Promise<string[]> {
    const existing = new Set((await this.api.list('nodes')).map((o) => o.metadata.name));
    const nodes = this.nodes.filter((n) => existing.has(n.name));
    const missing: string[] = [];
    for (const n of nodes) {
      if (!n.agentRunning) continue;
      const dsts = new Set(n.routes().map((r) => r.dst));
      for (const m of nodes) if (m !== n && !dsts.has(m.podCidr)) missing.push(`${n.name}→${m.podCidr}`);
    }
    return missing;
  }

  /** Deletes a Node from the API (its agent keeps running, as a removed node's DaemonSet pod would until drained). */
  async deleteNode(node: SimNode): Promise<void> {
    await this.api.delete('nodes', node.name);
  }

  /** Creates the Node again as the simulator first made it (the agent republishes its annotations). */
  async restoreNode(node: SimNode): Promise<void> {
    await this.api.upsert('nodes', node.nodeObject());
  }

  // ---- pods --------------------------------------------------------------------------------------

  /** The network configuration a runtime hands the first plugin: the agent's conflist's plugins[0] with the list's name and cniVersion. */
  netconfOf(node: SimNode): Record<string, unknown> {
    const path = join(node.confDir, '10-strand.conflist');
    if (!existsSync(path)) throw new Error(`${node.name} has no ${path}: is its agent ready?`);
    const list = JSON.parse(readFileSync(path, 'utf8')) as { name: string; cniVersion: string; plugins: Record<string, unknown>[] };
    return { ...(list.plugins[0] as Record<string, unknown>), name: list.name, cniVersion: list.cniVersion };
  }

  private cniEnv(pod: Pick<SimPod, 'containerId' | 'netns' | 'namespace' | 'name' | 'uid' | 'node'>, command: 'ADD' | 'DEL' | 'CHECK'): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      CNI_COMMAND: command,
      CNI_CONTAINERID: pod.containerId,
      CNI_NETNS: `/run/netns/${pod.netns}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: pod.node.binDir,
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=${pod.containerId};K8S_POD_UID=${pod.uid}`,
    };
  }

  /**
   * A pod on `node`, in the order kubelet and a runtime go: the Pod object exists (scheduled to the
   * node, with its labels and container ports, no addresses yet), then a new network namespace and
   * CNI ADD as a runtime runs it (in the node namespace, `<binDir>/strand`, the conflist's first plugin
   * on stdin), then the Pod's status gets its addresses, as kubelet reports them. The namespace
   * object is created first if it does not exist (with its kubernetes.io/metadata.name label).
   */
  async addPod(
    node: SimNode,
    opts: {
      name?: string;
      namespace?: string;
      labels?: Record<string, string>;
      ports?: SimContainerPort[];
      /** Runs once the pod's namespace exists, before ADD (a server that listens from the first instant). */
      beforeAdd?: (netns: string) => Promise<void>;
    } = {},
  ): Promise<SimPod> {
    const seq = ++this.podSeq;
    const name = opts.name ?? `pod-${node.index}-${seq}`;
    const namespace = opts.namespace ?? 'default';
    const netns = `${this.base}p${seq}`;
    const netconf = this.netconfOf(node);
    await this.ensureNamespace(namespace);
    const containerId = createHash('sha256').update(`${this.base}/${namespace}/${name}/${seq}`).digest('hex');
    // The API server gives the Pod its uid; kubelet passes that one in CNI_ARGS (K8S_POD_UID).
    const created = await this.api.create('pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, labels: opts.labels ?? { app: name } },
      spec: { nodeName: node.name, containers: [{ name: 'main', image: 'strand-sim/pause', ...(opts.ports ? { ports: opts.ports } : {}) }] },
      status: { phase: 'Pending', hostIP: node.underlayIp },
    });
    const uid = created.metadata.uid ?? randomUUID();
    this.addNetns(netns);
    await opts.beforeAdd?.(netns);
    const draft = { name, namespace, uid, node, netns, containerId };
    const r = await run('ip', ['netns', 'exec', node.netns, join(node.binDir, 'strand')], { env: this.cniEnv(draft, 'ADD'), input: JSON.stringify(netconf), timeoutMs: 30_000 });
    if (r.code !== 0) {
      this.removeNetns(netns);
      await this.api.delete('pods', name, namespace).catch(() => null);
      throw new Error(`CNI ADD of ${namespace}/${name} on ${node.name} failed (exit ${r.code}): ${r.stdout.trim()} ${r.stderr.trim()}`);
    }
    const result = JSON.parse(r.stdout) as { ips?: { address: string }[] };
    const ips = (result.ips ?? []).map((i) => i.address.split('/')[0] as string).sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')));
    const pod: SimPod = { ...draft, ips, ip: ips[0] ?? '', netconf, result: result as Record<string, unknown> };
    this.pods.push(pod);
    await this.api.patch('pods', name, { status: { phase: 'Running', podIP: pod.ip, podIPs: ips.map((ip) => ({ ip })) } }, { namespace, type: 'merge', subresource: 'status' });
    return pod;
  }

  /** Creates the namespace if it does not exist, labelled kubernetes.io/metadata.name as the API server does. */
  async ensureNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
    if (this.knownNamespaces.has(name)) return;
    if (!(await this.api.get('namespaces', name))) {
      await this.api.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } });
    }
    this.knownNamespaces.add(name);
  }

  /** CNI DEL (with the ADD's config and result, as a runtime does), the Pod object and the namespace. */
  async deletePod(pod: SimPod): Promise<void> {
    const i = this.pods.indexOf(pod);
    if (i >= 0) this.pods.splice(i, 1);
    this.stopServer(pod.netns);
    const netconf = { ...pod.netconf, prevResult: pod.result };
    const r = await run('ip', ['netns', 'exec', pod.node.netns, join(pod.node.binDir, 'strand')], { env: this.cniEnv(pod, 'DEL'), input: JSON.stringify(netconf), timeoutMs: 30_000 });
    this.removeNetns(pod.netns);
    await this.apiControl?.delete('pods', pod.name, pod.namespace).catch(() => null);
    if (r.code !== 0) throw new Error(`CNI DEL of ${pod.namespace}/${pod.name} failed (exit ${r.code}): ${r.stdout.trim()} ${r.stderr.trim()}`);
  }

  podsOn(node: SimNode): SimPod[] {
    return this.pods.filter((p) => p.node === node);
  }

  // ---- test servers ------------------------------------------------------------------------------

  /** Starts pod-server.mjs in a namespace (a pod's, the outside's): see that file for what it answers. */
  async serve(netns: string, port = POD_PORT): Promise<void> {
    const key = `${netns}:${port}`;
    if (this.servers.has(key)) return;
    const proc = spawn('ip', ['netns', 'exec', netns, process.execPath, POD_SERVER, String(port)], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.servers.set(key, proc);
    proc.on('error', () => {});
    await new Promise<void>((resolvePromise, reject) => {
      let err = '';
      proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
      proc.stdout!.setEncoding('utf8').once('data', () => resolvePromise());
      proc.once('exit', (code) => reject(new Error(`pod server in ${netns} exited (${code}): ${err.trim()}`)));
    });
    this.saveState();
  }

  private stopServer(netns: string): void {
    for (const [key, proc] of this.servers) {
      if (!key.startsWith(`${netns}:`)) continue;
      proc.kill('SIGKILL');
      this.servers.delete(key);
    }
  }

  // ---- teardown ----------------------------------------------------------------------------------

  private removeNetns(name: string): void {
    trySh('ip', ['netns', 'del', name]);
    const i = this.namespaces.indexOf(name);
    if (i >= 0) this.namespaces.splice(i, 1);
  }

  /** Processes still running in our namespaces (ones this simulator started: servers, probes). */
  private leftoverPids(): number[] {
    const pids: number[] = [];
    for (const ns of this.namespaces) {
      for (const p of trySh('ip', ['netns', 'pids', ns]).stdout.split('\n')) if (/^\d+$/.test(p.trim())) pids.push(Number(p));
    }
    return pids;
  }

  /** Removes everything: pods (CNI DEL), servers, agents, the API server, namespaces, files. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const proc of this.servers.values()) proc.kill('SIGKILL');
    this.servers.clear();
    await Promise.allSettled([...this.pods].map((p) => this.deletePod(p)));
    await Promise.allSettled(this.nodes.map((n) => n.stopAgent('SIGTERM', 3000)));
    await this.apiControl?.close().catch(() => {});
    for (const pid of this.leftoverPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    for (const ns of [...this.namespaces].reverse()) this.removeNetns(ns);
    rmSync(this.root, { recursive: true, force: true });
    rmSync(this.stateFile, { force: true });
    live.delete(this);
  }

  /** The last resort at process exit: SIGKILL, delete namespaces and files, all synchronously. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const proc of this.servers.values()) proc.kill('SIGKILL');
    for (const n of this.nodes) n.killAgentSync();
    this.apiControl?.killSync();
    for (const pid of this.leftoverPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    for (const ns of [...this.namespaces].reverse()) trySh('ip', ['netns', 'del', ns]);
    rmSync(this.root, { recursive: true, force: true });
    rmSync(this.stateFile, { force: true });
    live.delete(this);
  }

  get stateFile(): string {
    return join(STATE_DIR, `${this.base}.json`);
  }

  /** Records what to clean up should this process die without tearing down (cli.ts down). */
  saveState(): void {
    if (this.destroyed) return;
    mkdirSync(STATE_DIR, { recursive: true });
    const state = {
      base: this.base,
      pid: process.pid,
      root: this.root,
      namespaces: this.namespaces,
      pids: [...this.nodes.flatMap((n) => n.agentPids), ...(this.apiControl?.pid ? [this.apiControl.pid] : []), ...[...this.servers.values()].flatMap((p) => (p.pid ? [p.pid] : []))],
    };
    writeFileSync(this.stateFile, `${JSON.stringify(state)}\n`);
  }
}

/** Whether a process runs (a zombie, dead but not yet reaped, does not). */
function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Cleans up after simulators that died without tearing down (their state files in STATE_DIR):
 * only those whose process is gone, unless `all`. Returns the bases cleaned.
 */
export function cleanupLeftovers(opts: { all?: boolean; prefix?: string } = {}): string[] {
  if (!existsSync(STATE_DIR)) return [];
  const cleaned: string[] = [];
  for (const file of readdirSync(STATE_DIR)) {
    if (!file.endsWith('.json')) continue;
    const path = join(STATE_DIR, file);
    let state: { base: string; pid: number; root: string; namespaces: string[]; pids: number[] };
    try {
      state = JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      rmSync(path, { force: true });
      continue;
    }
    if (opts.prefix !== undefined && !state.base.startsWith(opts.prefix)) continue;
    if (processAlive(state.pid) && !opts.all) continue;
    // Only processes that still run inside this simulator's namespaces are killed: a recorded pid
    // may have been reused by an unrelated process since.
    const inOurNamespaces = new Set<number>();
    for (const ns of state.namespaces) {
      for (const p of trySh('ip', ['netns', 'pids', ns]).stdout.split('\n')) if (/^\d+$/.test(p.trim())) inOurNamespaces.add(Number(p));
    }
    for (const pid of inOurNamespaces) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const ns of [...state.namespaces].reverse()) trySh('ip', ['netns', 'del', ns]);
    if (state.root.startsWith(tmpdir())) rmSync(state.root, { recursive: true, force: true });
    rmSync(path, { force: true });
    cleaned.push(state.base);
  }
  return cleaned;
}

export { sleep, waitFor };
