// strand uninstall removes everything Strand put on a node, run inside a test "node" namespace with
// its own directories: node state, VXLAN device, Strand's routes, the nftables table, and the bridge
// and IPAM reservations once no pod is attached; a bridge with pods stays; a live agent stops it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STRAND } from '../support/cni.ts';
import { testName } from '../support/names.ts';
import { TestNetns } from '../support/netns.ts';
import { ipJson, sh, trySh } from '../support/sh.ts';

let node: TestNetns;
let dir: string;
let bridge: string;

function uninstall(extra: string[] = []) {
  const args = [
    'uninstall',
    '--cni-bin-dir',
    join(dir, 'bin'),
    '--cni-conf-dir',
    join(dir, 'conf'),
    '--state-dir',
    join(dir, 'state'),
    '--ipam-data-dir',
    join(dir, 'ipam'),
    '--bridge',
    bridge,
    ...extra,
  ];
  const r = spawnSync('ip', ['netns', 'exec', node.name, STRAND, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeEach(() => {
  node = TestNetns.create('node');
  dir = mkdtempSync(join(tmpdir(), 'strand-uninstall-'));
  bridge = testName('br');
  for (const d of ['bin', 'conf', 'state', 'ipam/strand']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'state', 'node.json'), '{}');
  writeFileSync(join(dir, 'ipam', 'strand', '10.244.1.2'), 'c1\r\neth0');
  const n = ['-n', node.name];
  sh('ip', [...n, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
  sh('ip', [...n, 'addr', 'add', '198.18.0.11/24', 'dev', 'eth0']);
  sh('ip', [...n, 'link', 'set', 'eth0', 'up']);
  sh('ip', [
    ...n,
    'link',
    'add',
    'strand.1',
    'type',
    'vxlan',
    'id',
    '1',
    'dstport',
    '4789',
    'local',
    '198.18.0.11',
    'dev',
    'eth0',
    'nolearning',
  ]);
  sh('ip', [...n, 'link', 'set', 'strand.1', 'up']);
  sh('ip', [...n, 'route', 'add', '10.244.2.0/24', 'via', '198.18.0.12', 'dev', 'eth0', 'proto', '0x53']);
  sh('ip', [...n, 'route', 'add', '10.250.0.0/24', 'via', '198.18.0.13', 'dev', 'eth0']);
  sh('ip', [...n, 'link', 'add', bridge, 'type', 'bridge']);
  sh('ip', [
    'netns',
    'exec',
    node.name,
    'nft',
    'add table inet strand; add chain inet strand agent-postrouting { type nat hook postrouting priority srcnat; }',
  ]);
});

afterEach(() => {
  node.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('strand uninstall on a node', () => {
  it('removes the node state, VXLAN device, Strand routes, table, bridge and reservations, and nothing else', () => {
    const dry = uninstall(['--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('would remove link strand.1');
    expect(existsSync(join(dir, 'state', 'node.json'))).toBe(true);

    const r = uninstall();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('removed nftables table inet strand');
    expect(existsSync(join(dir, 'state', 'node.json'))).toBe(false);
    expect(existsSync(join(dir, 'ipam', 'strand'))).toBe(false);
    const links = ipJson<{ ifname: string }[]>(['link'], node.name).map((l) => l.ifname);
    expect(links).not.toContain('strand.1');
    expect(links).not.toContain(bridge);
    expect(links).toContain('eth0');
    const routes = ipJson<{ dst: string }[]>(['route'], node.name).map((x) => x.dst);
    expect(routes).not.toContain('10.244.2.0/24');
    expect(routes).toContain('10.250.0.0/24');
    expect(trySh('ip', ['netns', 'exec', node.name, 'nft', 'list', 'table', 'inet', 'strand']).status).not.toBe(0);

    const again = uninstall();
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('absent nftables table inet strand');
  });

  it('keeps a bridge that still has pods, and their reservations', () => {
    sh('ip', ['-n', node.name, 'link', 'add', 'vethpod', 'master', bridge, 'type', 'veth', 'peer', 'name', 'podside']);
    const r = uninstall();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`kept link ${bridge} (1 pod(s) still attached)`);
    expect(existsSync(join(dir, 'ipam', 'strand', '10.244.1.2'))).toBe(true);
    expect(ipJson<{ ifname: string }[]>(['link'], node.name).map((l) => l.ifname)).toContain(bridge);
  });

  it('refuses while an agent answers on its socket, before removing anything', async () => {
    const sock = join(dir, 'state', 'agent.sock');
    const server: Server = createServer((c) => c.end());
    await new Promise<void>((res) => server.listen(sock, () => res()));
    try {
      const r = uninstall();
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/agent is running/);
      expect(existsSync(join(dir, 'state', 'node.json'))).toBe(true);
      expect(ipJson<{ ifname: string }[]>(['link'], node.name).map((l) => l.ifname)).toContain('strand.1');
    } finally {
      server.close();
    }
  });
});
