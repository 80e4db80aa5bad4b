import { describe, expect, it } from 'vitest';
import { CniError } from '../../src/cni/errors.ts';
import { ipVersionOf, parseResult, resultToVersion, type Result } from '../../src/cni/result.ts';
import { SUPPORTED_VERSIONS } from '../../src/cni/versions.ts';

const full: Result = {
  interfaces: [
    { name: 'cni0', mac: '0a:58:0a:f4:01:01', mtu: 1450 },
    { name: 'veth1a2b3c4d', mac: '12:34:56:78:9a:bc', mtu: 1450 },
    {
      name: 'eth0',
      mac: '0a:58:0a:f4:01:05',
      mtu: 1450,
      sandbox: '/run/netns/p',
      socketPath: '/s.sock',
      pciID: '0000:00:01.0',
    },
  ],
  ips: [
    { address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 2 },
    { address: 'fd00:10:244:1::5/64', gateway: 'fd00:10:244:1::1', interface: 2 },
  ],
  routes: [
    { dst: '0.0.0.0/0', gw: '10.244.1.1', mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 },
    { dst: '::/0' },
  ],
  dns: {
    nameservers: ['10.96.0.10'],
    domain: 'cluster.local',
    search: ['default.svc.cluster.local'],
    options: ['ndots:5'],
  },
};

describe('resultToVersion', () => {
  it('1.1.0 keeps every field, including the 1.1 interface and route fields', () => {
    const out = resultToVersion(full, '1.1.0');
    expect(out.cniVersion).toBe('1.1.0');
    expect(out.interfaces).toEqual(full.interfaces);
    expect(out.ips).toEqual(full.ips);
    expect(out.routes).toEqual(full.routes);
    expect(out.dns).toEqual(full.dns);
  });

  it('1.0.0 drops the 1.1-only fields and has no ips[].version', () => {
    const out = resultToVersion(full, '1.0.0') as any;
    expect(out.interfaces[2]).toEqual({ name: 'eth0', mac: '0a:58:0a:f4:01:05', sandbox: '/run/netns/p' });
    expect(out.routes[0]).toEqual({ dst: '0.0.0.0/0', gw: '10.244.1.1' });
    expect(out.ips[0]).toEqual({ address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 2 });
  });

  for (const v of ['0.3.0', '0.3.1', '0.4.0'] as const) {
    it(`${v} adds ips[].version from the address family`, () => {
      const out = resultToVersion(full, v) as any;
      expect(out.cniVersion).toBe(v);
      expect(out.ips.map((i: any) => i.version)).toEqual(['4', '6']);
      expect(out.interfaces[0]).toEqual({ name: 'cni0', mac: '0a:58:0a:f4:01:01' });
      expect(out.routes[1]).toEqual({ dst: '::/0' });
    });
  }

  it('omits empty lists and keeps an empty dns object, as the reference marshals', () => {
    expect(resultToVersion({}, '1.0.0')).toEqual({ cniVersion: '1.0.0', dns: {} });
  });

  it('a converted result parses back to the same internal result (every version pair)', () => {
    for (const from of SUPPORTED_VERSIONS) {
      const wire = JSON.parse(JSON.stringify(resultToVersion(full, from)));
      const back = parseResult(wire, 'result');
      for (const to of SUPPORTED_VERSIONS) {
        expect(resultToVersion(back, to)).toEqual(resultToVersion(from === '1.1.0' ? full : back, to));
      }
    }
  });
});

describe('parseResult', () => {
  it('reads a 0.3.1 IPAM result (no interfaces, with version)', () => {
    const r = parseResult(
      { cniVersion: '0.3.1', ips: [{ version: '4', address: '203.0.113.2/24', gateway: '203.0.113.1' }], dns: {} },
      'IPAM result',
    );
    expect(r).toEqual({ ips: [{ address: '203.0.113.2/24', gateway: '203.0.113.1' }] });
  });

  it('rejects a version that contradicts the address, with code 6', () => {
    try {
      parseResult({ ips: [{ version: '6', address: '10.0.0.2/24' }] }, 'prevResult');
      throw new Error('no error');
    } catch (e) {
      expect((e as CniError).code).toBe(6);
      expect((e as Error).message).toContain('prevResult');
    }
  });

  it('rejects malformed addresses and names the field', () => {
    try {
      parseResult({ ips: [{ address: '10.0.0.300/24' }] }, 'prevResult');
      throw new Error('no error');
    } catch (e) {
      expect((e as CniError).code).toBe(6);
      expect((e as Error).message).toMatch(/ips\.0\.address/);
    }
  });

  it('tolerates nulls where Go marshals nil slices', () => {
    expect(parseResult({ interfaces: null, ips: null, routes: null, dns: null }, 'x')).toEqual({});
  });

  it('tells address families apart', () => {
    expect(ipVersionOf('10.0.0.1/8')).toBe('4');
    expect(ipVersionOf('::1/128')).toBe('6');
  });
});
