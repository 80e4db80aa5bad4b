// A fixture for running the `strand` plugin (dist/cni/strand) as a runtime does, against the real kernel:
// a unique bridge and network name, a temp directory for the IPAM data dir, the log file and the
// state dir, network config builders, pod namespaces, and a teardown that removes everything the
// test made, pass or fail: the pod namespaces, every host veth of every attachment it ran ADD for
// (they live in the namespace the plugin runs in, named by hostVethName), the bridge, the temp dir.
//
// The plugin runs in the root namespace, as on a node. With `hostNetns` it runs inside a test
// "host" namespace instead (through a wrapper script that `ip netns exec`s it), for tests whose
// chained plugins (portmap's iptables rules) must not touch the real host.
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostVethName } from '../../src/plugin/names.ts';
import {
  CNI_BIN,
  REFERENCE_CNI_DIR,
  runPlugin,
  runPluginAsync,
  STRAND_CNI,
  type CniCall,
  type CniOutcome,
} from './cni.ts';
import { testName } from './names.ts';
import { TestNetns } from './netns.ts';
import { ipJson, sh, trySh } from './sh.ts';

export interface Attachment {
  containerId: string;
  ifname: string;
}

export interface FixtureOptions {
  /** Run the plugins inside this test namespace instead of the root namespace. */
  hostNetns?: boolean;
}

/** A link as `ip -j -d link show` prints it, with the fields the tests read. */
export interface IpLink {
  ifindex: number;
  ifname: string;
  link_index?: number;
  flags: string[];
  mtu: number;
  master?: string;
  operstate?: string;
  address?: string;
  gso_max_size?: number;
  gro_max_size?: number;
  linkinfo?: {
    info_kind?: string;
    info_slave_kind?: string;
    info_slave_data?: { hairpin?: boolean; isolated?: boolean; state?: string };
  };
}

export interface IpAddr {
  ifname: string;
  addr_info: { family: 'inet' | 'inet6'; local: string; prefixlen: number; scope: string }[];
}

export interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
}

export class PluginFixture {
  /** The network name (hostVethName hashes it, and it names the IPAM store directory). */
  readonly network = testName('net');
  readonly bridge = testName('br');
  readonly dir: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly stateDir: string;
  /** The namespace the plugins run in: undefined for the root namespace. */
  readonly host: TestNetns | undefined;
  private readonly pods: TestNetns[] = [];
  private readonly attachments: Attachment[] = [];
  private readonly extraLinks: string[] = [];
  private readonly wrappers = new Map<string, string>();

  constructor(opts: FixtureOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'strand-plugin-test-'));
    this.dataDir = join(this.dir, 'ipam');
    this.logFile = join(this.dir, 'cni.log');
    this.stateDir = join(this.dir, 'state');
    if (opts.hostNetns) this.host = TestNetns.create('host');
  }

  /** The IPAM store of this network (host-local layout: <dataDir>/<network>). */
  get storeDir(): string {
    return join(this.dataDir, this.network);
  }

  /** A strand network configuration on this fixture's bridge, dirs and log; `extra` overrides. */
  config(ipam: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      cniVersion: '1.1.0',
      name: this.network,
      type: 'strand',
      bridge: this.bridge,
      isGateway: true,
      isDefaultGateway: true,
      hairpinMode: true,
      logFile: this.logFile,
      stateDir: this.stateDir,
      agentSocket: false,
      ipam: { type: 'strand-ipam', dataDir: this.dataDir, ...ipam },
      ...extra,
    };
  }

  /** A config with one IPv4 subnet. */
  v4Config(subnet: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return this.config({ subnet }, extra);
  }

  /** A new pod namespace (lo up), destroyed at teardown. */
  pod(): TestNetns {
    const ns = TestNetns.create('pod');
    this.pods.push(ns);
    return ns;
  }

  /** A link the test creates by hand in the plugins' namespace, deleted at teardown. */
  trackLink(name: string): void {
    this.extraLinks.push(name);
  }

  /** A unique container ID. */
  containerId(): string {
    return testName('ctr');
  }

  hostVeth(containerId: string, ifname = 'eth0', network = this.network): string {
    return hostVethName(network, containerId, ifname);
  }

  /** Runs `plugin` (dist/cni/strand by default) with `verb` in the plugins' namespace. */
  run(call: CniCall, plugin = STRAND_CNI): CniOutcome {
    this.track(call);
    return runPlugin(this.wrap(plugin), withPath(call));
  }

  runAsync(call: CniCall, plugin = STRAND_CNI): Promise<CniOutcome> {
    this.track(call);
    return runPluginAsync(this.wrap(plugin), withPath(call));
  }

  add(
    config: unknown,
    pod: TestNetns | string,
    containerId: string,
    ifname = 'eth0',
    extra: Partial<CniCall> = {},
  ): CniOutcome {
    return this.run({ command: 'ADD', config, netns: netnsPath(pod), containerId, ifname, ...extra });
  }

  del(
    config: unknown,
    pod: TestNetns | string | undefined,
    containerId: string,
    ifname = 'eth0',
    extra: Partial<CniCall> = {},
  ): CniOutcome {
    return this.run({
      command: 'DEL',
      config,
      netns: pod === undefined ? undefined : netnsPath(pod),
      containerId,
      ifname,
      ...extra,
    });
  }

  check(
    config: Record<string, unknown>,
    prevResult: unknown,
    pod: TestNetns | string,
    containerId: string,
    ifname = 'eth0',
  ): CniOutcome {
    return this.run({
      command: 'CHECK',
      config: { ...config, prevResult },
      netns: netnsPath(pod),
      containerId,
      ifname,
    });
  }

  gc(config: Record<string, unknown>, valid: Attachment[]): CniOutcome {
    const list = valid.map((a) => ({ containerID: a.containerId, ifname: a.ifname }));
    return this.run({ command: 'GC', config: { ...config, 'cni.dev/valid-attachments': list } });
  }

  status(config: unknown): CniOutcome {
    return this.run({ command: 'STATUS', config });
  }

  // ---- what the kernel holds, through `ip -j` ----

  /** `ip -j -d link show` in the plugins' namespace (or `netns`). */
  links(netns?: string): IpLink[] {
    return ipJson<IpLink[]>(['-d', 'link', 'show'], netns ?? this.host?.name);
  }

  link(name: string, netns?: string): IpLink | undefined {
    return this.links(netns).find((l) => l.ifname === name);
  }

  /** Links whose master is the bridge. */
  bridgePorts(): IpLink[] {
    return this.links().filter((l) => l.master === this.bridge);
  }

  addresses(dev: string, netns?: string): IpAddr['addr_info'] {
    const out = ipJson<IpAddr[]>(['addr', 'show', 'dev', dev], netns ?? this.host?.name);
    return out[0]?.addr_info ?? [];
  }

  routes(netns: string, family: 4 | 6 = 4): IpRoute[] {
    return ipJson<IpRoute[]>([`-${family}`, 'route', 'show'], netns);
  }

  /** Every file of the IPAM data dir with its content, for exact before/after comparisons. */
  ipamSnapshot(): Record<string, string> {
    return snapshotDir(this.dataDir);
  }

  /** The address files of this network's store (not the lock or last_reserved_ip.*). */
  reservedAddresses(): string[] {
    if (!existsSync(this.storeDir)) return [];
    return readdirSync(this.storeDir)
      .filter((n) => isIP(n) !== 0)
      .sort();
  }

  /** Removes everything the test made. Never throws: it runs after failures too. */
  teardown(): void {
    for (const ns of this.pods) ns.destroy();
    const inHost = this.host ? ['-n', this.host.name] : [];
    for (const a of this.attachments) {
      const veth = this.hostVeth(a.containerId, a.ifname);
      if (trySh('ip', [...inHost, 'link', 'show', 'dev', veth]).status === 0)
        trySh('ip', [...inHost, 'link', 'del', veth]);
    }
    for (const name of this.extraLinks) trySh('ip', [...inHost, 'link', 'del', name]);
    trySh('ip', [...inHost, 'link', 'del', this.bridge]);
    this.host?.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private track(call: CniCall): void {
    if (call.command !== 'ADD' || call.containerId === undefined) return;
    const ifname = call.ifname ?? 'eth0';
    if (!this.attachments.some((a) => a.containerId === call.containerId && a.ifname === ifname)) {
      this.attachments.push({ containerId: call.containerId, ifname });
    }
  }

  /** The plugin itself, or a script that runs it inside the host namespace (argv[0] unchanged). */
  private wrap(plugin: string): string {
    if (!this.host) return plugin;
    let w = this.wrappers.get(plugin);
    if (!w) {
      const bin = join(this.dir, 'bin');
      mkdirSync(bin, { recursive: true });
      w = join(bin, `in-host-${this.wrappers.size}`);
      writeFileSync(w, `#!/bin/sh\nexec ip netns exec ${this.host.name} ${plugin}\n`);
      chmodSync(w, 0o755);
      this.wrappers.set(plugin, w);
    }
    return w;
  }
}

function withPath(call: CniCall): CniCall {
  return { path: `${CNI_BIN}:${REFERENCE_CNI_DIR}`, ...call };
}

export function netnsPath(pod: TestNetns | string): string {
  return typeof pod === 'string' ? pod : pod.path;
}

function snapshotDir(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(full).isDirectory()) Object.assign(out, snapshotDir(full, rel));
    else out[rel] = readFileSync(full, 'utf8');
  }
  return out;
}

/** The fields of a link that a failed ADD must leave alone. */
export function linkFingerprint(l: IpLink): string {
  return JSON.stringify([
    l.ifindex,
    l.ifname,
    l.linkinfo?.info_kind ?? '',
    l.master ?? '',
    l.mtu,
    l.address ?? '',
    [...l.flags].sort(),
  ]);
}

/** Polls `condition` until it holds or `timeoutMs` passes. */
export async function eventually(condition: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** ping (v4 or v6) from a namespace; the status and output. */
export function ping(from: TestNetns, address: string): { status: number; output: string } {
  const r = from.tryExec('ping', ['-c', '1', '-W', '3', address]);
  return { status: r.status, output: r.stdout + r.stderr };
}

export { sh, trySh };

const rand = (n: number): number => Math.floor(Math.random() * n);

/**
 * A random IPv4 pod subnet in 10.128.0.0/9 (default /24), so that tests running at the same time
 * (each with its own bridge in the same root namespace) never hold the same connected route.
 */
export function randomSubnet4(prefix = 24): string {
  const base = (10 << 24) | ((128 + rand(120)) << 16) | (rand(256) << 8) | rand(256);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  const net = (base & mask) >>> 0;
  return `${[24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.')}/${prefix}`;
}

/** A random IPv6 /64 in fd00::/8 (ULA). */
export function randomSubnet6(): string {
  const h = () => (1 + rand(0xffff)).toString(16);
  return `fd00:${h()}:${h()}:${h()}::/64`;
}

/** The n-th address of an IPv4 subnet ("10.1.2.0/24", 1 → "10.1.2.1"). */
export function nthAddress4(subnet: string, n: number): string {
  const [net = ''] = subnet.split('/');
  const v = net.split('.').reduce((acc, o) => acc * 256 + Number(o), 0) + n;
  return [24, 16, 8, 0].map((s) => Math.floor(v / 2 ** s) % 256).join('.');
}

/** The n-th address of an IPv6 /64 from randomSubnet6 ("fd00:a:b:c::/64", 1 → "fd00:a:b:c::1"). */
export function nthAddress6(subnet: string, n: number): string {
  return `${subnet.split('::/')[0]}::${n.toString(16)}`;
}
