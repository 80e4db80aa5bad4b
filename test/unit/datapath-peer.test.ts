// peerFromNode against Node objects as the API serves them, well-formed and not: it never throws,
// and a Node that cannot be used says why. Also the deterministic VTEP MAC and the annotations.
import { describe, expect, it } from 'vitest';
import {
  ANNOTATIONS,
  isUsableVtepMac,
  localAnnotations,
  parseUnderlayIps,
  peerFromNode,
  peersFromNodes,
  vtepMacFor,
} from '../../src/datapath/index.ts';

function node(overrides: { name?: unknown; annotations?: unknown; spec?: unknown; status?: unknown } = {}): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'name' in overrides ? overrides.name : 'n2', annotations: overrides.annotations ?? {} },
    spec: overrides.spec ?? { podCIDR: '10.244.2.0/24', podCIDRs: ['10.244.2.0/24'] },
    status: overrides.status ?? {
      addresses: [
        { type: 'Hostname', address: 'n2' },
        { type: 'InternalIP', address: '198.18.0.2' },
      ],
    },
  };
}

describe('peerFromNode', () => {
  it("keeps the creation time (API text, a client-node Date, or the slim Node's createdAt); a bad one is left out", () => {
    const at = (metadata: Record<string, unknown>) => {
      const r = peerFromNode({ ...(node() as object), metadata: { name: 'n2', ...metadata } });
      return r.ok ? r.peer.createdAt : 'unusable';
    };
    expect(at({ creationTimestamp: '2026-01-01T00:00:00Z' })).toBe('2026-01-01T00:00:00Z');
    expect(at({ creationTimestamp: new Date('2026-01-01T00:00:00Z') })).toBe('2026-01-01T00:00:00.000Z');
    expect(at({ createdAt: '2026-01-02T00:00:00Z' })).toBe('2026-01-02T00:00:00Z');
    expect(at({ creationTimestamp: 5 })).toBeUndefined();
  });

  it('reads name, pod CIDRs, InternalIP and no MAC from a plain kubelet Node', () => {
    expect(peerFromNode(node())).toEqual({
      ok: true,
      peer: { name: 'n2', podCidrs: ['10.244.2.0/24'], underlayIps: ['198.18.0.2'] },
    });
  });

  it('prefers the published annotations and normalizes what it reads', () => {
    const r = peerFromNode(
      node({
        annotations: {
          [ANNOTATIONS.underlayIp]: ' 198.18.0.9 , 2001:DB8:0::9 ',
          [ANNOTATIONS.vtepMac]: '0E:AA:BB:CC:DD:EE',
          [ANNOTATIONS.backend]: 'vxlan',
        },
        spec: { podCIDRs: ['10.244.2.7/24', 'fd00:2:0::/64'] },
      }),
    );
    expect(r).toEqual({
      ok: true,
      peer: {
        name: 'n2',
        podCidrs: ['10.244.2.0/24', 'fd00:2::/64'],
        underlayIps: ['198.18.0.9', '2001:db8::9'],
        vtepMac: '0e:aa:bb:cc:dd:ee',
        backend: 'vxlan',
      },
    });
  });

  it('falls back from podCIDRs to podCIDR, and takes the first InternalIP of each family', () => {
    const r = peerFromNode(
      node({
        spec: { podCIDR: '10.244.3.0/24' },
        status: {
          addresses: [
            { type: 'ExternalIP', address: '203.0.113.1' },
            { type: 'InternalIP', address: '198.18.0.3' },
            { type: 'InternalIP', address: '198.18.0.33' },
            { type: 'InternalIP', address: 'fd99::3' },
          ],
        },
      }),
    );
    expect(r).toMatchObject({
      ok: true,
      peer: { podCidrs: ['10.244.3.0/24'], underlayIps: ['198.18.0.3', 'fd99::3'] },
    });
  });

  it.each([
    ['not an object', 42, undefined, /not a Node object/],
    ['null', null, undefined, /not a Node object/],
    ['no metadata', { spec: {} }, undefined, /not a Node object/],
    ['no name', node({ name: '' }), undefined, /metadata.name is missing/],
    ['name not a string', node({ name: 7 }), undefined, /metadata.name is missing/],
    ['no pod CIDR yet', node({ spec: {} }), 'n2', /no pod CIDR allocated yet/],
    ['empty podCIDRs and podCIDR', node({ spec: { podCIDR: '', podCIDRs: [] } }), 'n2', /no pod CIDR allocated yet/],
    ['spec not an object', node({ spec: 'x' }), 'n2', /no pod CIDR allocated yet/],
    ['malformed pod CIDR', node({ spec: { podCIDRs: ['10.244.2.0'] } }), 'n2', /malformed pod CIDR "10.244.2.0"/],
    ['pod CIDR not a string', node({ spec: { podCIDRs: [24] } }), 'n2', /malformed pod CIDR 24/],
    ['prefix too long', node({ spec: { podCIDRs: ['10.244.2.0/33'] } }), 'n2', /malformed pod CIDR/],
    [
      'two IPv4 pod CIDRs',
      node({ spec: { podCIDRs: ['10.244.2.0/24', '10.245.2.0/24'] } }),
      'n2',
      /more than one IPv4 pod CIDR/,
    ],
    [
      'no address at all',
      node({ status: { addresses: [{ type: 'Hostname', address: 'n2' }] } }),
      'n2',
      /no underlay address/,
    ],
    ['status missing', node({ status: 'gone' }), 'n2', /no underlay address/],
    [
      'malformed InternalIP only',
      node({ status: { addresses: [{ type: 'InternalIP', address: 'n2.local' }] } }),
      'n2',
      /no underlay address/,
    ],
    [
      'malformed underlay annotation',
      node({ annotations: { [ANNOTATIONS.underlayIp]: '198.18.0.300' } }),
      'n2',
      /strand.dev\/underlay-ip="198.18.0.300": "198.18.0.300" is not an IP address/,
    ],
    [
      'empty underlay annotation',
      node({ annotations: { [ANNOTATIONS.underlayIp]: '' } }),
      'n2',
      /one address per family/,
    ],
    [
      'two IPv4 underlay addresses',
      node({ annotations: { [ANNOTATIONS.underlayIp]: '198.18.0.2,198.18.0.3' } }),
      'n2',
      /more than one IPv4 address/,
    ],
    [
      'malformed MAC',
      node({ annotations: { [ANNOTATIONS.vtepMac]: '0e:aa:bb:cc:dd' } }),
      'n2',
      /vtep-mac="0e:aa:bb:cc:dd" is not a unicast MAC/,
    ],
    ['multicast MAC', node({ annotations: { [ANNOTATIONS.vtepMac]: '01:00:5e:00:00:01' } }), 'n2', /not a unicast MAC/],
    ['all-zero MAC', node({ annotations: { [ANNOTATIONS.vtepMac]: '00:00:00:00:00:00' } }), 'n2', /not a unicast MAC/],
  ])('%s: not usable, with a reason', (_what, input, name, reason) => {
    const r = peerFromNode(input);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.name).toBe(name);
      expect(r.reason).toMatch(reason);
    }
  });

  it('ignores annotations that are not strings and annotations that are not an object', () => {
    expect(peerFromNode(node({ annotations: { [ANNOTATIONS.vtepMac]: 5 } }))).toMatchObject({ ok: true });
    expect(peerFromNode(node({ annotations: 'x' }))).toMatchObject({ ok: true });
  });

  it('never throws, whatever the JSON', () => {
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const leaves = [null, 0, -1, 1.5, '', 'x', '10.244.2.0/24', '198.18.0.2', '0e:00:00:00:00:02', true, [], {}];
    const keys = [
      'metadata',
      'name',
      'annotations',
      'spec',
      'podCIDR',
      'podCIDRs',
      'status',
      'addresses',
      'type',
      'address',
      'InternalIP',
      ANNOTATIONS.underlayIp,
      ANNOTATIONS.vtepMac,
      ANNOTATIONS.backend,
    ];
    const value = (depth: number): unknown => {
      const r = random();
      if (depth > 4 || r < 0.4) return leaves[Math.floor(random() * leaves.length)];
      if (r < 0.6) return Array.from({ length: Math.floor(random() * 3) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(random() * 4); i > 0; i--)
        o[keys[Math.floor(random() * keys.length)]!] = value(depth + 1);
      return o;
    };
    for (let i = 0; i < 5000; i++) {
      // Every other one past the metadata check, so that spec, status and annotations get garbage too.
      const input =
        i % 2 === 0 ? value(0) : { metadata: { name: 'n', annotations: value(1) }, spec: value(1), status: value(1) };
      const r = peerFromNode(input);
      expect(typeof r.ok).toBe('boolean');
    }
  });

  it('peersFromNodes skips this node and collects the unusable ones', () => {
    const r = peersFromNodes(
      [node({ name: 'n1' }), node({ name: 'n2' }), node({ name: 'n3', spec: {} }), node({ name: 'n1', spec: {} })],
      'n1',
    );
    expect(r.peers.map((p) => p.name)).toEqual(['n2']);
    expect(r.unusable).toEqual([{ name: 'n3', reason: expect.stringMatching(/no pod CIDR/) }]);
  });
});

describe('annotations', () => {
  it('publishes backend, underlay addresses and (VXLAN) the VTEP MAC, which peerFromNode reads back', () => {
    const ann = localAnnotations('vxlan', { underlayIps: ['198.18.0.1', '2001:db8::1'] }, vtepMacFor('n1'));
    expect(ann).toEqual({
      'strand.dev/backend': 'vxlan',
      'strand.dev/underlay-ip': '198.18.0.1,2001:db8::1',
      'strand.dev/vtep-mac': vtepMacFor('n1'),
    });
    expect(localAnnotations('host-gw', { underlayIps: ['198.18.0.1'] })).toEqual({
      'strand.dev/backend': 'host-gw',
      'strand.dev/underlay-ip': '198.18.0.1',
    });
    const back = peerFromNode(node({ name: 'n1', annotations: ann }));
    expect(back).toMatchObject({
      ok: true,
      peer: { underlayIps: ['198.18.0.1', '2001:db8::1'], vtepMac: vtepMacFor('n1'), backend: 'vxlan' },
    });
  });

  it('parseUnderlayIps', () => {
    expect(parseUnderlayIps('198.18.0.1')).toEqual(['198.18.0.1']);
    expect(parseUnderlayIps('2001:db8::1,198.18.0.1')).toEqual(['2001:db8::1', '198.18.0.1']);
    expect(parseUnderlayIps('198.18.0.1,')).toMatch(/one address per family/);
  });
});

describe('vtepMacFor', () => {
  it('is stable, locally administered and unicast, and differs between nodes', () => {
    const names = Array.from({ length: 2000 }, (_, i) => `node-${i}`);
    const macs = names.map(vtepMacFor);
    expect(vtepMacFor('node-0')).toBe(macs[0]);
    for (const mac of macs) {
      expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      const first = parseInt(mac.slice(0, 2), 16);
      expect(first & 0x01).toBe(0); // unicast
      expect(first & 0x02).toBe(2); // locally administered
      expect(isUsableVtepMac(mac)).toBe(true);
    }
    expect(new Set(macs).size).toBe(names.length);
  });

  it('is pinned: a change here would re-MAC every node of an upgraded cluster', () => {
    expect(vtepMacFor('n1')).toMatchInlineSnapshot(`"3e:54:fd:9d:d1:bf"`);
  });
});
