// The agent's egress masquerade with real packets, all inside test namespaces:
//
//   pod (10.77.1.2, fd00:77:0:1::2) ── bridge ── node ── routed link ── other pod (10.77.2.2, fd00:77:0:2::2)
//                                               └──── underlay ───── outside (198.18.77.2, 2001:2:77::2)
//
// Cluster CIDRs 10.77.0.0/16 and fd00:77::/48. The outside namespace has no route back to the pods, so
// a connection from the pod reaches its server only when it is masqueraded to the node's address; the
// other pod sees the pod's own address. A `cni-test` chain and set stand in for the CNI plugin's
// objects in the same table and must come through every reconcile and the removal unchanged.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcileMasquerade, removeMasquerade } from '../../src/agent/masquerade.ts';
import { createNftRunner } from '../../src/nft/runner.ts';
import { testName } from '../support/names.ts';
import { TestNetns } from '../support/netns.ts';
import { peerLogger } from '../support/peer-logger.ts';
import { sh } from '../support/sh.ts';

const node = TestNetns.create('node');
const pod = TestNetns.create('pod');
const otherPod = TestNetns.create('opod');
const outside = TestNetns.create('out');
const nft = createNftRunner({ netns: node.name });
const config = { clusterCidrs: ['10.77.0.0/16', 'fd00:77::/48'] };

const POD = { v4: '10.77.1.2', v6: 'fd00:77:0:1::2' };
const OTHER_POD = { v4: '10.77.2.2', v6: 'fd00:77:0:2::2' };
const NODE_UNDERLAY = { v4: '198.18.77.1', v6: '2001:2:77::1' };
const OUTSIDE = { v4: '198.18.77.2', v6: '2001:2:77::2' };

function ipIn(ns: TestNetns, args: string[]): void {
  sh('ip', ['-n', ns.name, ...args]);
}

/** A veth pair from the node to `peer` (named eth0 there), addressed on both ends. */
function link(peer: TestNetns, nodeAddrs: string[], peerAddrs: string[]): string {
  const name = testName('veth');
  sh('ip', ['link', 'add', name, 'netns', node.name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer.name]);
  for (const a of nodeAddrs) ipIn(node, ['addr', 'add', a, 'dev', name, ...(a.includes(':') ? ['nodad'] : [])]);
  for (const a of peerAddrs) ipIn(peer, ['addr', 'add', a, 'dev', 'eth0', ...(a.includes(':') ? ['nodad'] : [])]);
  ipIn(node, ['link', 'set', name, 'up']);
  ipIn(peer, ['link', 'set', 'eth0', 'up']);
  return name;
}

function nodeNft(args: string[]): string {
  return node.exec('nft', args);
}

function table(): string {
  return nodeNft(['list', 'table', 'inet', 'strand']);
}

/** The objects named cni-* as `nft list` shows them, handles left out. */
function cniObjects(): string {
  const out: string[] = [];
  let inCni = false;
  for (const line of table().split('\n')) {
    const m = /^\t(chain|set|map) (\S+) \{/.exec(line);
    if (m) inCni = m[2]!.startsWith('cni-');
    if (inCni) out.push(line);
    if (line === '\t}') inCni = false;
  }
  return out.join('\n');
}

/** Connects from `from` to `to`; true when the connection completed within 1.5 s. */
function connects(from: TestNetns, to: string, port: number): Promise<boolean> {
  const code = `const s=require('net').connect(${port},'${to}');s.setTimeout(1500,()=>process.exit(2));s.on('data',()=>{});s.on('end',()=>process.exit(0));s.on('error',()=>process.exit(1))`;
  const child = spawn('ip', ['netns', 'exec', from.name, process.execPath, '-e', code], { stdio: 'ignore' });
  return new Promise((resolve) => child.on('close', (status) => resolve(status === 0)));
}

const out = peerLogger(outside, 8080);
const inner = peerLogger(otherPod, 8081);

/** The source address `server` saw for one connection from the pod; null when it did not connect. */
async function seenFrom(server: typeof out, to: string, port: number): Promise<string | null> {
  const before = server.peers.length;
  if (!(await connects(pod, to, port))) return null;
  for (let i = 0; i < 50 && server.peers.length === before; i++) await new Promise((r) => setTimeout(r, 20));
  return server.peers[before] ?? 'connected, but the server logged no peer';
}

/** Where connections from the pod arrive, per destination, IPv4 then IPv6. */
async function sources(): Promise<{ outside: (string | null)[]; otherPod: (string | null)[] }> {
  return {
    outside: [await seenFrom(out, OUTSIDE.v4, 8080), await seenFrom(out, OUTSIDE.v6, 8080)],
    otherPod: [await seenFrom(inner, OTHER_POD.v4, 8081), await seenFrom(inner, OTHER_POD.v6, 8081)],
  };
}

beforeAll(async () => {
  for (const f of ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']) node.exec('sysctl', ['-qw', f]);
  // The pod behind a bridge, as the CNI plugin wires it.
  const bridge = testName('br');
  ipIn(node, ['link', 'add', bridge, 'type', 'bridge']);
  ipIn(node, ['addr', 'add', '10.77.1.1/24', 'dev', bridge]);
  ipIn(node, ['addr', 'add', 'fd00:77:0:1::1/64', 'dev', bridge, 'nodad']);
  ipIn(node, ['link', 'set', bridge, 'up']);
  const podVeth = link(pod, [], [`${POD.v4}/24`, `${POD.v6}/64`]);
  ipIn(node, ['link', 'set', podVeth, 'master', bridge]);
  ipIn(pod, ['route', 'add', 'default', 'via', '10.77.1.1']);
  ipIn(pod, ['-6', 'route', 'add', 'default', 'via', 'fd00:77:0:1::1']);
  // A pod on another node, reached over a routed link inside the cluster CIDR.
  link(otherPod, ['10.77.2.1/24', 'fd00:77:0:2::1/64'], [`${OTHER_POD.v4}/24`, `${OTHER_POD.v6}/64`]);
  ipIn(otherPod, ['route', 'add', 'default', 'via', '10.77.2.1']);
  ipIn(otherPod, ['-6', 'route', 'add', 'default', 'via', 'fd00:77:0:2::1']);
  // The outside world on the underlay: no route back to the pods.
  link(outside, [`${NODE_UNDERLAY.v4}/30`, `${NODE_UNDERLAY.v6}/64`], [`${OUTSIDE.v4}/30`, `${OUTSIDE.v6}/64`]);
  // The plugin's objects, made by hand in the same table.
  sh('ip', ['netns', 'exec', node.name, 'nft', '-f', '-'], {
    input: [
      'add table inet strand',
      'add chain inet strand cni-test { type nat hook postrouting priority srcnat ; }',
      'add set inet strand cni-test { type ipv4_addr ; }',
      'add element inet strand cni-test { 10.77.9.9 comment "vethcafe" }',
      'add rule inet strand cni-test ip saddr @cni-test counter',
      '',
    ].join('\n'),
  });
  await Promise.all([out.ready, inner.ready]);
});

afterAll(() => {
  out.stop();
  inner.stop();
  for (const ns of [pod, otherPod, outside, node]) ns.destroy();
});

describe('egress masquerade', () => {
  it('without it, the pod cannot reach the outside (no route back), but reaches the other pod', async () => {
    expect(await sources()).toEqual({ outside: [null, null], otherPod: [POD.v4, POD.v6] });
  });

  it("masquerades traffic leaving the cluster CIDR to the node's address; pod-to-pod keeps the pod's", async () => {
    const cni = cniObjects();
    const r = await reconcileMasquerade(nft, config);
    expect(r.changed).toBe(true);
    expect(await sources()).toEqual({ outside: [NODE_UNDERLAY.v4, NODE_UNDERLAY.v6], otherPod: [POD.v4, POD.v6] });
    expect(cniObjects()).toBe(cni);
  });

  it('a second reconcile changes nothing', async () => {
    const before = nodeNft(['-a', 'list', 'table', 'inet', 'strand']);
    expect(await reconcileMasquerade(nft, config)).toEqual({ changed: false, script: '' });
    expect(nodeNft(['-a', 'list', 'table', 'inet', 'strand'])).toBe(before);
  });

  it('repairs a chain flushed behind its back and follows a changed CIDR list', async () => {
    const cni = cniObjects();
    nodeNft(['flush', 'chain', 'inet', 'strand', 'agent-postrouting']);
    expect((await sources()).outside).toEqual([null, null]);
    expect((await reconcileMasquerade(nft, config)).changed).toBe(true);
    expect((await sources()).outside).toEqual([NODE_UNDERLAY.v4, NODE_UNDERLAY.v6]);

    // Widening the v4 cluster CIDR is an element swap in one transaction (delete before add).
    const r = await reconcileMasquerade(nft, { clusterCidrs: ['10.76.0.0/15', 'fd00:77::/48'] });
    expect(r.script).not.toMatch(/chain|rule/);
    expect(await sources()).toEqual({ outside: [NODE_UNDERLAY.v4, NODE_UNDERLAY.v6], otherPod: [POD.v4, POD.v6] });
    // With the other pod's range outside the cluster CIDRs, it too sees the node's address.
    await reconcileMasquerade(nft, { clusterCidrs: ['10.77.1.0/24', 'fd00:77:0:1::/64'] });
    expect((await sources()).otherPod).toEqual(['10.77.2.1', 'fd00:77:0:2::1']);
    await reconcileMasquerade(nft, config);
    expect(cniObjects()).toBe(cni);
  });

  it("removal takes only the agent's objects: the table and the plugin's objects stay", async () => {
    const cni = cniObjects();
    expect((await removeMasquerade(nft)).changed).toBe(true);
    expect(table()).not.toMatch(/agent-/);
    expect(cniObjects()).toBe(cni);
    expect(cni).toContain('10.77.9.9 comment "vethcafe"');
    expect((await sources()).outside).toEqual([null, null]);
    expect((await removeMasquerade(nft)).changed).toBe(false);
  });
});
