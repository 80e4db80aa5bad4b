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
// The layout is in topology.ts, the API server's control channel in api-control.ts, a node in
// node.ts, the namespaces and links in network.ts, teardown at exit in cleanup.ts; this file
// re-exports them so that callers import the simulator from here.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiControl } from './api-control.ts';
import { installExitHook, live } from './cleanup.ts';
import { run, sh, sleep, trySh, waitFor } from './exec.ts';
import { buildNetwork, writeKubeconfig } from './network.ts';
import { SimNode } from './node.ts';
import { SIM_OFFLOAD_SIZE } from './offload.ts';
import {
  API_IP,
  API_PORT,
  cniExecutableFor,
  DEFAULT_STRAND,
  DEPLOY_MANIFEST,
  POD_PORT,
  POD_SERVER,
  STATE_DIR,
  type SimBackend,
  type SimContainerPort,
  type SimOptions,
  type SimPod,
} from './topology.ts';

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
    if (!/^[a-z0-9]{1,5}$/.test(opts.prefix))
      throw new Error(`prefix ${JSON.stringify(opts.prefix)}: 1 to 5 characters of [a-z0-9]`);
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
      buildNetwork(c, (name) => c.addNetns(name));
      c.say(
        `network: switch ${c.switchNetns}, outside ${c.outsideNetns}, nodes ${c.nodes.map((n) => n.netns).join(' ')}`,
      );
      c.apiControl = await ApiControl.start(c.switchNetns, API_IP, API_PORT, c.rbacManifest);
      c.saveState();
      writeKubeconfig(c);
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
    const n =
      typeof nameOrIndex === 'number'
        ? this.nodes[nameOrIndex - 1]
        : this.nodes.find((x) => x.name === nameOrIndex || x.netns === nameOrIndex);
    if (!n) throw new Error(`no node ${nameOrIndex}`);
    return n;
  }

  // ---- network -----------------------------------------------------------------------------------

  private addNetns(name: string): void {
    sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  }

  // ---- agents ------------------------------------------------------------------------------------

  /** Waits until every running agent answers /readyz with 200 (the bound is for a loaded 2-core CI
   * machine: three agents starting beside the suite's other files took over 30 s there). */
  async waitReady(timeoutMs = 75_000): Promise<void> {
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
      // What each agent still waits for, in its own words (its /readyz reasons), then its log.
      const said = async (n: SimNode): Promise<string> =>
        n.agentRunning ? (await n.health('/readyz').catch((e: Error) => ({ body: e.message }))).body.trim() : 'exited';
      const detail = (
        await Promise.all(
          [...pending].map(async (n) => `--- ${n.name} (readyz: ${JSON.stringify(await said(n))})\n${n.logTail(8)}`),
        )
      ).join('\n');
      throw new Error(`${(err as Error).message}\n${detail}`);
    }
  }

  /**
   * Waits until every node whose agent runs and whose Node exists has a route to every other
   * existing Node's pod CIDR (backend-agnostic convergence).
   */
  async waitRoutes(timeoutMs = 20_000): Promise<void> {
    await waitFor(
      async () => (await this.missingRoutes()).length === 0,
      timeoutMs,
      'routes between all nodes',
      100,
    ).catch(async (err: Error) => {
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
    const list = JSON.parse(readFileSync(path, 'utf8')) as {
      name: string;
      cniVersion: string;
      plugins: Record<string, unknown>[];
    };
    return { ...(list.plugins[0] as Record<string, unknown>), name: list.name, cniVersion: list.cniVersion };
  }

  private cniEnv(
    pod: Pick<SimPod, 'containerId' | 'netns' | 'namespace' | 'name' | 'uid' | 'node'>,
    command: 'ADD' | 'DEL' | 'CHECK',
  ): NodeJS.ProcessEnv {
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
      spec: {
        nodeName: node.name,
        containers: [{ name: 'main', image: 'strand-sim/pause', ...(opts.ports ? { ports: opts.ports } : {}) }],
      },
      status: { phase: 'Pending', hostIP: node.underlayIp },
    });
    const uid = created.metadata.uid ?? randomUUID();
    this.addNetns(netns);
    await opts.beforeAdd?.(netns);
    const draft = { name, namespace, uid, node, netns, containerId };
    const r = await run('ip', ['netns', 'exec', node.netns, join(node.binDir, 'strand')], {
      env: this.cniEnv(draft, 'ADD'),
      input: JSON.stringify(netconf),
      timeoutMs: 30_000,
    });
    if (r.code !== 0) {
      this.removeNetns(netns);
      await this.api.delete('pods', name, namespace).catch(() => null);
      throw new Error(
        `CNI ADD of ${namespace}/${name} on ${node.name} failed (exit ${r.code}): ${r.stdout.trim()} ${r.stderr.trim()}`,
      );
    }
    const result = JSON.parse(r.stdout) as { ips?: { address: string }[] };
    const ips = (result.ips ?? [])
      .map((i) => i.address.split('/')[0] as string)
      .sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')));
    const pod: SimPod = { ...draft, ips, ip: ips[0] ?? '', netconf, result: result as Record<string, unknown> };
    this.pods.push(pod);
    await this.api.patch(
      'pods',
      name,
      { status: { phase: 'Running', podIP: pod.ip, podIPs: ips.map((ip) => ({ ip })) } },
      { namespace, type: 'merge', subresource: 'status' },
    );
    return pod;
  }

  /** Creates the namespace if it does not exist, labelled kubernetes.io/metadata.name as the API server does. */
  async ensureNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
    if (this.knownNamespaces.has(name)) return;
    if (!(await this.api.get('namespaces', name))) {
      await this.api.create('namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } },
      });
    }
    this.knownNamespaces.add(name);
  }

  /** CNI DEL (with the ADD's config and result, as a runtime does), the Pod object and the namespace. */
  async deletePod(pod: SimPod): Promise<void> {
    const i = this.pods.indexOf(pod);
    if (i >= 0) this.pods.splice(i, 1);
    this.stopServer(pod.netns);
    const netconf = { ...pod.netconf, prevResult: pod.result };
    const r = await run('ip', ['netns', 'exec', pod.node.netns, join(pod.node.binDir, 'strand')], {
      env: this.cniEnv(pod, 'DEL'),
      input: JSON.stringify(netconf),
      timeoutMs: 30_000,
    });
    this.removeNetns(pod.netns);
    await this.apiControl?.delete('pods', pod.name, pod.namespace).catch(() => null);
    if (r.code !== 0)
      throw new Error(
        `CNI DEL of ${pod.namespace}/${pod.name} failed (exit ${r.code}): ${r.stdout.trim()} ${r.stderr.trim()}`,
      );
  }

  podsOn(node: SimNode): SimPod[] {
    return this.pods.filter((p) => p.node === node);
  }

  // ---- test servers ------------------------------------------------------------------------------

  /** Starts pod-server.mjs in a namespace (a pod's, the outside's): see that file for what it answers. */
  async serve(netns: string, port = POD_PORT): Promise<void> {
    const key = `${netns}:${port}`;
    if (this.servers.has(key)) return;
    const proc = spawn('ip', ['netns', 'exec', netns, process.execPath, POD_SERVER, String(port)], {
      env: { PATH: process.env.PATH },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
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
      for (const p of trySh('ip', ['netns', 'pids', ns]).stdout.split('\n'))
        if (/^\d+$/.test(p.trim())) pids.push(Number(p));
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
      pids: [
        ...this.nodes.flatMap((n) => n.agentPids),
        ...(this.apiControl?.pid ? [this.apiControl.pid] : []),
        ...[...this.servers.values()].flatMap((p) => (p.pid ? [p.pid] : [])),
      ],
    };
    writeFileSync(this.stateFile, `${JSON.stringify(state)}\n`);
  }
}

export * from './topology.ts';
export { ApiControl } from './api-control.ts';
export { cleanupLeftovers, installSignalCleanup } from './cleanup.ts';
export { SimNode } from './node.ts';
export { sleep, waitFor };
