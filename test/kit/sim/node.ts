// One simulated node: its namespace, directories and Node object, its agent process, and what its
// kernel holds (routes, neighbours, FDB, links), read with ip/bridge -j.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SimCluster } from './cluster.ts';
import { bridgeJson, ipJson, run, sh, trySh } from './exec.ts';
import {
  CLUSTER_CIDR,
  HEALTH_PORT,
  MGMT_PREFIX,
  ROUTER_IP,
  UNDERLAY_PREFIX,
  type FdbEntry,
  type KubeObject,
  type NeighEntry,
  type PeerEntries,
  type RouteEntry,
} from './topology.ts';

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
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'KubeletReady',
            message: 'simulated',
            lastHeartbeatTime: new Date().toISOString(),
            lastTransitionTime: new Date().toISOString(),
          },
        ],
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
      'netns',
      'exec',
      this.netns,
      // The agent dies with the simulator, whatever kills it.
      'setpriv',
      '--pdeathsig',
      'TERM',
      '--',
      c.strand,
      'agent',
      '--kubeconfig',
      c.kubeconfig,
      '--node-name',
      this.name,
      '--cluster-cidr',
      CLUSTER_CIDR,
      '--backend',
      c.backend,
      '--iface',
      'eth0',
      '--cni-bin-dir',
      this.binDir,
      '--cni-conf-dir',
      this.confDir,
      '--state-dir',
      this.stateDir,
      '--ipam-data-dir',
      this.ipamDir,
      '--health-addr',
      `127.0.0.1:${HEALTH_PORT}`,
      '--log-level',
      c.logLevel,
      '--log-file',
      this.agentLog,
      '--cni-log-file',
      this.cniLog,
      '--bridge',
      'cni0',
      ...(c.backend === 'vxlan' ? ['--vni', String(c.vni)] : []),
      ...c.agentArgs,
      ...this.agentArgs,
    ];
    const proc = spawn('ip', args, { env: { PATH: process.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
    this.agentStderr = '';
    proc
      .stderr!.setEncoding('utf8')
      .on('data', (d: string) => (this.agentStderr = (this.agentStderr + d).slice(-4000)));
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
    const r = await run(
      'ip',
      [
        'netns',
        'exec',
        this.netns,
        'curl',
        '-s',
        '-m',
        '2',
        '-w',
        '\n%{http_code}',
        `http://127.0.0.1:${HEALTH_PORT}${path}`,
      ],
      { timeoutMs: 5000 },
    );
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
    const fdb = this.fdb(dev).filter(
      (f) => (mac !== undefined && f.mac === mac) || (f.dst !== undefined && (peer.underlayIps ?? []).includes(f.dst)),
    );
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
      await this.cluster.api.patch(
        'nodes',
        this.name,
        { status: { addresses } },
        { type: 'merge', subresource: 'status' },
      );
    }
  }
}
