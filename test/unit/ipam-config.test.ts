// strand-ipam configuration: host-local's fields and order of range sets, validation errors with
// the reference's wording and code 7 naming the field, requested IPs, and usePodCidr.
import { cniFailure } from '../support/cni-error.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/cni/errors.ts';
import { DEFAULT_DATA_DIR, loadIpamConfig, resolveRangeSets } from '../../src/ipam/config.ts';
import { formatIp, rangeSetString, type RangeSet } from '../../src/ipam/range.ts';
import { DEFAULT_STATE_DIR, writeNodeState, type NodeState } from '../../src/contracts/node-state.ts';

function conf(ipam: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { cniVersion: '1.1.0', name: 'net1', type: 'bridge', ...extra };
  if (ipam) out.ipam = { type: 'strand-ipam', ...ipam };
  return out;
}

function sets(raw: Record<string, unknown>, args = ''): string[] {
  return resolveRangeSets(loadIpamConfig(raw, 'net1', args)).map((s: RangeSet) => rangeSetString(s));
}

describe('loadIpamConfig: fields and defaults', () => {
  it('reads the legacy single range and applies the defaults', () => {
    const c = loadIpamConfig(conf({ subnet: '10.1.0.0/24' }), 'net1');
    expect(c.dataDir).toBe(DEFAULT_DATA_DIR);
    expect(c.dataDir).toBe('/var/lib/cni/networks');
    expect(c.stateDir).toBe(DEFAULT_STATE_DIR);
    expect(c.network).toBe('net1');
    expect(c.routes).toEqual([]);
    expect(c.usesPodCidr).toBe(false);
    expect(sets(conf({ subnet: '10.1.0.0/24' }))).toEqual(['10.1.0.1-10.1.0.254']);
  });

  it('takes dataDir, stateDir, resolvConf and routes (gw optional, 1.1 attributes kept)', () => {
    const c = loadIpamConfig(
      conf({
        subnet: '10.1.0.0/24',
        dataDir: '/tmp/x',
        stateDir: '/tmp/s',
        resolvConf: '/etc/resolv.conf',
        routes: [{ dst: '0.0.0.0/0' }, { dst: '192.168.0.0/16', gw: '10.1.0.254', priority: 10 }],
      }),
      'net1',
    );
    expect(c.dataDir).toBe('/tmp/x');
    expect(c.stateDir).toBe('/tmp/s');
    expect(c.resolvConf).toBe('/etc/resolv.conf');
    expect(c.routes).toEqual([{ dst: '0.0.0.0/0' }, { dst: '192.168.0.0/16', gw: '10.1.0.254', priority: 10 }]);
  });

  it('treats an empty dataDir as the default, as Go does for ""', () => {
    expect(loadIpamConfig(conf({ subnet: '10.1.0.0/24', dataDir: '' }), 'net1').dataDir).toBe(DEFAULT_DATA_DIR);
  });

  it('orders range sets as the reference: runtimeConfig.ipRanges, legacy subnet, then ranges', () => {
    const raw = conf(
      {
        subnet: '10.2.0.0/24',
        rangeStart: '10.2.0.10',
        ranges: [[{ subnet: '10.3.0.0/24' }], [{ subnet: 'fd00:3::/64', gateway: 'fd00:3::fe' }]],
      },
      { runtimeConfig: { ipRanges: [[{ subnet: '10.1.0.0/24', rangeEnd: '10.1.0.9' }]] } },
    );
    expect(sets(raw)).toEqual([
      '10.1.0.1-10.1.0.9',
      '10.2.0.10-10.2.0.254',
      '10.3.0.1-10.3.0.254',
      'fd00:3::1-fd00:3::ffff:ffff:ffff:ffff',
    ]);
    const resolved = resolveRangeSets(loadIpamConfig(raw, 'net1'));
    expect(formatIp(resolved[3]![0]!.gateway)).toBe('fd00:3::fe');
  });

  it('dual-stack: one set per family', () => {
    expect(sets(conf({ ranges: [[{ subnet: '10.4.0.0/16' }], [{ subnet: 'fd00:4::/64' }]] }))).toEqual([
      '10.4.0.1-10.4.255.254',
      'fd00:4::1-fd00:4::ffff:ffff:ffff:ffff',
    ]);
  });

  it('ignores unknown fields and null values (Go json semantics)', () => {
    expect(
      sets(conf({ subnet: null, ranges: [[{ subnet: '10.5.0.0/24', comment: 'x' }]], routes: null, somethingElse: 1 })),
    ).toEqual(['10.5.0.1-10.5.0.254']);
  });
});

describe('loadIpamConfig: errors (code 7, naming the field)', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['missing ipam', conf(undefined), /^IPAM config missing 'ipam' key$/],
    ['no ranges', conf({}), /^no IP ranges specified$/],
    ['empty ranges', conf({ ranges: [] }), /^no IP ranges specified$/],
    [
      'too small',
      conf({ subnet: '10.0.0.0/31' }),
      /^invalid range set 0 \(ipam\.subnet\): Network 10\.0\.0\.0\/31 too small to allocate from$/,
    ],
    [
      'host bits',
      conf({ ranges: [[{ subnet: '10.0.0.7/24' }]] }),
      /invalid range set 0 \(ipam\.ranges\[0\]\[0\]\): Network has host bits set/,
    ],
    [
      'rangeStart outside',
      conf({ ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: '10.1.0.0/24', rangeStart: '10.2.0.1' }]] }),
      /invalid range set 1 \(ipam\.ranges\[1\]\[0\]\): RangeStart 10\.2\.0\.1 not in network 10\.1\.0\.0\/24/,
    ],
    [
      'rangeEnd outside',
      conf({ subnet: '10.0.0.0/24', rangeEnd: '10.0.1.1' }),
      /RangeEnd 10\.0\.1\.1 not in network 10\.0\.0\.0\/24/,
    ],
    [
      'mixed families',
      conf({ ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: 'fd00::/64' }]] }),
      /invalid range set 0 \(ipam\.ranges\[0\]\): mixed address families/,
    ],
    ['empty set', conf({ ranges: [[]] }), /invalid range set 0 \(ipam\.ranges\[0\]\): empty range set/],
    [
      'overlap in a set',
      conf({ ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: '10.0.0.0/16' }]] }),
      /subnets 10\.0\.0\.1-10\.0\.0\.254 and 10\.0\.0\.1-10\.0\.255\.254 overlap/,
    ],
    [
      'overlapping sets',
      conf({ subnet: '10.0.0.0/24', ranges: [[{ subnet: '10.0.0.128/25' }]] }),
      /^range set 0 overlaps with 1 \(ipam\.subnet and ipam\.ranges\[0\]\)$/,
    ],
    [
      'runtime range',
      conf({ subnet: '10.0.0.0/24' }, { runtimeConfig: { ipRanges: [[{ subnet: 'bad' }]] } }),
      /invalid range set 0 \(runtimeConfig\.ipRanges\[0\]\[0\]\): invalid CIDR address: bad/,
    ],
    ['subnet not a string', conf({ subnet: 5 }), /ipam\.subnet/],
    ['range without subnet', conf({ ranges: [[{ rangeStart: '10.0.0.1' }]] }), /ipam\.ranges\.0\.0\.subnet/],
    ['ranges not a list of lists', conf({ ranges: [{ subnet: '10.0.0.0/24' }] }), /ipam\.ranges\.0/],
    ['route without dst', conf({ subnet: '10.0.0.0/24', routes: [{ gw: '10.0.0.1' }] }), /ipam\.routes\.0\.dst/],
    [
      'route with bad dst',
      conf({ subnet: '10.0.0.0/24', routes: [{ dst: '0.0.0.0' }] }),
      /ipam\.routes\.0\.dst: not a CIDR/,
    ],
    [
      'route with bad gw',
      conf({ subnet: '10.0.0.0/24', routes: [{ dst: '0.0.0.0/0', gw: 'x' }] }),
      /ipam\.routes\.0\.gw: not an IP address/,
    ],
    ['dataDir not a string', conf({ subnet: '10.0.0.0/24', dataDir: 1 }), /ipam\.dataDir/],
    [
      'bad args.cni.ips',
      conf({ subnet: '10.0.0.0/24' }, { args: { cni: { ips: ['10.0.0.300'] } } }),
      /cannot understand ip: args\.cni\.ips\[0\] "10\.0\.0\.300"/,
    ],
    [
      'bad runtimeConfig.ips',
      conf({ subnet: '10.0.0.0/24' }, { runtimeConfig: { ips: ['nope'] } }),
      /cannot understand ip: runtimeConfig\.ips\[0\]/,
    ],
  ];
  for (const [name, raw, message] of cases) {
    it(name, () => {
      const err = cniFailure(() => resolveRangeSets(loadIpamConfig(raw, 'net1')));
      expect(err.code).toBe(ErrorCode.InvalidNetworkConfig);
      expect(err.message).toMatch(message);
    });
  }

  it('a bad CNI_ARGS IP is an environment error (code 4)', () => {
    const err = cniFailure(() => loadIpamConfig(conf({ subnet: '10.0.0.0/24' }), 'net1', 'IP=10.0.0.x'));
    expect(err.code).toBe(ErrorCode.InvalidEnvironment);
    expect(err.message).toMatch(/CNI_ARGS IP "10\.0\.0\.x"/);
  });

  it('unknown CNI_ARGS keys are refused unless IgnoreUnknown, as the reference does', () => {
    expect(cniFailure(() => loadIpamConfig(conf({ subnet: '10.0.0.0/24' }), 'net1', 'FOO=bar')).code).toBe(
      ErrorCode.InvalidEnvironment,
    );
    expect(loadIpamConfig(conf({ subnet: '10.0.0.0/24' }), 'net1', 'IgnoreUnknown=1;FOO=bar').requestedIps).toEqual([]);
  });
});

describe('requested IPs', () => {
  const base = conf({ subnet: '10.0.0.0/24' });
  const req = (raw: Record<string, unknown>, args = ''): string[] =>
    loadIpamConfig(raw, 'net1', args).requestedIps.map(formatIp);

  it('CNI_ARGS IP=, a single address or a comma list, with or without prefix', () => {
    expect(req(base, 'IP=10.0.0.5')).toEqual(['10.0.0.5']);
    expect(req(base, 'IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.0.0.5/24,fd00::5')).toEqual(['10.0.0.5', 'fd00::5']);
  });

  it('args.cni.ips replaces CNI_ARGS IP (CNI conventions), runtimeConfig.ips is added, duplicates dropped', () => {
    const raw = conf(
      { subnet: '10.0.0.0/24' },
      { args: { cni: { ips: ['10.0.0.7'] } }, runtimeConfig: { ips: ['10.0.0.8/24', '10.0.0.7'] } },
    );
    expect(req(raw, 'IP=10.0.0.5')).toEqual(['10.0.0.7', '10.0.0.8']);
  });
});

describe('usePodCidr', () => {
  let stateDir: string;
  const state = (podCIDRs: string[]): NodeState => ({
    version: 1,
    nodeName: 'node-a',
    podCIDRs,
    clusterCIDRs: ['10.244.0.0/16'],
    mtu: 1450,
    backend: 'vxlan',
    updatedAt: new Date().toISOString(),
  });
  beforeEach(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'strand-ipam-state-'));
  });
  afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

  it('top-level subnet usePodCidr: one set per pod CIDR (dual-stack), rangeStart applied to its own family', () => {
    writeNodeState(stateDir, state(['10.244.3.0/24', 'fd00:244:3::/64']));
    const raw = conf({ subnet: 'usePodCidr', rangeStart: '10.244.3.10', stateDir });
    const c = loadIpamConfig(raw, 'net1');
    expect(c.usesPodCidr).toBe(true);
    expect(resolveRangeSets(c).map(rangeSetString)).toEqual([
      '10.244.3.10-10.244.3.254',
      'fd00:244:3::1-fd00:244:3:0:ffff:ffff:ffff:ffff',
    ]);
  });

  it('inside ranges: usePodCidr takes the first IPv4 pod CIDR, usePodCidrIPv6 the IPv6 one', () => {
    writeNodeState(stateDir, state(['fd00:244:3::/64', '10.244.3.0/24']));
    const raw = conf({
      ranges: [[{ subnet: 'usePodCidr', gateway: '10.244.3.254' }], [{ subnet: 'usePodCidrIPv6' }]],
      stateDir,
    });
    const resolved = resolveRangeSets(loadIpamConfig(raw, 'net1'));
    expect(resolved.map(rangeSetString)).toEqual([
      '10.244.3.1-10.244.3.254',
      'fd00:244:3::1-fd00:244:3:0:ffff:ffff:ffff:ffff',
    ]);
    expect(formatIp(resolved[0]![0]!.gateway)).toBe('10.244.3.254');
  });

  it('usePodCidr on an IPv6-only node takes the IPv6 pod CIDR', () => {
    writeNodeState(stateDir, state(['fd00:244:4::/64']));
    expect(sets(conf({ ranges: [[{ subnet: 'usePodCidr' }]], stateDir }))).toEqual([
      'fd00:244:4::1-fd00:244:4:0:ffff:ffff:ffff:ffff',
    ]);
  });

  it('no node state: code 11 saying what is missing and where; loading alone does not need it', () => {
    const c = loadIpamConfig(conf({ subnet: 'usePodCidr', stateDir }), 'net1');
    const err = cniFailure(() => resolveRangeSets(c));
    expect(err.code).toBe(ErrorCode.TryAgainLater);
    expect(err.message).toBe(
      `node state ${stateDir}/node.json not found: the strand agent has not written this node's pod CIDR yet`,
    );
  });

  it('usePodCidrIPv6 on an IPv4-only node: code 11', () => {
    writeNodeState(stateDir, state(['10.244.3.0/24']));
    const err = cniFailure(() => sets(conf({ ranges: [[{ subnet: 'usePodCidrIPv6' }]], stateDir })));
    expect(err.code).toBe(ErrorCode.TryAgainLater);
    expect(err.message).toMatch(/has no IPv6 pod CIDR for node node-a/);
  });

  it('a node without pod CIDRs yet: code 11', () => {
    writeNodeState(stateDir, state([]));
    const err = cniFailure(() => sets(conf({ subnet: 'usePodCidr', stateDir })));
    expect(err.code).toBe(ErrorCode.TryAgainLater);
    expect(err.message).toMatch(/lists no pod CIDR for node node-a/);
  });

  it('a pod CIDR overlapping a literal range set is a configuration error', () => {
    writeNodeState(stateDir, state(['10.244.3.0/24']));
    const err = cniFailure(() =>
      sets(conf({ subnet: 'usePodCidr', ranges: [[{ subnet: '10.244.0.0/16' }]], stateDir })),
    );
    expect(err.code).toBe(ErrorCode.InvalidNetworkConfig);
    expect(err.message).toMatch(/range set 0 overlaps with 1/);
  });
});
