// The strand-ipam verbs called in process, as the strand plugin calls them: ADD's abbreviated
// result, DEL, CHECK, GC and STATUS, and the usage report for metrics.
import { cniRejection } from '../support/cni-error.ts';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadNetConf } from '../../src/cni/config.ts';
import { parseEnv, type Verb } from '../../src/cni/env.ts';
import { ErrorCode } from '../../src/cni/errors.ts';
import { formatResult } from '../../src/cni/result.ts';
import type { Invocation } from '../../src/cni/skel.ts';
import { loadIpamConfig } from '../../src/ipam/config.ts';
import { addressUsage, ipamPlugin, networkAddressUsage } from '../../src/ipam/plugin.ts';
import { parseIp } from '../../src/ipam/range.ts';
import { writeNodeState } from '../../src/contracts/node-state.ts';

let root: string;
let dataDir: string;
let stateDir: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'strand-ipam-plugin-'));
  dataDir = join(root, 'data');
  stateDir = join(root, 'state');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function netConf(ipam: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cniVersion: '1.1.0',
    name: 'inproc',
    type: 'bridge',
    ipam: { type: 'strand-ipam', dataDir, stateDir, ...ipam },
    ...extra,
  };
}

function inv(
  command: Verb,
  config: Record<string, unknown>,
  containerId = 'ctr1',
  ifname = 'eth0',
  args = '',
): Invocation {
  const env = parseEnv({
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: '/var/run/netns/x',
    CNI_IFNAME: ifname,
    CNI_ARGS: args,
    CNI_PATH: '/opt/cni/bin',
  });
  const stdin = JSON.stringify(config);
  const { conf, raw } = loadNetConf(stdin, command);
  return { env, conf, raw, stdin };
}

const storeFiles = (): string[] =>
  readdirSync(join(dataDir, 'inproc'))
    .filter((n) => parseIp(n) !== undefined)
    .sort();

describe('ADD in process', () => {
  it('returns an abbreviated IPAM result: ips with gateway, routes, dns; no interfaces', async () => {
    const resolv = join(root, 'resolv.conf');
    writeFileSync(resolv, 'nameserver 10.96.0.10\nsearch svc.cluster.local\noptions ndots:5\n');
    const config = netConf({
      ranges: [[{ subnet: '10.30.0.0/24' }], [{ subnet: 'fd00:30::/64' }]],
      routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
      resolvConf: resolv,
    });
    const result = await ipamPlugin.add(inv('ADD', config));
    expect(result).toEqual({
      ips: [
        { address: '10.30.0.2/24', gateway: '10.30.0.1' },
        { address: 'fd00:30::2/64', gateway: 'fd00:30::1' },
      ],
      routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
      dns: { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'], options: ['ndots:5'] },
    });
    expect(JSON.parse(formatResult(result, '0.4.0')).ips).toEqual([
      { version: '4', address: '10.30.0.2/24', gateway: '10.30.0.1' },
      { version: '6', address: 'fd00:30::2/64', gateway: 'fd00:30::1' },
    ]);
  });

  it('honours CNI_ARGS IP', async () => {
    const result = await ipamPlugin.add(
      inv('ADD', netConf({ subnet: '10.30.0.0/24' }), 'c', 'eth0', 'IgnoreUnknown=1;IP=10.30.0.77'),
    );
    expect(result.ips).toEqual([{ address: '10.30.0.77/24', gateway: '10.30.0.1' }]);
  });

  it('a configuration error is code 7 before anything is written', async () => {
    const err = await cniRejection(ipamPlugin.add(inv('ADD', netConf({ subnet: '10.30.0.0/31' }))));
    expect(err.code).toBe(ErrorCode.InvalidNetworkConfig);
    expect(err.message).toMatch(/Network 10\.30\.0\.0\/31 too small to allocate from/);
    expect(() => readdirSync(dataDir)).toThrow(/ENOENT/);
  });
});

describe('DEL and CHECK in process', () => {
  it('CHECK finds the allocation after ADD and fails after DEL with the reference message', async () => {
    const config = netConf({ subnet: '10.31.0.0/24' });
    await ipamPlugin.add(inv('ADD', config, 'ck'));
    await ipamPlugin.check(inv('CHECK', config, 'ck'));
    await ipamPlugin.del(inv('DEL', config, 'ck'));
    await ipamPlugin.del(inv('DEL', config, 'ck'));
    const err = await cniRejection(ipamPlugin.check(inv('CHECK', config, 'ck')));
    expect(err.message).toBe('host-local: Failed to find address added by container ck');
    expect(err.code).toBe(ErrorCode.CheckFailed);
  });

  it('DEL of a usePodCidr network works without the node state (it only needs the store)', async () => {
    await ipamPlugin.del(inv('DEL', netConf({ subnet: 'usePodCidr' })));
  });
});

describe('GC in process', () => {
  it('releases what is not in the valid list, keeps legacy files of valid ids, lock and last_reserved_ip', async () => {
    const config = netConf({ subnet: '10.32.0.0/24' });
    for (const id of ['keep', 'drop1', 'drop2']) await ipamPlugin.add(inv('ADD', config, id));
    await ipamPlugin.add(inv('ADD', config, 'keep', 'eth1'));
    writeFileSync(join(dataDir, 'inproc', '10.32.0.100'), 'keep');
    writeFileSync(join(dataDir, 'inproc', '10.32.0.101'), 'gone-legacy');
    const valid = { 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] };
    await ipamPlugin.gc(inv('GC', { ...config, ...valid }));
    expect(storeFiles()).toEqual(['10.32.0.100', '10.32.0.2']);
    const rest = readdirSync(join(dataDir, 'inproc')).sort();
    expect(rest).toContain('lock');
    expect(rest).toContain('last_reserved_ip.0');
  });

  it('accepts the released 1.1.0 key cni.dev/attachments; an empty list releases everything', async () => {
    const config = netConf({ subnet: '10.32.0.0/24' });
    await ipamPlugin.add(inv('ADD', config, 'a'));
    await ipamPlugin.add(inv('ADD', config, 'b'));
    await ipamPlugin.gc(inv('GC', { ...config, 'cni.dev/attachments': [{ containerID: 'b', ifname: 'eth0' }] }));
    expect(storeFiles()).toEqual(['10.32.0.3']);
    await ipamPlugin.gc(inv('GC', { ...config, 'cni.dev/valid-attachments': [] }));
    expect(storeFiles()).toEqual([]);
  });
});

describe('STATUS and usage in process', () => {
  it('ready while addresses are left; code 50 naming the set once exhausted; ready again after DEL', async () => {
    const config = netConf({ subnet: '10.33.0.0/30' });
    await ipamPlugin.status(inv('STATUS', config));
    await ipamPlugin.add(inv('ADD', config, 'only'));
    const err = await cniRejection(ipamPlugin.status(inv('STATUS', config)));
    expect(err.code).toBe(ErrorCode.PluginNotAvailable);
    expect(err.message).toBe('no IP addresses available in range set: 10.33.0.1-10.33.0.2');
    await ipamPlugin.del(inv('DEL', config, 'only'));
    await ipamPlugin.status(inv('STATUS', config));
  });

  it('usePodCidr without node state: STATUS 50, ADD 11; with it both work', async () => {
    const config = netConf({ subnet: 'usePodCidr' });
    const status = await cniRejection(ipamPlugin.status(inv('STATUS', config)));
    expect(status.code).toBe(ErrorCode.PluginNotAvailable);
    expect(status.message).toMatch(/node\.json not found/);
    const add = await cniRejection(ipamPlugin.add(inv('ADD', config)));
    expect(add.code).toBe(ErrorCode.TryAgainLater);
    writeNodeState(stateDir, {
      version: 1,
      nodeName: 'n',
      podCIDRs: ['10.34.5.0/24'],
      clusterCIDRs: ['10.34.0.0/16'],
      mtu: 1500,
      backend: 'host-gw',
      updatedAt: new Date().toISOString(),
    });
    await ipamPlugin.status(inv('STATUS', config));
    expect((await ipamPlugin.add(inv('ADD', config))).ips).toEqual([{ address: '10.34.5.2/24', gateway: '10.34.5.1' }]);
  });

  it('reports addresses in use and free per range set', async () => {
    const config = netConf({ ranges: [[{ subnet: '10.35.0.0/28' }], [{ subnet: 'fd00:35::/112' }]] });
    await ipamPlugin.add(inv('ADD', config, 'u1'));
    await ipamPlugin.add(inv('ADD', config, 'u2'));
    const expected = [
      { index: 0, family: 4, ranges: '10.35.0.1-10.35.0.14', capacity: 13n, used: 2, free: 11n },
      { index: 1, family: 6, ranges: 'fd00:35::1-fd00:35::ffff', capacity: 65534n, used: 2, free: 65532n },
    ];
    expect(networkAddressUsage(config)).toEqual(expected);
    expect(addressUsage(loadIpamConfig(config, 'inproc'))).toEqual(expected);
  });
});

describe('the node state handed on by the strand plugin', () => {
  const state = {
    version: 1 as const,
    nodeName: 'n1',
    podCIDRs: ['10.61.0.0/24'],
    clusterCIDRs: ['10.61.0.0/16'],
    mtu: 1450,
    backend: 'vxlan' as const,
    updatedAt: '2026-01-01T00:00:00.000Z',
  };

  it('is used for its own state dir instead of reading node.json again', async () => {
    // No node.json on disk: the allocation can only come from the state handed on.
    const i = { ...inv('ADD', netConf({ subnet: 'usePodCidr' })), nodeState: { dir: stateDir, state } };
    const result = await ipamPlugin.add(i);
    expect(result.ips).toEqual([{ address: '10.61.0.2/24', gateway: '10.61.0.1' }]);
  });

  it('is ignored for another state dir: node.json is read from the configured one', async () => {
    const i = { ...inv('ADD', netConf({ subnet: 'usePodCidr' })), nodeState: { dir: join(root, 'elsewhere'), state } };
    const err = await cniRejection(ipamPlugin.add(i));
    expect(err.code).toBe(ErrorCode.TryAgainLater);
    writeNodeState(stateDir, { ...state, podCIDRs: ['10.62.0.0/24'] });
    expect((await ipamPlugin.add(i)).ips).toEqual([{ address: '10.62.0.2/24', gateway: '10.62.0.1' }]);
  });
});
