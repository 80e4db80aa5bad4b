// The planned flat layout of the ClusterNetworkPolicy tiers (src/policy/clusternetworkpolicy/
// flat-render.ts, not yet wired into renderPolicy) against the real nft and kernel, inside a test
// network namespace: put by hand over renderPolicy's table in place of its Admin and Baseline pod
// chains, nft's check mode accepts the full build (interval verdict maps of address ranges, the
// concatenated `inet_proto . inet_service` interval maps with port ranges, `!= @set`, jumps and the
// egress Accept's goto), the kernel applies it and lists the maps' elements back as rendered. The
// batch adds chains before sets and maps (see below: the wiring's diff must do the same).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderFlatClusterTiers } from '../../src/policy/clusternetworkpolicy/flat-render.ts';
import { emptyTableState } from '../../src/nft/objects.ts';
import { createNftRunner } from '../../src/nft/runner.ts';
import { compilePolicy, fullBuildPolicy, renderPolicy, type DesiredPolicyTable } from '../../src/policy/index.ts';
import { TestNetns } from '../support/netns.ts';

const ns = TestNetns.create('pcf');
const dir = mkdtempSync(join(tmpdir(), 'strand-pcf-'));
const nft = createNftRunner({ netns: ns.name });

afterAll(() => {
  ns.destroy();
  rmSync(dir, { recursive: true, force: true });
});

function model() {
  const namespaces = ['x', 'y'].map((name) => ({
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name, team: name === 'x' ? 'red' : 'blue' } },
  }));
  const pods = [
    { name: 'a', namespace: 'x', node: 'n1', ips: ['10.244.0.11', 'fd00:244::11'] },
    { name: 'b', namespace: 'y', node: 'n2', ips: ['10.244.1.12', 'fd00:244:1::12'] },
    { name: 'c', namespace: 'y', node: 'n1', ips: ['10.244.0.13'] },
  ].map((p) => ({
    metadata: { name: p.name, namespace: p.namespace, labels: { app: p.name } },
    spec: {
      nodeName: p.node,
      containers: [{ ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }],
    },
    status: { phase: 'Running', podIPs: p.ips.map((ip) => ({ ip })) },
  }));
  const cnp = (name: string, tier: string, priority: number, spec: Record<string, unknown>) => ({
    metadata: { name },
    spec: { tier, priority, subject: { namespaces: {} }, ...spec },
  });
  const clusterNetworkPolicies = [
    cnp('admin', 'Admin', 1, {
      ingress: [
        {
          name: 'pass-red',
          action: 'Pass',
          from: [{ namespaces: { matchLabels: { team: 'red' } } }],
          protocols: [{ tcp: { destinationPort: { range: { start: 8000, end: 8100 } } } }],
        },
        { name: 'deny-blue', action: 'Deny', from: [{ namespaces: { matchLabels: { team: 'blue' } } }] },
      ],
      egress: [
        {
          name: 'accept-net',
          action: 'Accept',
          to: [{ networks: ['10.0.0.0/8', 'fd00::/8'] }],
          protocols: [{ udp: { destinationPort: { number: 53 } } }],
        },
        {
          name: 'pass-http',
          action: 'Pass',
          to: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'b' } } } }],
          protocols: [{ tcp: { destinationNamedPort: 'http' } }],
        },
        { name: 'deny-rest', action: 'Deny', to: [{ networks: ['0.0.0.0/0', '::/0'] }] },
        { name: 'deny-meta', action: 'Deny', to: [{ networks: ['169.254.169.254/32'] }] },
      ],
    }),
    cnp('baseline', 'Baseline', 5, {
      ingress: [{ name: 'deny-all', action: 'Deny', from: [{ namespaces: {} }] }],
    }),
  ];
  return compilePolicy({
    nodeName: 'n1',
    nodeAddresses: ['192.168.50.1'],
    namespaces,
    pods,
    policies: [],
    clusterNetworkPolicies,
  });
}

describe('the flat ClusterNetworkPolicy layout on the kernel', () => {
  it('nft -c accepts the full build; the kernel applies it and lists the flat maps back as rendered', async () => {
    const m = model();
    const table = renderPolicy(m);
    const flat = renderFlatClusterTiers(m, { logDenied: { perSecond: 5 } });
    expect(flat.groups.size).toBeGreaterThan(0);
    const want: DesiredPolicyTable = {
      ...table,
      chains: new Map([...table.chains, ...flat.chains]),
      sets: new Map([...table.sets, ...flat.sets]),
      elements: new Map([...table.elements, ...flat.elements]),
      comments: new Map([...table.comments, ...flat.comments]),
    };
    // The kernel (nft 1.0.6 here) refuses an element of an interval verdict map created before the
    // chain it jumps to in the same batch (ENOENT), whatever the element; fullBuildPolicy adds sets
    // and maps before chains, so the wiring must add chains first. The script here is reordered so.
    const lines = fullBuildPolicy(want, emptyTableState()).render().split('\n');
    const kind = (re: RegExp) => lines.filter((l) => re.test(l));
    const reordered = [
      ...kind(/^add table /),
      ...kind(/^add chain /),
      ...kind(/^add (set|map) /),
      ...lines.filter((l) => !/^add (table|chain|set|map) /.test(l)),
    ];
    expect(reordered.length).toBe(lines.length);
    const script = join(dir, 'build.nft');
    writeFileSync(script, reordered.join('\n'));
    const check = ns.tryExec('nft', ['-c', '-f', script]);
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
    const applied = ns.tryExec('nft', ['-f', script]);
    expect(applied.stderr).toBe('');
    expect(applied.status).toBe(0);
    const listed = await nft.list();
    for (const name of flat.sets.keys()) {
      const got = listed.maps.get(name) ?? listed.sets.get(name);
      expect(got, name).toBeDefined();
      const text = (es: readonly { key: readonly string[]; value?: readonly string[] | undefined }[]) =>
        es.map((e) => `${e.key.join(' . ')}${e.value ? ` : ${e.value.join(' ')}` : ''}`).sort();
      expect(text(got?.elements ?? []), name).toEqual(text(flat.elements.get(name) ?? []));
    }
    for (const name of flat.chains.keys()) expect(listed.chains.has(name), name).toBe(true);
  });
});
