// The VXLAN and host-gw backends on the real kernel, with simulated nodes: each node is a network
// namespace on an underlay bridge that lives in a "switch" namespace (nothing touches the root
// namespace), with a pod bridge holding its pod CIDR's gateway and one pod namespace behind a veth.
// The backends run in this process, one per node, each on a netlink socket opened in its node's
// namespace, exactly as the simulator drives several agents. Peers come from Node objects built from
// the annotations setUp returns, through peerFromNode, as the agent will do.
import { spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  HostGwBackend,
  peersFromNodes,
  STRAND_ROUTE_PROTOCOL,
  VxlanBackend,
  vtepMacFor,
  type Backend,
  type PlanOp,
  type ReconcileReport,
  type SetUpResult,
} from '../../src/datapath/index.ts';
import { applyPlan, emptyReport } from '../../src/datapath/datapath.ts';
import { NetlinkSocket, writeSysctls } from '../../src/kernel/index.ts';
import { testName } from '../support/names.ts';
import { TestNetns } from '../support/netns.ts';
import { ipJson, sh, trySh } from '../support/sh.ts';

const UNDERLAY_MTU = 1500;
const VXLAN_MTU = UNDERLAY_MTU - 50;

interface SimNode {
  name: string;
  ns: TestNetns;
  nl: NetlinkSocket;
  underlay: string;
  underlayIp: string;
  underlayPrefix: number;
  podCidrs: string[];
  pod: TestNetns;
  podIps: string[];
  backend: Backend;
  setUp: SetUpResult;
}

interface ClusterOptions {
  /** IPv6 pod CIDRs next to the IPv4 ones (the underlay stays IPv4). */
  dualStack?: boolean;
  /** The third node's underlay address is on another subnet (198.18.1.0/24), reached by a route:
   * not on the same layer-2 segment as far as the backends can tell. */
  thirdOnOtherSubnet?: boolean;
  podMtu: number;
  makeBackend: (nl: NetlinkSocket) => Backend;
}

const rand = (n: number) => Math.floor(Math.random() * n);

class SimCluster {
  readonly nodes: SimNode[] = [];
  private readonly namespaces: TestNetns[] = [];
  private readonly sockets: NetlinkSocket[] = [];
  readonly octet = 128 + rand(120);
  readonly v6 = `fd00:${(1 + rand(0xfffe)).toString(16)}`;

  readonly opts: ClusterOptions;

  constructor(opts: ClusterOptions) {
    this.opts = opts;
  }

  private netns(kind: string): TestNetns {
    const ns = TestNetns.create(kind);
    this.namespaces.push(ns);
    // No duplicate address detection on the links made from here on: their IPv6 link-local
    // addresses are usable at once, and a first IPv6 ping does not race DAD.
    writeSysctls({ 'net.ipv6.conf.all.accept_dad': 0, 'net.ipv6.conf.default.accept_dad': 0 }, { netns: ns.path });
    return ns;
  }

  build(count: number): this {
    const sw = this.netns('sw');
    const bridge = testName('ubr');
    sh('ip', ['-n', sw.name, 'link', 'add', bridge, 'type', 'bridge']);
    sh('ip', ['-n', sw.name, 'link', 'set', bridge, 'up']);
    for (let i = 1; i <= count; i++) {
      const ns = this.netns('nd');
      const other = this.opts.thirdOnOtherSubnet === true && i === 3;
      const underlay = testName('ul');
      const swPort = testName('sp');
      sh('ip', ['-n', sw.name, 'link', 'add', swPort, 'type', 'veth', 'peer', 'name', underlay, 'netns', ns.name]);
      sh('ip', ['-n', sw.name, 'link', 'set', swPort, 'master', bridge, 'up']);
      const underlayIp = other ? `198.18.1.${i}` : `198.18.0.${i}`;
      this.ip(ns, ['addr', 'add', `${underlayIp}/24`, 'dev', underlay]);
      this.ip(ns, ['link', 'set', underlay, 'up']);
      if (this.opts.thirdOnOtherSubnet) {
        // Reachable through a route on the same wire, but outside every connected prefix.
        this.ip(ns, ['route', 'add', other ? '198.18.0.0/24' : '198.18.1.0/24', 'dev', underlay]);
      }
      writeSysctls({ 'net.ipv4.ip_forward': 1, 'net.ipv6.conf.all.forwarding': 1 }, { netns: ns.path });

      const podCidrs = [`10.${this.octet}.${i}.0/24`];
      if (this.opts.dualStack) podCidrs.push(`${this.v6}:${i}::/64`);
      const podBridge = testName('cbr');
      const hostVeth = testName('hv');
      const pod = this.netns('pod');
      const mtu = String(this.opts.podMtu);
      this.ip(ns, ['link', 'add', podBridge, 'mtu', mtu, 'type', 'bridge']);
      this.ip(ns, ['addr', 'add', `10.${this.octet}.${i}.1/24`, 'dev', podBridge]);
      this.ip(ns, ['link', 'add', hostVeth, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name]);
      this.ip(ns, ['link', 'set', hostVeth, 'master', podBridge, 'up']);
      this.ip(ns, ['link', 'set', podBridge, 'up']);
      const podIps = [`10.${this.octet}.${i}.2`];
      this.ip(pod, ['addr', 'add', `${podIps[0]}/24`, 'dev', 'eth0']);
      this.ip(pod, ['link', 'set', 'eth0', 'mtu', mtu, 'up']);
      this.ip(pod, ['route', 'add', 'default', 'via', `10.${this.octet}.${i}.1`]);
      if (this.opts.dualStack) {
        this.ip(ns, ['addr', 'add', `${this.v6}:${i}::1/64`, 'dev', podBridge, 'nodad']);
        podIps.push(`${this.v6}:${i}::2`);
        this.ip(pod, ['addr', 'add', `${this.v6}:${i}::2/64`, 'dev', 'eth0', 'nodad']);
        this.ip(pod, ['-6', 'route', 'add', 'default', 'via', `${this.v6}:${i}::1`]);
      }

      const nl = NetlinkSocket.open({ netns: ns.path });
      this.sockets.push(nl);
      const backend = this.opts.makeBackend(nl);
      const name = `stt-node-${i}`;
      const setUp = backend.setUp({ name, underlayIface: underlay, underlayIps: [underlayIp], podCidrs });
      this.nodes.push({
        name,
        ns,
        nl,
        underlay,
        underlayIp,
        underlayPrefix: 24,
        podCidrs,
        pod,
        podIps,
        backend,
        setUp,
      });
    }
    return this;
  }

  ip(ns: TestNetns, args: string[]): string {
    return sh('ip', ['-n', ns.name, ...args]);
  }

  node(i: number): SimNode {
    const n = this.nodes[i - 1];
    if (!n) throw new Error(`no node ${i}`);
    return n;
  }

  /** The Node object the API would hold for n: its pod CIDRs, InternalIP and published annotations. */
  nodeObject(n: SimNode): unknown {
    return {
      metadata: { name: n.name, annotations: n.setUp.annotations },
      spec: { podCIDR: n.podCidrs[0], podCIDRs: n.podCidrs },
      status: { addresses: [{ type: 'InternalIP', address: n.underlayIp }] },
    };
  }

  /** Reconciles node n against the given nodes (default: all), as the agent does on a Node event. */
  reconcile(n: SimNode, of: SimNode[] = this.nodes): Promise<ReconcileReport> {
    const { peers, unusable } = peersFromNodes(
      of.map((m) => this.nodeObject(m)),
      n.name,
    );
    expect(unusable).toEqual([]);
    return n.backend.reconcile(peers);
  }

  async reconcileAll(): Promise<ReconcileReport[]> {
    const out: ReconcileReport[] = [];
    for (const n of this.nodes) out.push(await this.reconcile(n));
    return out;
  }

  destroy(): void {
    for (const s of this.sockets.splice(0)) s.close();
    for (const ns of this.namespaces.splice(0)) ns.destroy();
  }
}

// ---- inspection -----------------------------------------------------------------------------------

interface IpRoute {
  dst: string;
  gateway?: string;
  dev: string;
  flags: string[];
  protocol?: string;
}

/** Strand's routes (rtm_protocol 0x53) of a node, both families, as `ip` sees them. */
function strandRoutes(n: SimNode): IpRoute[] {
  const proto = String(STRAND_ROUTE_PROTOCOL);
  return [
    ...ipJson<IpRoute[]>(['-4', 'route', 'show', 'proto', proto], n.ns.name),
    ...ipJson<IpRoute[]>(['-6', 'route', 'show', 'proto', proto], n.ns.name),
  ];
}

function routeSummary(n: SimNode): string[] {
  return strandRoutes(n)
    .map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}${r.flags.includes('onlink') ? ' onlink' : ''}`)
    .sort();
}

interface IpNeigh {
  dst: string;
  lladdr?: string;
  state: string[];
}

function permanentNeighbours(n: SimNode, dev: string): string[] {
  return ipJson<IpNeigh[]>(['neigh', 'show', 'dev', dev, 'nud', 'permanent'], n.ns.name)
    .map((e) => `${e.dst} ${e.lladdr}`)
    .sort();
}

interface BridgeFdb {
  mac: string;
  dst?: string;
  flags: string[];
  state?: string;
}

function fdbEntries(n: SimNode, dev: string): string[] {
  const out = sh('bridge', ['-n', n.ns.name, '-j', 'fdb', 'show', 'dev', dev]);
  const all = out.trim() === '' ? [] : (JSON.parse(out) as BridgeFdb[]);
  return all.map((e) => `${e.mac} dst ${e.dst} ${e.flags.join(',')} ${e.state}`).sort();
}

function counts(r: ReconcileReport): { added: number; changed: number; removed: number; problems: string[] } {
  return {
    added: r.added.length,
    changed: r.changed.length,
    removed: r.removed.length,
    problems: r.problems.map((p) => p.message),
  };
}

function ping(from: SimNode, to: string, extra: string[] = []): { ok: boolean; output: string } {
  const r = from.pod.tryExec('ping', ['-c', '1', '-W', '2', ...extra, to]);
  return { ok: r.status === 0, output: r.stdout + r.stderr };
}

function expectPing(from: SimNode, to: string, extra: string[] = []): void {
  const r = ping(from, to, extra);
  expect(r.ok, `ping ${to} from ${from.name}'s pod: ${r.output}`).toBe(true);
}

function expectAllPodsReachEachOther(c: SimCluster, family?: 4 | 6): void {
  for (const a of c.nodes) {
    for (const b of c.nodes) {
      if (a === b) continue;
      for (const ip of b.podIps) if (family === undefined || (family === 6) === ip.includes(':')) expectPing(a, ip);
    }
  }
}

// A TCP sink that counts what it receives and answers with the count when the sender has finished,
// and a source that sends `bytes` and prints that answer: an exact check of what arrived, where
// iperf3's -n reports only what the receiver had counted when the test ended.
const SINK = `
const server = require('node:net').createServer((s) => {
  let n = 0;
  s.on('data', (d) => { n += d.length; });
  s.on('end', () => { s.end(JSON.stringify({ n, from: s.remoteAddress })); server.close(); });
});
server.listen(0, process.argv[1], () => console.log(server.address().port));
setTimeout(() => process.exit(2), 60000).unref();`;
const SOURCE = `
const [host, port, bytes] = process.argv.slice(1);
const chunk = Buffer.alloc(64 * 1024, 0x5a);
const started = performance.now();
const s = require('node:net').connect(Number(port), host, () => {
  let left = Number(bytes);
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      left -= n;
      if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return s.once('drain', pump);
    }
    s.end();
  };
  pump();
});
let answer = '';
s.on('data', (d) => { answer += d; });
s.on('end', () => { const a = JSON.parse(answer); console.log(JSON.stringify({ received: a.n, from: a.from, ms: performance.now() - started })); });
s.on('error', (e) => { console.error(e.message); process.exit(1); });
setTimeout(() => { console.error('timed out'); process.exit(3); }, 60000).unref();`;

function runIn(
  ns: TestNetns,
  code: string,
  args: string[],
): {
  child: ReturnType<typeof spawn>;
  firstLine: Promise<string>;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
} {
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', code, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let resolveLine: (l: string) => void = () => {};
  const firstLine = new Promise<string>((r) => (resolveLine = r));
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    if (stdout.includes('\n')) resolveLine(stdout.split('\n')[0]!);
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((r) =>
    child.on('close', (code) => r({ code, stdout, stderr })),
  );
  done.then(() => resolveLine(''));
  return { child, firstLine, done };
}

/** Sends `bytes` over TCP from `client`'s pod to `server`'s pod; what arrived, from which source
 * address the server saw it come, and how fast. */
async function tcpTransfer(
  server: SimNode,
  serverIp: string,
  client: SimNode,
  bytes: number,
): Promise<{ received: number; from: string; mbps: number }> {
  const sink = runIn(server.pod, SINK, [serverIp]);
  try {
    const port = await sink.firstLine;
    if (!/^\d+$/.test(port))
      throw new Error(`TCP sink in ${server.name}'s pod did not start: ${(await sink.done).stderr}`);
    const source = runIn(client.pod, SOURCE, [serverIp, port, String(bytes)]);
    const r = await source.done;
    if (r.code !== 0) throw new Error(`TCP ${client.name} -> ${serverIp}:${port} failed: ${r.stderr}`);
    const { received, from, ms } = JSON.parse(r.stdout) as { received: number; from: string; ms: number };
    return { received, from: from.replace(/^::ffff:/, ''), mbps: (received * 8) / (ms * 1000) };
  } finally {
    sink.child.kill('SIGKILL');
  }
}

// ---- VXLAN ------------------------------------------------------------------------------------------

describe('VXLAN backend, 3 nodes, dual-stack pods over an IPv4 underlay', () => {
  let c: SimCluster;
  beforeAll(() => {
    c = new SimCluster({
      dualStack: true,
      podMtu: VXLAN_MTU,
      makeBackend: (nl) => new VxlanBackend(nl, { vni: 1, port: 4789 }),
    });
    c.build(3);
  });
  afterAll(() => c?.destroy());

  it('setUp makes strand.1 as specified and says what to publish', () => {
    for (const n of c.nodes) {
      expect(n.setUp.annotations).toEqual({
        'strand.dev/backend': 'vxlan',
        'strand.dev/underlay-ip': n.underlayIp,
        'strand.dev/vtep-mac': vtepMacFor(n.name),
      });
      expect(n.setUp.podMtu).toBe(VXLAN_MTU);
      expect(n.setUp.warnings).toEqual([]);
      const [link] = ipJson<any[]>(['-d', 'link', 'show', 'strand.1'], n.ns.name);
      expect(link).toMatchObject({
        ifname: 'strand.1',
        mtu: VXLAN_MTU,
        address: vtepMacFor(n.name),
        operstate: expect.stringMatching(/UNKNOWN|UP/),
      });
      expect(link.flags).toContain('UP');
      expect(link.linkinfo.info_kind).toBe('vxlan');
      expect(link.linkinfo.info_data).toMatchObject({
        id: 1,
        port: 4789,
        local: n.underlayIp,
        link: n.underlay,
        learning: false,
      });
      const addrs = ipJson<any[]>(['addr', 'show', 'dev', 'strand.1'], n.ns.name)[0].addr_info.filter(
        (a: any) => a.scope === 'global',
      );
      expect(addrs.map((a: any) => `${a.local}/${a.prefixlen}`).sort()).toEqual(
        [`${n.podCidrs[0]!.split('/')[0]}/32`, `${n.podCidrs[1]!.split('/')[0]}/128`].sort(),
      );
    }
  });

  it('one route, one neighbour per pod CIDR and one FDB entry per peer; pods on all nodes reach each other (ICMP, TCP)', async () => {
    const reports = await c.reconcileAll();
    for (const r of reports) expect(counts(r)).toEqual({ added: 10, changed: 0, removed: 0, problems: [] });
    const [n1, n2, n3] = [c.node(1), c.node(2), c.node(3)];
    expect(routeSummary(n1)).toEqual(
      [
        `${n2.podCidrs[0]} via ${n2.podCidrs[0]!.split('/')[0]} dev strand.1 onlink`,
        `${n3.podCidrs[0]} via ${n3.podCidrs[0]!.split('/')[0]} dev strand.1 onlink`,
        `${n2.podCidrs[1]} via ${n2.podCidrs[1]!.split('/')[0]} dev strand.1 onlink`,
        `${n3.podCidrs[1]} via ${n3.podCidrs[1]!.split('/')[0]} dev strand.1 onlink`,
      ].sort(),
    );
    expect(permanentNeighbours(n1, 'strand.1')).toEqual(
      [n2, n3].flatMap((p) => p.podCidrs.map((cidr) => `${cidr.split('/')[0]} ${vtepMacFor(p.name)}`)).sort(),
    );
    expect(fdbEntries(n1, 'strand.1')).toEqual(
      [n2, n3].map((p) => `${vtepMacFor(p.name)} dst ${p.underlayIp} self permanent`).sort(),
    );
    for (const n of c.nodes) {
      expect(strandRoutes(n)).toHaveLength(4);
      expect(permanentNeighbours(n, 'strand.1')).toHaveLength(4);
      expect(fdbEntries(n, 'strand.1')).toHaveLength(2);
    }

    expectAllPodsReachEachOther(c);
    // TCP, and the receiving pod sees the sending pod's own address (no NAT on the way).
    expect(await tcpTransfer(n3, n3.podIps[0]!, n1, 256 * 1024)).toMatchObject({
      received: 256 * 1024,
      from: n1.podIps[0],
    });
    expect(await tcpTransfer(n2, n2.podIps[1]!, n3, 256 * 1024)).toMatchObject({
      received: 256 * 1024,
      from: n3.podIps[1],
    });
  });

  it('a second reconcile with the same peers changes nothing', async () => {
    const before = c.nodes.map((n) => [routeSummary(n), permanentNeighbours(n, 'strand.1'), fdbEntries(n, 'strand.1')]);
    for (const r of await c.reconcileAll()) {
      expect(counts(r)).toEqual({ added: 0, changed: 0, removed: 0, problems: [] });
      expect(r.unchanged).toBe(10);
    }
    expect(
      c.nodes.map((n) => [routeSummary(n), permanentNeighbours(n, 'strand.1'), fdbEntries(n, 'strand.1')]),
    ).toEqual(before);
  });

  it('a large TCP transfer crosses VXLAN with pods at underlay MTU - 50: nothing is black-holed', async () => {
    const [n1, n3] = [c.node(1), c.node(3)];
    // A full-size packet with DF set fits (1450 bytes of IP), one byte more does not leave the pod.
    expectPing(n1, n3.podIps[0]!, ['-M', 'do', '-s', String(VXLAN_MTU - 28)]);
    expectPing(n1, n3.podIps[1]!, ['-M', 'do', '-s', String(VXLAN_MTU - 48)]);
    expect(ping(n1, n3.podIps[0]!, ['-M', 'do', '-s', String(VXLAN_MTU - 27)]).ok).toBe(false);
    const size = 16 * 1024 * 1024;
    const up = await tcpTransfer(n3, n3.podIps[0]!, n1, size);
    const down = await tcpTransfer(n1, n1.podIps[0]!, n3, size);
    const v6 = await tcpTransfer(n3, n3.podIps[1]!, n1, size);
    expect(up).toMatchObject({ received: size, from: n1.podIps[0] });
    expect(down).toMatchObject({ received: size, from: n3.podIps[0] });
    expect(v6).toMatchObject({ received: size, from: n1.podIps[1] });
    console.log(
      `VXLAN pod-to-pod TCP, 16 MiB: ${up.mbps.toFixed(0)} Mbit/s node 1 -> 3, ${down.mbps.toFixed(0)} Mbit/s node 3 -> 1, ${v6.mbps.toFixed(0)} Mbit/s IPv6`,
    );
  });

  it('a node missing from the list loses its route, neighbours and FDB entry; back in the list, it gets them again', async () => {
    const [n1, n2, n3] = [c.node(1), c.node(2), c.node(3)];
    const r = await c.reconcile(n1, [n1, n2]);
    expect(counts(r)).toEqual({ added: 0, changed: 0, removed: 5, problems: [] });
    expect(r.removed.map((x) => x.object).sort()).toEqual(['fdb', 'neighbour', 'neighbour', 'route', 'route']);
    expect(routeSummary(n1).join()).not.toContain(n3.podCidrs[0]);
    expect(strandRoutes(n1)).toHaveLength(2);
    expect(permanentNeighbours(n1, 'strand.1')).toHaveLength(2);
    expect(fdbEntries(n1, 'strand.1')).toEqual([`${vtepMacFor(n2.name)} dst ${n2.underlayIp} self permanent`]);
    expect(ping(n1, n3.podIps[0]!).ok).toBe(false);
    expectPing(n1, n2.podIps[0]!);

    expect(counts(await c.reconcile(n1))).toEqual({ added: 5, changed: 0, removed: 0, problems: [] });
    expectPing(n1, n3.podIps[0]!);
  });

  it("a node's underlay address changes: its own device and the peers' FDB entries follow", async () => {
    const [n1, n2, n3] = [c.node(1), c.node(2), c.node(3)];
    const moved = '198.18.0.33';
    const setTo = (ip: string, from: string) => {
      c.ip(n3.ns, ['addr', 'del', `${from}/24`, 'dev', n3.underlay]);
      c.ip(n3.ns, ['addr', 'add', `${ip}/24`, 'dev', n3.underlay]);
      n3.underlayIp = ip;
      n3.setUp = n3.backend.setUp({
        name: n3.name,
        underlayIface: n3.underlay,
        underlayIps: [ip],
        podCidrs: n3.podCidrs,
      });
    };
    try {
      setTo(moved, '198.18.0.3');
      // The endpoint cannot be changed in place: the device was made again, with the same MAC.
      expect(n3.setUp.changes.map((x) => x.detail)).toEqual([
        expect.stringMatching(/^delete strand\.1: local 198\.18\.0\.3, not 198\.18\.0\.33/),
        expect.stringMatching(/^create strand\.1/),
        expect.stringMatching(/^add .*\/32 to strand.1/),
        expect.stringMatching(/^add .*\/128 to strand.1/),
      ]);
      expect(n3.setUp.annotations['strand.dev/underlay-ip']).toBe(moved);
      expect(n3.setUp.annotations['strand.dev/vtep-mac']).toBe(vtepMacFor(n3.name));
      // Its peers: only the FDB entry changes. Node 3 itself: everything again (its device is new).
      for (const n of [n1, n2]) {
        const r = await c.reconcile(n);
        expect(counts(r)).toEqual({ added: 0, changed: 1, removed: 0, problems: [] });
        expect(r.changed[0]).toMatchObject({
          object: 'fdb',
          peer: n3.name,
          detail: `${vtepMacFor(n3.name)} dev strand.1 dst ${moved} self permanent`,
        });
        expect(fdbEntries(n, 'strand.1')).toContain(`${vtepMacFor(n3.name)} dst ${moved} self permanent`);
        expect(fdbEntries(n, 'strand.1')).toHaveLength(2);
      }
      expect(counts(await c.reconcile(n3))).toEqual({ added: 10, changed: 0, removed: 0, problems: [] });
      expectAllPodsReachEachOther(c, 4);
    } finally {
      setTo('198.18.0.3', moved);
      await c.reconcileAll();
    }
    expectPing(n1, n3.podIps[0]!);
  });

  it("restart: a new backend over a previous run's entries removes those of a node deleted meanwhile and duplicates nothing", async () => {
    const [n1, n2, n3] = [c.node(1), c.node(2), c.node(3)];
    // The agent on node 1 stops (its entries stay in the kernel), node 3 is deleted, the agent starts.
    const restarted = new VxlanBackend(n1.nl, { vni: 1, port: 4789 });
    const setUp = restarted.setUp({
      name: n1.name,
      underlayIface: n1.underlay,
      underlayIps: [n1.underlayIp],
      podCidrs: n1.podCidrs,
    });
    expect(setUp.changes).toEqual([]); // same device, same MAC: peers need no update
    expect(setUp.annotations).toEqual(n1.setUp.annotations);
    n1.backend = restarted;
    const r = await c.reconcile(n1, [n1, n2]);
    expect(counts(r)).toEqual({ added: 0, changed: 0, removed: 5, problems: [] });
    expect(r.unchanged).toBe(5);
    expect(strandRoutes(n1)).toHaveLength(2);
    expect(permanentNeighbours(n1, 'strand.1')).toHaveLength(2);
    expect(fdbEntries(n1, 'strand.1')).toHaveLength(1);
    expectPing(n1, n2.podIps[0]!);
    expect(counts(await c.reconcile(n1))).toEqual({ added: 5, changed: 0, removed: 0, problems: [] });
    expectPing(n1, n3.podIps[1]!);
  });

  it('routes Strand did not install are never touched, even to a peer pod CIDR', async () => {
    const [n1, , n3] = [c.node(1), c.node(2), c.node(3)];
    const unrelated = `10.${c.octet}.200.0/24`;
    c.ip(n1.ns, ['route', 'add', unrelated, 'via', '198.18.0.2']);
    c.ip(n1.ns, ['route', 'add', `10.${c.octet}.201.0/24`, 'via', '198.18.0.2', 'proto', 'static']);
    const unrelatedRoutes = () =>
      ipJson<IpRoute[]>(['route', 'show', 'root', `10.${c.octet}.200.0/23`], n1.ns.name).filter((r) =>
        r.dst.startsWith(`10.${c.octet}.20`),
      );
    const before = unrelatedRoutes();
    expect(before).toHaveLength(2);
    expect(counts(await c.reconcile(n1, [n1]))).toMatchObject({ removed: 10 });
    expect(unrelatedRoutes()).toEqual(before);

    // Someone else's route to node 3's pod CIDR: left alone, and said so.
    c.ip(n1.ns, ['route', 'add', n3.podCidrs[0]!, 'via', '198.18.0.3', 'proto', 'static']);
    const r = await c.reconcile(n1);
    expect(r.problems).toEqual([
      {
        peer: n3.name,
        message: expect.stringMatching(
          new RegExp(`^route to ${n3.podCidrs[0]} exists but was not installed by Strand`),
        ),
      },
    ]);
    expect(ipJson<IpRoute[]>(['route', 'show', n3.podCidrs[0]!], n1.ns.name)).toEqual([
      expect.objectContaining({ gateway: '198.18.0.3', protocol: 'static' }),
    ]);
    expect(unrelatedRoutes()).toEqual(before);

    c.ip(n1.ns, ['route', 'del', n3.podCidrs[0]!, 'proto', 'static']);
    expect(counts(await c.reconcile(n1))).toEqual({ added: 1, changed: 0, removed: 0, problems: [] });
    expect(unrelatedRoutes()).toEqual(before);
    expectAllPodsReachEachOther(c, 4);
  });

  it('a device changed or deleted by hand is put back by the next reconcile', async () => {
    const [n1, n2] = [c.node(1), c.node(2)];
    c.ip(n1.ns, ['link', 'set', 'strand.1', 'address', '0e:11:22:33:44:55', 'mtu', '1400']);
    let r = await c.reconcile(n1);
    expect(r.changed).toEqual([
      {
        object: 'device',
        detail: `set strand.1 address 0e:11:22:33:44:55 → ${vtepMacFor(n1.name)}, mtu 1400 → ${VXLAN_MTU}`,
      },
    ]);
    expect(ipJson<any[]>(['link', 'show', 'strand.1'], n1.ns.name)[0]).toMatchObject({
      address: vtepMacFor(n1.name),
      mtu: VXLAN_MTU,
    });

    c.ip(n1.ns, ['link', 'del', 'strand.1']);
    expect(strandRoutes(n1)).toEqual([]);
    r = await c.reconcile(n1);
    expect(r.problems).toEqual([]);
    expect(r.added.map((x) => x.object)).toEqual([
      'device',
      'address',
      'address',
      ...Array(10).fill(expect.any(String)),
    ]);
    expect(strandRoutes(n1)).toHaveLength(4);
    expectPing(n1, n2.podIps[0]!);
    expectPing(n2, n1.podIps[1]!);
  });

  it('tearDown removes the device and every Strand route', async () => {
    const n2 = c.node(2);
    const changes = n2.backend.tearDown();
    expect(changes[0]).toEqual({ object: 'device', detail: 'delete strand.1' });
    expect(trySh('ip', ['-n', n2.ns.name, 'link', 'show', 'strand.1']).status).not.toBe(0);
    expect(strandRoutes(n2)).toEqual([]);
    n2.setUp = n2.backend.setUp({
      name: n2.name,
      underlayIface: n2.underlay,
      underlayIps: [n2.underlayIp],
      podCidrs: n2.podCidrs,
    });
    await c.reconcile(n2);
    expectAllPodsReachEachOther(c, 4);
  });
});

// ---- host-gw ------------------------------------------------------------------------------------------

describe('host-gw backend, 3 nodes, the third on another subnet', () => {
  let c: SimCluster;
  beforeAll(() => {
    c = new SimCluster({ thirdOnOtherSubnet: true, podMtu: UNDERLAY_MTU, makeBackend: (nl) => new HostGwBackend(nl) });
    c.build(3);
  });
  afterAll(() => c?.destroy());

  it('setUp publishes backend and underlay address, no VTEP MAC, pods keep the underlay MTU', () => {
    for (const n of c.nodes) {
      expect(n.setUp.annotations).toEqual({ 'strand.dev/backend': 'host-gw', 'strand.dev/underlay-ip': n.underlayIp });
      expect(n.setUp.podMtu).toBe(UNDERLAY_MTU);
    }
  });

  it('a route via the underlay address per same-segment peer; the peer off the segment is reported', async () => {
    const reports = await c.reconcileAll();
    const [n1, n2, n3] = [c.node(1), c.node(2), c.node(3)];
    expect(counts(reports[0]!)).toEqual({
      added: 1,
      changed: 0,
      removed: 0,
      problems: [
        expect.stringMatching(
          new RegExp(
            `^node ${n3.name}: underlay address 198.18.1.3 is not on this node's layer-2 segment \\(198.18.0.0/24\\)`,
          ),
        ),
      ],
    });
    expect(reports[0]!.problems[0]!.peer).toBe(n3.name);
    expect(counts(reports[2]!).problems).toHaveLength(2);
    expect(routeSummary(n1)).toEqual([`${n2.podCidrs[0]} via ${n2.underlayIp} dev ${n1.underlay}`]);
    expect(routeSummary(n2)).toEqual([`${n1.podCidrs[0]} via ${n1.underlayIp} dev ${n2.underlay}`]);
    expect(routeSummary(n3)).toEqual([]);
    expectPing(n1, n2.podIps[0]!);
    expectPing(n2, n1.podIps[0]!);
    expect(ping(n1, n3.podIps[0]!).ok).toBe(false);
    expect(await tcpTransfer(n2, n2.podIps[0]!, n1, 4 * 1024 * 1024)).toMatchObject({
      received: 4 * 1024 * 1024,
      from: n1.podIps[0],
    });
  });

  it('idempotent; a removed peer loses its route; an unrelated route stays', async () => {
    const [n1, n2] = [c.node(1), c.node(2)];
    c.ip(n1.ns, ['route', 'add', `10.${c.octet}.250.0/24`, 'via', '198.18.0.2']);
    expect(counts(await c.reconcile(n1))).toMatchObject({ added: 0, changed: 0, removed: 0 });
    expect(counts(await c.reconcile(n1, [n1]))).toEqual({ added: 0, changed: 0, removed: 1, problems: [] });
    expect(routeSummary(n1)).toEqual([]);
    expect(ipJson<IpRoute[]>(['route', 'show', `10.${c.octet}.250.0/24`], n1.ns.name)).toHaveLength(1);
    expect(ping(n1, n2.podIps[0]!).ok).toBe(false);
    expect(counts(await c.reconcile(n1))).toMatchObject({ added: 1, changed: 0, removed: 0 });
    expectPing(n1, n2.podIps[0]!);
  });

  it("a peer's underlay address changes: the route's gateway follows", async () => {
    const [n1, n2] = [c.node(1), c.node(2)];
    c.ip(n2.ns, ['addr', 'del', '198.18.0.2/24', 'dev', n2.underlay]);
    c.ip(n2.ns, ['addr', 'add', '198.18.0.22/24', 'dev', n2.underlay]);
    n2.underlayIp = '198.18.0.22';
    n2.setUp = n2.backend.setUp({
      name: n2.name,
      underlayIface: n2.underlay,
      underlayIps: [n2.underlayIp],
      podCidrs: n2.podCidrs,
    });
    // Node 2 lost its connected prefix for a moment, and with it (the kernel's doing) its routes via
    // node 1: level-based reconciliation puts them back.
    const r = (await c.reconcileAll())[0]!;
    expect(counts(r)).toMatchObject({ added: 0, changed: 1, removed: 0 });
    expect(routeSummary(n1)).toEqual([`${n2.podCidrs[0]} via 198.18.0.22 dev ${n1.underlay}`]);
    expectPing(n1, n2.podIps[0]!);
  });

  it('setUp removes a VXLAN device an earlier configuration left', () => {
    const n1 = c.node(1);
    const vx = new VxlanBackend(n1.nl, { vni: 7 });
    vx.setUp({ name: n1.name, underlayIface: n1.underlay, underlayIps: [n1.underlayIp], podCidrs: n1.podCidrs });
    expect(trySh('ip', ['-n', n1.ns.name, 'link', 'show', 'strand.7']).status).toBe(0);
    const s = n1.backend.setUp({
      name: n1.name,
      underlayIface: n1.underlay,
      underlayIps: [n1.underlayIp],
      podCidrs: n1.podCidrs,
    });
    expect(s.changes).toEqual([{ object: 'device', detail: 'strand.7 (left by an earlier configuration)' }]);
    expect(trySh('ip', ['-n', n1.ns.name, 'link', 'show', 'strand.7']).status).not.toBe(0);
  });
});

// ---- VXLAN with direct routing -------------------------------------------------------------------

describe('VXLAN backend with directRouting, the third node on another subnet', () => {
  let c: SimCluster;
  beforeAll(() => {
    c = new SimCluster({
      thirdOnOtherSubnet: true,
      podMtu: VXLAN_MTU,
      makeBackend: (nl) => new VxlanBackend(nl, { directRouting: true }),
    });
    c.build(3);
  });
  afterAll(() => c?.destroy());

  it('same-subnet peers get direct routes, the other goes through VXLAN; every pod reaches every other', async () => {
    for (const r of await c.reconcileAll()) expect(r.problems).toEqual([]);
    const [n1, n2, n3] = [c.node(1), c.node(2), c.node(3)];
    expect(routeSummary(n1)).toEqual(
      [
        `${n2.podCidrs[0]} via ${n2.underlayIp} dev ${n1.underlay}`,
        `${n3.podCidrs[0]} via ${n3.podCidrs[0]!.split('/')[0]} dev strand.1 onlink`,
      ].sort(),
    );
    expect(fdbEntries(n1, 'strand.1')).toEqual([`${vtepMacFor(n3.name)} dst 198.18.1.3 self permanent`]);
    expect(permanentNeighbours(n1, 'strand.1')).toEqual([`${n3.podCidrs[0]!.split('/')[0]} ${vtepMacFor(n3.name)}`]);
    expect(routeSummary(n3)).toHaveLength(2);
    expect(routeSummary(n3).every((r) => r.endsWith('dev strand.1 onlink'))).toBe(true);
    expectAllPodsReachEachOther(c);
    expect(await tcpTransfer(n3, n3.podIps[0]!, n1, 4 * 1024 * 1024)).toMatchObject({
      received: 4 * 1024 * 1024,
      from: n1.podIps[0],
    });
    expect(await tcpTransfer(n1, n1.podIps[0]!, n2, 4 * 1024 * 1024)).toMatchObject({
      received: 4 * 1024 * 1024,
      from: n2.podIps[0],
    });
    for (const r of await c.reconcileAll())
      expect(counts(r)).toEqual({ added: 0, changed: 0, removed: 0, problems: [] });
  });

  it('tearDown removes the direct routes too', () => {
    const n1 = c.node(1);
    n1.backend.tearDown();
    expect(strandRoutes(n1)).toEqual([]);
  });
});

// ---- scale ------------------------------------------------------------------------------------------------

/** A test namespace whose underlay (a veth end, 198.18.0.1/23, up) and netlink socket the caller's
 * afterEach removes. */
function underlayNamespace(
  namespaces: TestNetns[],
  sockets: NetlinkSocket[],
): { ns: TestNetns; underlay: string; nl: NetlinkSocket } {
  const ns = TestNetns.create('nd');
  namespaces.push(ns);
  const underlay = testName('ul');
  sh('ip', ['-n', ns.name, 'link', 'add', underlay, 'type', 'veth', 'peer', 'name', testName('vy')]);
  sh('ip', ['-n', ns.name, 'addr', 'add', '198.18.0.1/23', 'dev', underlay]);
  sh('ip', ['-n', ns.name, 'link', 'set', underlay, 'up']);
  const nl = NetlinkSocket.open({ netns: ns.path });
  sockets.push(nl);
  return { ns, underlay, nl };
}

describe('reconcile time for 100 peers', () => {
  const namespaces: TestNetns[] = [];
  const sockets: NetlinkSocket[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
    for (const ns of namespaces.splice(0)) ns.destroy();
  });

  it.each(['vxlan', 'host-gw'] as const)(
    '%s: 100 peers programmed, then nothing to do, then all removed',
    async (kind) => {
      const { ns, underlay, nl } = underlayNamespace(namespaces, sockets);
      const backend: Backend = kind === 'vxlan' ? new VxlanBackend(nl) : new HostGwBackend(nl);
      backend.setUp({
        name: 'stt-scale-0',
        underlayIface: underlay,
        underlayIps: ['198.18.0.1'],
        podCidrs: ['10.200.0.0/24'],
      });
      const nodes = Array.from({ length: 100 }, (_, i) => ({
        metadata: {
          name: `stt-scale-${i + 1}`,
          annotations: { 'strand.dev/vtep-mac': vtepMacFor(`stt-scale-${i + 1}`) },
        },
        spec: { podCIDRs: [`10.200.${i + 1}.0/24`] },
        status: { addresses: [{ type: 'InternalIP', address: `198.18.1.${i + 1}` }] },
      }));
      const { peers } = peersFromNodes(nodes);
      const perPeer = kind === 'vxlan' ? 3 : 1;

      const first = await backend.reconcile(peers);
      expect(counts(first)).toEqual({ added: 100 * perPeer, changed: 0, removed: 0, problems: [] });
      const second = await backend.reconcile(peers);
      expect(counts(second)).toEqual({ added: 0, changed: 0, removed: 0, problems: [] });
      expect(second.unchanged).toBe(100 * perPeer);
      const moved = peers.map((p, i) => (i % 10 === 0 ? { ...p, underlayIps: [`198.18.1.${200 + i / 10}`] } : p));
      const third = await backend.reconcile(moved);
      expect(counts(third)).toEqual({ added: 0, changed: 10, removed: 0, problems: [] });
      const last = await backend.reconcile([]);
      expect(counts(last)).toEqual({ added: 0, changed: 0, removed: 100 * perPeer, problems: [] });
      expect(ipJson<IpRoute[]>(['route', 'show', 'proto', String(STRAND_ROUTE_PROTOCOL)], ns.name)).toEqual([]);
      console.log(
        `${kind}, 100 peers: first reconcile ${first.durationMs.toFixed(1)} ms (${first.added.length} entries), no-op ${second.durationMs.toFixed(1)} ms, ` +
          `10 peers moved ${third.durationMs.toFixed(1)} ms, all removed ${last.durationMs.toFixed(1)} ms`,
      );
    },
  );
});

describe('applyPlan gives the event loop back between requests', () => {
  const namespaces: TestNetns[] = [];
  const sockets: NetlinkSocket[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
    for (const ns of namespaces.splice(0)) ns.destroy();
  });

  it('with a slice of 0 ms it breathes before every request after the first, and every route is in', async () => {
    const { ns, nl } = underlayNamespace(namespaces, sockets);
    const ops: PlanOp[] = Array.from({ length: 20 }, (_, i) => ({
      object: 'route',
      action: 'add',
      peer: `stt-slice-${i}`,
      dst: `10.201.${i}.0/24`,
      gateway: `198.18.1.${i + 1}`,
      oif: undefined,
      onlink: false,
      metric: undefined,
      detail: `10.201.${i}.0/24 via 198.18.1.${i + 1}`,
    }));
    const report = emptyReport();
    let breaths = 0;
    let turned = 0;
    const breathe = () =>
      new Promise<void>((resolve) =>
        setImmediate(() => {
          breaths++;
          resolve();
        }),
      );
    // Something else waiting on the loop runs while the plan is applied, not after it.
    const other = new Promise<void>((resolve) => setImmediate(() => resolve(void turned++)));
    const applying = applyPlan(nl, ops, undefined, report, { sliceMs: 0, breathe });
    await other;
    expect(turned).toBe(1);
    expect(report.added.length).toBeLessThan(ops.length);
    await applying;
    expect(breaths).toBe(ops.length - 1);
    expect(counts(report)).toEqual({ added: 20, changed: 0, removed: 0, problems: [] });
    const routes = ipJson<IpRoute[]>(['route', 'show', 'proto', String(STRAND_ROUTE_PROTOCOL)], ns.name);
    expect(routes.map((r) => r.dst).sort()).toEqual(ops.map((o) => (o.object === 'route' ? o.dst : '')).sort());
  });
});

// ---- set-up errors and warnings ------------------------------------------------------------------

describe('setUp on a node that is not ready', () => {
  const namespaces: TestNetns[] = [];
  const sockets: NetlinkSocket[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
    for (const ns of namespaces.splice(0)) ns.destroy();
  });

  function node(): { ns: TestNetns; nl: NetlinkSocket; underlay: string } {
    const ns = TestNetns.create('nd');
    namespaces.push(ns);
    const underlay = testName('ul');
    sh('ip', ['-n', ns.name, 'link', 'add', underlay, 'type', 'veth', 'peer', 'name', testName('vy')]);
    sh('ip', ['-n', ns.name, 'addr', 'add', '198.18.0.1/24', 'dev', underlay]);
    sh('ip', ['-n', ns.name, 'link', 'set', underlay, 'up']);
    const nl = NetlinkSocket.open({ netns: ns.path });
    sockets.push(nl);
    return { ns, nl, underlay };
  }

  it('names a missing underlay interface, refuses a bad local node, and reconcile before setUp', async () => {
    const { nl, underlay } = node();
    const vx = new VxlanBackend(nl);
    await expect(vx.reconcile([])).rejects.toThrow('VXLAN backend: reconcile before setUp');
    expect(() =>
      vx.setUp({ name: 'stt-n1', underlayIface: 'sttnope', underlayIps: ['198.18.0.1'], podCidrs: ['10.200.1.0/24'] }),
    ).toThrow(/find sttnope/);
    expect(() =>
      vx.setUp({ name: 'stt-n1', underlayIface: underlay, underlayIps: [], podCidrs: ['10.200.1.0/24'] }),
    ).toThrow('local node: no underlay address');
    expect(() =>
      vx.setUp({ name: 'stt-n1', underlayIface: underlay, underlayIps: ['198.18.0.1'], podCidrs: ['10.200.1.0'] }),
    ).toThrow('local node: pod CIDR "10.200.1.0" is not a CIDR');
    expect(() => new VxlanBackend(nl, { vni: 0 })).toThrow(/VNI 0 is not in 1..16777215/);
    await expect(new HostGwBackend(nl).reconcile([])).rejects.toThrow('host-gw backend: reconcile before setUp');
  });

  it('warns when forwarding is off, and sizes the device from the underlay MTU it is given or reads', () => {
    const { ns, nl, underlay } = node();
    sh('ip', ['-n', ns.name, 'link', 'set', underlay, 'mtu', '9000']);
    // A new namespace may inherit ip_forward from the host's; off here, for the test's sake.
    writeSysctls({ 'net.ipv4.ip_forward': 0, 'net.ipv6.conf.all.forwarding': 0 }, { netns: ns.path });
    const vx = new VxlanBackend(nl, { vni: 42, port: 8472 });
    const s = vx.setUp({
      name: 'stt-n1',
      underlayIface: underlay,
      underlayIps: ['198.18.0.1'],
      podCidrs: ['10.200.1.0/24', 'fd00:200:1::/64'],
    });
    expect(s.warnings).toEqual([
      "net.ipv4.ip_forward is not 1: pods on other nodes cannot reach this node's IPv4 pods",
      "net.ipv6.conf.all.forwarding is not 1: pods on other nodes cannot reach this node's IPv6 pods",
    ]);
    expect(s.podMtu).toBe(8950);
    expect(ipJson<any[]>(['-d', 'link', 'show', 'strand.42'], ns.name)[0]).toMatchObject({
      mtu: 8950,
      linkinfo: { info_data: { id: 42, port: 8472 } },
    });
    expect(
      vx.setUp({
        name: 'stt-n1',
        underlayIface: underlay,
        underlayIps: ['198.18.0.1'],
        podCidrs: ['10.200.1.0/24'],
        underlayMtu: 1500,
      }).podMtu,
    ).toBe(1450);
  });
});
