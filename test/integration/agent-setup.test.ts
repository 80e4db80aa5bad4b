// `strand agent` as a process (dist/strand), in a test node namespace, against the test API server:
// waiting for a pod CIDR, writing the node state and the conflist atomically, the NetworkUnavailable
// condition, a pod added through the plugin, an API server outage, malformed objects and SIGTERM.
// The tests of this file run in order on one agent: each starts from where the previous one left.
//
// The node namespace has a veth "underlay" (MTU 1400) with an address and a default route, so that
// the agent finds its underlay the way it does on a node. The API server listens on the root
// namespace's loopback, which the node namespace cannot reach: a TCP proxy listens inside the node
// namespace (its socket is created there with setns) and forwards to it.
//
// The API server authorizes by deploy/strand.yaml's RBAC and the agent's kubeconfig is its
// DaemonSet ServiceAccount's, as on a cluster: the last test checks that the agent, over its whole
// life here, was refused nothing and used every permission the ClusterRole grants (least privilege).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withNetns } from '../../src/kernel/index.ts';
import { podChainName } from '../../src/policy/index.ts';
import { REFERENCE_CNI_DIR, STRAND, STRAND_CNI, STRAND_IPAM } from '../support/cni.ts';
import { TestApiServer, type KubeObject } from '../kit/k8s-api-server.ts';
import { expectLeastPrivilege } from '../support/least-privilege.ts';
import { writeVersionedPlugin } from '../support/libcni.ts';
import { testName } from '../support/names.ts';
import { eventually, PluginFixture, randomSubnet4, type IpLink } from '../support/plugin-fixture.ts';
import { ipJson, sh } from '../support/sh.ts';

const run = promisify(execFile);
const REAL_NFT = sh('sh', ['-c', 'command -v nft']).trim();
const NODE = 'node-a';
const UNDERLAY_MTU = 1400;

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A node namespace running `strand agent`, with what a test needs to look at it. */
class AgentNode {
  readonly fx = new PluginFixture({ hostNetns: true });
  readonly confDir: string;
  /** The CNI bin dir as a node has it: strand, strand-ipam and Debian's portmap. */
  readonly binDir: string;
  readonly agentLog: string;
  readonly underlay = testName('ul');
  private proxy: Server | undefined;
  private readonly proxied = new Set<Socket>();
  proc: ChildProcess | undefined;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  stderr = '';
  readonly nftSpy: { dir: string; calls: string };

  constructor() {
    this.confDir = join(this.fx.dir, 'net.d');
    this.binDir = join(this.fx.dir, 'cni-bin');
    this.agentLog = join(this.fx.dir, 'agent.log');
    mkdirSync(this.confDir, { recursive: true });
    mkdirSync(this.binDir, { recursive: true });
    symlinkSync(STRAND_CNI, join(this.binDir, 'strand'));
    symlinkSync(STRAND_IPAM, join(this.binDir, 'strand-ipam'));
    symlinkSync(join(REFERENCE_CNI_DIR, 'portmap'), join(this.binDir, 'portmap'));
    const dir = join(this.fx.dir, 'nft-spy');
    mkdirSync(dir);
    const calls = join(this.fx.dir, 'nft-calls');
    const real = sh('sh', ['-c', 'command -v nft']).trim();
    writeFileSync(join(dir, 'nft'), `#!/bin/sh\necho "$$ $*" >> '${calls}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
    this.nftSpy = { dir, calls };
  }

  /** The `nft` calls the agent made (through PATH), one line each. */
  nftCalls(): string[] {
    return existsSync(this.nftSpy.calls)
      ? readFileSync(this.nftSpy.calls, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
      : [];
  }

  get ns(): string {
    return (this.fx.host as NonNullable<PluginFixture['host']>).name;
  }

  get nsPath(): string {
    return `/run/netns/${this.ns}`;
  }

  /** The underlay: a veth pair inside the namespace, one end with 198.18.0.2/24 and the default route. */
  setUpUnderlay(): void {
    const peer = testName('ulp');
    sh('ip', [
      '-n',
      this.ns,
      'link',
      'add',
      this.underlay,
      'mtu',
      String(UNDERLAY_MTU),
      'type',
      'veth',
      'peer',
      'name',
      peer,
      'mtu',
      String(UNDERLAY_MTU),
    ]);
    sh('ip', ['-n', this.ns, 'addr', 'add', '198.18.0.2/24', 'dev', this.underlay]);
    sh('ip', ['-n', this.ns, 'link', 'set', this.underlay, 'up']);
    sh('ip', ['-n', this.ns, 'link', 'set', peer, 'up']);
    sh('ip', ['-n', this.ns, 'route', 'add', 'default', 'via', '198.18.0.1', 'dev', this.underlay]);
  }

  /** Forwards 127.0.0.1:<port> inside the namespace to the API server; returns the port. */
  startProxy(api: TestApiServer): number {
    const server = createServer((client) => {
      this.proxied.add(client);
      const upstream = connect(api.port, '127.0.0.1');
      this.proxied.add(upstream);
      client.pipe(upstream).pipe(client);
      const drop = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    // listen() without a host binds synchronously (no address lookup), so the socket is made in the
    // node namespace; accepted connections stay there, the upstream ones are made back outside.
    withNetns(this.nsPath, () => void server.listen(0));
    this.proxy = server;
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the proxy did not bind');
    return address.port;
  }

  startAgent(kubeconfig: string, extra: string[] = []): void {
    const args = [
      'netns',
      'exec',
      this.ns,
      STRAND,
      'agent',
      '--kubeconfig',
      kubeconfig,
      '--node-name',
      NODE,
      '--cluster-cidr',
      '10.250.0.0/16',
      '--cni-conf-dir',
      this.confDir,
      '--cni-bin-dir',
      this.binDir,
      '--state-dir',
      this.fx.stateDir,
      '--ipam-data-dir',
      this.fx.dataDir,
      '--cni-log-file',
      this.fx.logFile,
      '--log-file',
      this.agentLog,
      '--bridge',
      this.fx.bridge,
      '--health-addr',
      '127.0.0.1:9797',
      ...extra,
    ];
    // An `nft` first on PATH records each call and runs the real one: the agent must make none (issue 17).
    const proc = spawn('ip', args, {
      env: { PATH: `${this.nftSpy.dir}:${process.env.PATH}` },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exit = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    this.proc = proc;
  }

  logs(): LogLine[] {
    if (!existsSync(this.agentLog)) return [];
    return readFileSync(this.agentLog, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as LogLine);
  }

  async waitForLog(match: (l: LogLine) => boolean, what: string, timeoutMs = 10_000): Promise<LogLine> {
    let found: LogLine | undefined;
    try {
      await eventually(() => (found = this.logs().find(match)) !== undefined, timeoutMs, what);
    } catch (err) {
      throw new Error(
        `${(err as Error).message}\nagent stderr: ${this.stderr}\nagent log:\n${this.logs()
          .map((l) => JSON.stringify(l))
          .join('\n')}`,
      );
    }
    return found as LogLine;
  }

  /** GET on the agent's health server, from inside the namespace. */
  async get(path: string): Promise<{ status: number; body: string }> {
    const { stdout } = await run('ip', [
      'netns',
      'exec',
      this.ns,
      'curl',
      '-s',
      '-m',
      '5',
      '-w',
      '\n%{http_code}',
      `http://127.0.0.1:9797${path}`,
    ]);
    const cut = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
  }

  links(): IpLink[] {
    return ipJson<IpLink[]>(['-d', 'link', 'show'], this.ns);
  }

  sysctl(key: string): string {
    return sh('ip', ['netns', 'exec', this.ns, 'cat', `/proc/sys/${key.replace(/\./g, '/')}`]).trim();
  }

  async teardown(): Promise<void> {
    if (this.proc?.pid !== undefined && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL');
      await this.exit;
    }
    for (const s of this.proxied) s.destroy();
    await new Promise<void>((resolve) => (this.proxy ? this.proxy.close(() => resolve()) : resolve()));
    if (process.env.STRAND_TEST_KEEP_LOG)
      writeFileSync(process.env.STRAND_TEST_KEEP_LOG, existsSync(this.agentLog) ? readFileSync(this.agentLog) : '');
    this.fx.teardown();
  }
}

let api: TestApiServer;
let node: AgentNode;
let podCidr: string;
let kubeconfig: string;

const statePath = () => join(node.fx.stateDir, 'node.json');
const conflistPath = () => join(node.confDir, '10-strand.conflist');

function localPod(name: string, ip: string, labels: Record<string, string> = {}): KubeObject {
  return {
    metadata: { name, namespace: 'default', labels },
    spec: { nodeName: NODE, containers: [{ name: 'c', image: 'pause', ports: [{ containerPort: 8080 }] }] },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
  };
}

function fileStamp(path: string): string {
  const st = statSync(path);
  return `${st.ino}:${st.mtimeMs}:${readFileSync(path, 'utf8')}`;
}

beforeAll(async () => {
  api = await TestApiServer.start({ rbac: {} });
  // As the kind recipe applies it (README): the agent then lists and watches ClusterNetworkPolicies.
  api.installCrd('clusternetworkpolicies');
  node = new AgentNode();
  node.setUpUnderlay();
  const port = node.startProxy(api);
  // The kubeconfig names the proxy's port inside the namespace.
  kubeconfig = join(node.fx.dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    api.kubeconfigYaml({ token: api.agentToken }).replace(api.url, `http://127.0.0.1:${port}`),
    { mode: 0o600 },
  );
  podCidr = randomSubnet4();
  api.create('namespaces', { metadata: { name: 'default' } });
  api.create('nodes', {
    metadata: { name: NODE },
    spec: {},
    status: {
      conditions: [
        { type: 'NetworkUnavailable', status: 'True', reason: 'NoRouteCreated' },
        { type: 'Ready', status: 'True' },
      ],
    },
  });
  api.create('nodes', { metadata: { name: 'node-b' }, spec: { podCIDR: '10.250.99.0/24' } });
});

afterAll(async () => {
  await node?.teardown();
  await api?.close();
});

describe('strand agent in a node namespace', () => {
  it('waits for the node to get a pod CIDR, saying so, and writes nothing meanwhile', async () => {
    node.startAgent(kubeconfig);
    const waiting = await node.waitForLog(
      (l) => typeof l.waitingFor === 'string' && l.msg.includes('to get a pod CIDR'),
      'the waiting log line',
    );
    expect(waiting.msg).toContain(`node ${NODE} to get a pod CIDR`);
    expect(existsSync(statePath())).toBe(false);
    expect(existsSync(conflistPath())).toBe(false);
    const ready = await node.get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toContain('pod CIDR');
    expect((await node.get('/healthz')).status).toBe(200);
    // The pod-start socket is served from the start.
    expect(statSync(join(node.fx.stateDir, 'agent.sock')).isSocket()).toBe(true);
  });

  it('writes the node state and the conflist atomically once the CIDR is assigned, and marks the network available', async () => {
    // Read both files in a tight loop while the agent writes them: every read must be whole.
    let reads = 0;
    let partial: string | undefined;
    let reading = true;
    const reader = (async () => {
      while (reading) {
        for (const p of [statePath(), conflistPath()]) {
          let text: string;
          try {
            text = readFileSync(p, 'utf8');
          } catch {
            continue;
          }
          reads++;
          try {
            JSON.parse(text);
          } catch {
            partial = text;
          }
        }
        await new Promise((r) => setImmediate(r));
      }
    })();

    api.patch('nodes', NODE, { spec: { podCIDR: podCidr, podCIDRs: [podCidr] } });
    await node.waitForLog((l) => l.msg === 'wrote the CNI configuration list', 'the conflist write');
    await new Promise((r) => setTimeout(r, 200));
    reading = false;
    await reader;
    expect(partial).toBeUndefined();
    expect(reads).toBeGreaterThan(0);

    const state = JSON.parse(readFileSync(statePath(), 'utf8'));
    expect(state).toMatchObject({
      version: 1,
      nodeName: NODE,
      podCIDRs: [podCidr],
      clusterCIDRs: ['10.250.0.0/16'],
      mtu: UNDERLAY_MTU - 50,
      backend: 'vxlan',
      agentSocket: join(node.fx.stateDir, 'agent.sock'),
    });
    const conflist = JSON.parse(readFileSync(conflistPath(), 'utf8'));
    // What strand and Debian's portmap (reference plugins 1.1.1) both support.
    expect(conflist).toMatchObject({ cniVersion: '1.0.0', cniVersions: ['0.3.1', '0.4.0', '1.0.0'], name: 'strand' });
    expect(conflist.plugins.map((p: { type: string }) => p.type)).toEqual(['strand', 'portmap']);
    expect(conflist.plugins[0]).toMatchObject({
      bridge: node.fx.bridge,
      stateDir: node.fx.stateDir,
      logFile: node.fx.logFile,
      ipam: { type: 'strand-ipam', subnet: 'usePodCidr', stateDir: node.fx.stateDir, dataDir: node.fx.dataDir },
    });

    const underlay = await node.waitForLog((l) => l.msg === 'underlay interface', 'the underlay log line');
    expect(underlay).toMatchObject({ iface: node.underlay, mtu: UNDERLAY_MTU, addresses: ['198.18.0.2'] });

    // The bridge, its gateway address, forwarding and br_netfilter, in the node namespace only.
    const bridge = node.links().find((l) => l.ifname === node.fx.bridge);
    expect(bridge?.linkinfo?.info_kind).toBe('bridge');
    expect(bridge?.mtu).toBe(UNDERLAY_MTU - 50);
    const gateway = `${podCidr.split('/')[0]?.replace(/\.0$/, '.1')}`;
    expect(node.fx.addresses(node.fx.bridge, node.ns).map((a) => a.local)).toContain(gateway);
    expect(node.sysctl('net.ipv4.ip_forward')).toBe('1');
    if (existsSync('/proc/sys/net/bridge')) expect(node.sysctl('net.bridge.bridge-nf-call-iptables')).toBe('1');

    await api.waitFor(
      () => {
        const conditions =
          (api.get('nodes', NODE)?.status as { conditions?: { type: string; status: string; reason?: string }[] })
            .conditions ?? [];
        const c = conditions.find((x) => x.type === 'NetworkUnavailable');
        return c?.status === 'False' && c.reason === 'StrandIsUp';
      },
      10_000,
      'NetworkUnavailable=False',
    );
    // The strategic merge kept the other conditions.
    const conditions = (api.get('nodes', NODE)?.status as { conditions: { type: string }[] }).conditions;
    expect(conditions.map((c) => c.type).sort()).toEqual(['NetworkUnavailable', 'Ready']);
    // The annotations' merge PATCH is sent apart from the condition's: wait for it (answered) rather
    // than race it.
    await api.waitFor(
      () => api.requestsMatching({ method: 'PATCH' }).some((p) => p.path === `/api/v1/nodes/${NODE}` && p.status !== 0),
      10_000,
      'the annotations merge patch',
    );
    const patches = api.requestsMatching({ method: 'PATCH' });
    expect(patches.find((p) => p.path.endsWith('/status'))).toMatchObject({
      path: `/api/v1/nodes/${NODE}/status`,
      contentType: 'application/strategic-merge-patch+json',
      status: 200,
    });
    // The backend's annotations go on the Node's metadata, by merge patch.
    expect(patches.find((p) => p.path === `/api/v1/nodes/${NODE}`)).toMatchObject({
      contentType: 'application/merge-patch+json',
      status: 200,
    });
    await api.waitFor(
      () =>
        (api.get('nodes', NODE)?.metadata as { annotations?: Record<string, string> }).annotations?.[
          'strand.dev/backend'
        ] === 'vxlan',
      10_000,
      'the strand.dev/backend annotation',
    );

    const ready = await node.get('/readyz');
    expect(ready).toEqual({ status: 200, body: 'ok\n' });
  });

  it("rewrites the conflist when a plugin in the bin dir changes: an older portmap, none, Debian's again", async () => {
    const conflist = () =>
      JSON.parse(readFileSync(conflistPath(), 'utf8')) as {
        cniVersion: string;
        cniVersions: string[];
        plugins: { type: string }[];
      };
    const portmap = join(node.binDir, 'portmap');
    const writes = () => node.logs().filter((l) => l.msg === 'wrote the CNI configuration list').length;
    const asked = () => node.logs().filter((l) => l.msg === 'CNI plugins asked for their versions').length;
    const before = { writes: writes(), asked: asked() };
    // No plugin changed: passes (the pod CIDR patch, the annotations) did not ask again.
    expect(before.asked).toBe(1);

    // A portmap that speaks only 0.3.1 replaces Debian's: the list follows it down.
    rmSync(portmap);
    writeVersionedPlugin(node.binDir, 'portmap', ['0.1.0', '0.2.0', '0.3.0', '0.3.1']);
    await eventually(() => conflist().cniVersion === '0.3.1', 10_000, 'the conflist at 0.3.1');
    expect(conflist()).toMatchObject({ cniVersion: '0.3.1', cniVersions: ['0.3.1'] });
    expect(conflist().plugins.map((p) => p.type)).toEqual(['strand', 'portmap']);
    const line = await node.waitForLog(
      (l) => l.msg === 'wrote the CNI configuration list' && l.cniVersion === '0.3.1',
      'the rewrite log line',
    );
    expect(line).toMatchObject({ cniVersions: ['0.3.1'], plugins: ['strand', 'portmap'] });
    expect((await node.get('/readyz')).status).toBe(200);

    // portmap removed: the list goes on without it, and the agent says so (log and /readyz).
    rmSync(portmap);
    await eventually(() => conflist().plugins.length === 1, 10_000, 'the conflist without portmap');
    const warn = await node.waitForLog(
      (l) => l.level === 40 && l.msg.startsWith('CNI plugin portmap is not in'),
      'the missing-plugin warning',
    );
    expect(warn.msg).toContain('hostPort');
    const notReady = await node.get('/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.body).toContain(`CNI plugin portmap is not in ${node.binDir}`);
    // Pods still start: the plugin's STATUS is not failed for a chained plugin left out.
    const status = await node.fx.runAsync({
      command: 'STATUS',
      config: { cniVersion: '1.1.0', name: 'strand', ...conflist().plugins[0] },
    });
    expect(status.code, status.stdout + status.stderr).toBe(0);

    // Debian's portmap back: as at the start, and ready again.
    symlinkSync(join(REFERENCE_CNI_DIR, 'portmap'), portmap);
    await eventually(
      () => conflist().plugins.length === 2 && conflist().cniVersion === '1.0.0',
      10_000,
      "the conflist with Debian's portmap",
    );
    expect(conflist()).toMatchObject({ cniVersion: '1.0.0', cniVersions: ['0.3.1', '0.4.0', '1.0.0'] });
    await eventually(
      () => node.logs().some((l) => l.msg.startsWith('every CNI plugin of the configuration list')),
      10_000,
      'the all-clear',
    );
    expect(await node.get('/readyz')).toEqual({ status: 200, body: 'ok\n' });
    expect(writes()).toBe(before.writes + 3);
  });

  it('knows a pod added through the plugin with its IP and host veth', async () => {
    const conflist = JSON.parse(readFileSync(conflistPath(), 'utf8'));
    // As a runtime does: the list's plugin entry with name and cniVersion injected.
    const config = { cniVersion: conflist.cniVersion, name: conflist.name, ...conflist.plugins[0] };
    const pod = node.fx.pod();
    const containerId = testName('ctr');
    const out = await node.fx.runAsync({
      command: 'ADD',
      config,
      netns: pod.path,
      containerId,
      ifname: 'eth0',
      args: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1;K8S_POD_INFRA_CONTAINER_ID=x;K8S_POD_UID=u-1',
    });
    expect(out.code, out.stdout + out.stderr).toBe(0);
    const ip = (out.json.ips[0].address as string).split('/')[0] as string;
    const hostVeth = out.json.interfaces[1].name as string;
    // The list runs at 1.0.0 (Debian's portmap), whose results carry no interface MTU: the kernel's.
    expect(config.cniVersion).toBe('1.0.0');
    expect(node.fx.link('eth0', pod.name)?.mtu).toBe(UNDERLAY_MTU - 50);

    // The plugin's notice: known before the API shows the pod.
    const notice = await node.waitForLog(
      (l) => l.msg === 'pod-start notice from the plugin' && l.name === 'web-1',
      'the notice',
    );
    expect(notice).toMatchObject({ namespace: 'default', containerId, hostVeth, ips: [ip] });
    await node.waitForLog(
      (l) => l.msg === 'pod on this node' && l.name === 'web-1' && l.source === 'plugin',
      'the pod from the notice',
    );

    // kubelet then reports the pod's IP: the agent joins it with what it knows.
    api.create('pods', localPod('web-1', ip, { app: 'web' }));
    const known = await node.waitForLog(
      (l) => l.msg === 'pod on this node' && l.name === 'web-1' && l.source === 'api+plugin',
      'the pod from the API',
    );
    expect(known).toMatchObject({ namespace: 'default', ips: [ip], hostVeth, containerId });
    // Pods of other nodes are not this node's.
    api.create('pods', { ...localPod('elsewhere', '10.250.99.7'), spec: { nodeName: 'node-b', containers: [] } });
    await new Promise((r) => setTimeout(r, 300));
    expect(node.logs().some((l) => l.msg === 'pod on this node' && l.name === 'elsewhere')).toBe(false);

    const metrics = await node.get('/metrics');
    expect(metrics.body).toMatch(/strand_pod_start_notices_total\{result="ok"\} 1/);
    expect(metrics.body).toMatch(/strand_ipam_addresses\{network="strand",family="4",state="used"\} 1/);
    expect(metrics.body).toMatch(/strand_reconcile_total\{result="ok"\} \d+/);
  });

  it('enforces a NetworkPolicy, repairs drift and serves counters without starting any nft process', async () => {
    const chain = podChainName({ namespace: 'default', name: 'web-1' }, 'ingress');
    const nft = (...args: string[]) => sh('ip', ['netns', 'exec', node.ns, REAL_NFT, ...args]);
    api.create('networkpolicies', {
      metadata: { name: 'web-from-db', namespace: 'default' },
      spec: {
        podSelector: { matchLabels: { app: 'web' } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ podSelector: { matchLabels: { app: 'db' } } }], ports: [{ port: 8080 }] }],
      },
    });
    const rules = () => {
      try {
        return nft('-j', 'list', 'chain', 'inet', 'strand', chain).split('"rule"').length - 1;
      } catch {
        return -1;
      }
    };
    await eventually(() => rules() > 0, 10_000, `the pod's chain ${chain}`);
    const applied = rules();
    // The skeleton's neighbour discovery rule (an anonymous set) went over netlink too.
    expect(nft('list', 'chain', 'inet', 'strand', 'agent-pol-forward')).toMatch(/icmpv6 type \{ nd-router-solicit/);
    // Drift: the chain flushed by hand (the real nft, not through the agent's PATH) is rebuilt.
    nft('flush', 'chain', 'inet', 'strand', chain);
    expect(rules()).toBe(0);
    await eventually(() => rules() === applied, 20_000, `the repair of ${chain}`);
    const metrics = await node.get('/metrics');
    expect(metrics.body).toMatch(/strand_policy_rebuilds_total\{reason="drift"\} [1-9]/);
    // The scrape reads the rules' counters from the kernel (policy-counters.ts) for these families.
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/# TYPE strand_policy_pod_packets_total counter/);
    expect(node.nftCalls()).toEqual([]);
  });

  it('rides out an API server outage without touching the node, and catches up afterwards', async () => {
    const before = { state: fileStamp(statePath()), conflist: fileStamp(conflistPath()) };
    const bridgeBefore = node.links().find((l) => l.ifname === node.fx.bridge)?.ifindex;
    api.create('pods', localPod('doomed', `${podCidr.split('/')[0]?.replace(/\.0$/, '.200')}`));
    await node.waitForLog((l) => l.msg === 'pod on this node' && l.name === 'doomed', 'the doomed pod');
    const logCount = node.logs().length;

    await api.stop();
    await node.waitForLog((l) => l.msg.includes('list/watch failed; retrying'), 'the agent to notice the outage');
    // Changes while the agent cannot see them; compaction makes its resume a 410 and a relist.
    api.patch('pods', 'web-1', { metadata: { labels: { app: 'web', tier: 'front' } } });
    api.create('nodes', { metadata: { name: 'node-c' }, spec: { podCIDR: '10.250.98.0/24' } });
    api.create('pods', localPod('newcomer', `${podCidr.split('/')[0]?.replace(/\.0$/, '.201')}`));
    api.delete('pods', 'doomed');
    api.compact();
    await new Promise((r) => setTimeout(r, 1500));
    // The agent kept serving: alive, still ready (the node is set up), files untouched.
    expect((await node.get('/healthz')).status).toBe(200);
    expect((await node.get('/readyz')).status).toBe(200);
    await api.start();

    await node.waitForLog(
      (l) => l.msg === 'pod on this node' && l.name === 'newcomer',
      'the pod created during the outage',
      20_000,
    );
    await node.waitForLog(
      (l) => l.msg === 'pod no longer on this node' && l.name === 'doomed',
      'the pod deleted during the outage',
      20_000,
    );
    await api.waitFor(
      () => api.openWatches() === 5,
      20_000,
      'the five watches (ClusterNetworkPolicy too) to be open again',
    );
    expect(api.counters.watchesExpired).toBeGreaterThan(0);

    expect(fileStamp(statePath())).toBe(before.state);
    expect(fileStamp(conflistPath())).toBe(before.conflist);
    expect(node.links().find((l) => l.ifname === node.fx.bridge)?.ifindex).toBe(bridgeBefore);
    const later = node.logs().slice(logCount);
    expect(later.some((l) => l.msg === 'wrote the node state' || l.msg === 'wrote the CNI configuration list')).toBe(
      false,
    );
    const metrics = await node.get('/metrics');
    expect(metrics.body).toMatch(/strand_watch_restarts_total\{resource="pods"\} [1-9]/);
    expect(metrics.body).toMatch(/strand_api_errors_total\{resource="pods"\} [1-9]/);
  });

  it('skips malformed objects from the API with a log line and keeps running', async () => {
    api.injectMalformed('pods', { kind: 'Pod', spec: {} }, { namespace: 'default' });
    api.injectMalformed('pods', { metadata: { name: 'bad-spec', namespace: 'default' }, spec: 'not-an-object' });
    api.injectMalformed('pods', {
      metadata: { name: 'bad-containers', namespace: 'default' },
      spec: { nodeName: NODE, containers: 'x' },
    });
    api.injectMalformed('networkpolicies', { metadata: { name: 'bad-policy', namespace: 'default' }, spec: 42 });
    api.injectMalformed('nodes', 'a node that is a string');
    await node.waitForLog(
      (l) => l.msg.startsWith('skipped a malformed object') && l.name === 'bad-containers',
      'the skipped pod',
    );
    await node.waitForLog(
      (l) => l.msg.startsWith('skipped a malformed object') && l.name === 'bad-policy',
      'the skipped policy',
    );
    await node.waitForLog(
      (l) => l.msg.startsWith('skipped a malformed object') && l.resource === 'nodes',
      'the skipped node',
    );

    // And in a list: a relist sees them all again, and skips them again.
    const skippedBefore = node.logs().filter((l) => l.msg.startsWith('skipped a malformed object')).length;
    api.expireWatches({ resource: 'pods' });
    await eventually(
      () => node.logs().filter((l) => l.msg.startsWith('skipped a malformed object')).length >= skippedBefore + 3,
      10_000,
      'the relist',
    );

    // Still alive, and still taking in good objects.
    api.create('pods', localPod('after-bad', `${podCidr.split('/')[0]?.replace(/\.0$/, '.202')}`));
    await node.waitForLog(
      (l) => l.msg === 'pod on this node' && l.name === 'after-bad',
      'a good pod after the bad ones',
    );
    expect(node.proc?.exitCode).toBeNull();
    expect((await node.get('/healthz')).status).toBe(200);
  });

  it('stops on SIGTERM with status 0 and leaves the node network as it is', async () => {
    const state = fileStamp(statePath());
    const conflist = fileStamp(conflistPath());
    node.proc?.kill('SIGTERM');
    const exit = await node.exit;
    expect(exit, node.stderr).toEqual({ code: 0, signal: null });
    await node.waitForLog((l) => l.msg.startsWith('strand agent stopped'), 'the stop log line');
    expect(fileStamp(statePath())).toBe(state);
    expect(fileStamp(conflistPath())).toBe(conflist);
    const links = node.links();
    expect(links.some((l) => l.ifname === node.fx.bridge)).toBe(true);
    expect(links.filter((l) => l.master === node.fx.bridge)).toHaveLength(1);
    // The socket is the agent's to remove: a plugin finding none goes on standalone.
    expect(existsSync(join(node.fx.stateDir, 'agent.sock'))).toBe(false);
  });

  it('started no nft process over its whole life (start-up, pod starts, policies, drift, metrics, SIGTERM)', () => {
    expect(node.nftCalls()).toEqual([]);
  });

  it("was refused nothing under its ServiceAccount and used every permission of the manifest's ClusterRole", () => {
    expectLeastPrivilege(api.leastPrivilege());
  });
});
