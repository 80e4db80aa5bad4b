// ipMasq with real packets: a pod's connection to an address outside its subnet arrives with the
// node's address; pod-to-pod traffic keeps its own. The plugin runs inside a test "node" namespace
// (ip netns exec), so the bridge, forwarding and the nftables table never touch the root namespace.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STRAND_CNI } from '../support/cni.ts';
import { testName } from '../support/names.ts';
import { TestNetns } from '../support/netns.ts';
import { peerLogger } from '../support/peer-logger.ts';
import { sh } from '../support/sh.ts';

const node = TestNetns.create('node');
const outside = TestNetns.create('out');
const pods = [TestNetns.create('pod'), TestNetns.create('pod')];
const dir = mkdtempSync(join(tmpdir(), 'strand-masq-'));
const bridge = testName('br');
const conf = {
  cniVersion: '1.1.0',
  name: 'masqnet',
  type: 'strand',
  bridge,
  isGateway: true,
  isDefaultGateway: true,
  ipMasq: true,
  logFile: join(dir, 'cni.log'),
  agentSocket: false,
  ipam: { type: 'strand-ipam', dataDir: join(dir, 'ipam'), subnet: '10.123.0.0/24' },
};

function cni(command: string, pod: TestNetns, id: string) {
  const r = spawnSync('ip', ['netns', 'exec', node.name, STRAND_CNI], {
    env: {
      PATH: process.env.PATH,
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS: pod.path,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/nonexistent',
    },
    input: JSON.stringify(conf),
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout ? JSON.parse(r.stdout) : undefined };
}

function connect(from: TestNetns, to: string, port: number): void {
  const code = `const s=require('net').connect(${port},'${to}');s.on('data',()=>{});s.on('end',()=>process.exit(0));s.on('error',(e)=>{console.error(e.message);process.exit(1)})`;
  sh('ip', ['netns', 'exec', from.name, process.execPath, '-e', code]);
}

beforeAll(() => {
  // node <-> outside: 198.18.0.1/30 on the node, 198.18.0.2/30 outside.
  const n = testName('up');
  sh('ip', ['link', 'add', n, 'netns', node.name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside.name]);
  sh('ip', ['-n', node.name, 'addr', 'add', '198.18.0.1/30', 'dev', n]);
  sh('ip', ['-n', node.name, 'link', 'set', n, 'up']);
  sh('ip', ['-n', outside.name, 'addr', 'add', '198.18.0.2/30', 'dev', 'eth0']);
  sh('ip', ['-n', outside.name, 'link', 'set', 'eth0', 'up']);
});

afterAll(() => {
  for (const ns of [...pods, outside, node]) ns.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('ipMasq', () => {
  it('masquerades pod traffic leaving the subnet, not pod-to-pod traffic, and DEL removes the entry', async () => {
    const added = pods.map((p, i) => cni('ADD', p, `masq${i}`));
    expect(added.map((a) => a.code)).toEqual([0, 0]);
    const podIps = added.map((a) => (a.out.ips[0].address as string).split('/')[0] as string);

    const out = peerLogger(outside, 8080);
    const inner = peerLogger(pods[1] as TestNetns, 8081);
    try {
      await Promise.all([out.ready, inner.ready]);
      connect(pods[0] as TestNetns, '198.18.0.2', 8080);
      connect(pods[0] as TestNetns, podIps[1] as string, 8081);
      await new Promise((r) => setTimeout(r, 200));
      expect(out.peers).toEqual(['198.18.0.1']);
      expect(inner.peers).toEqual([podIps[0]]);
    } finally {
      out.stop();
      inner.stop();
    }

    const table = sh('ip', ['netns', 'exec', node.name, 'nft', 'list', 'table', 'inet', 'strand']);
    expect(table).toContain(`${podIps[0]} comment`);
    expect(cni('DEL', pods[0] as TestNetns, 'masq0').code).toBe(0);
    const after = sh('ip', ['netns', 'exec', node.name, 'nft', 'list', 'table', 'inet', 'strand']);
    expect(after).not.toContain(`${podIps[0]} comment`);
    expect(after).toContain(`${podIps[1]} comment`);
  });

  it('DEL after the pod namespace is gone still removes the masquerade entry', () => {
    const pod = TestNetns.create('pod');
    const a = cni('ADD', pod, 'gone1');
    expect(a.code).toBe(0);
    const ip = (a.out.ips[0].address as string).split('/')[0];
    pod.destroy();
    expect(cni('DEL', pod, 'gone1').code).toBe(0);
    expect(sh('ip', ['netns', 'exec', node.name, 'nft', 'list', 'table', 'inet', 'strand'])).not.toContain(
      `${ip} comment`,
    );
  });

  it('GC removes the entries of attachments not in the valid list', () => {
    const pod = TestNetns.create('pod');
    try {
      expect(cni('ADD', pod, 'gc1').code).toBe(0);
      const gc = spawnSync('ip', ['netns', 'exec', node.name, STRAND_CNI], {
        env: { PATH: process.env.PATH, CNI_COMMAND: 'GC', CNI_PATH: '/nonexistent' },
        input: JSON.stringify({ ...conf, 'cni.dev/valid-attachments': [{ containerID: 'masq1', ifname: 'eth0' }] }),
        encoding: 'utf8',
      });
      expect(gc.status, gc.stdout).toBe(0);
      const table = sh('ip', ['netns', 'exec', node.name, 'nft', 'list', 'table', 'inet', 'strand']);
      expect(table.match(/comment/g)).toHaveLength(1);
    } finally {
      pod.destroy();
    }
  });
});
