// The flat layout of the ClusterNetworkPolicy tiers (src/policy/clusternetworkpolicy/flat-render.ts,
// what renderPolicy writes for them) against the real nft and kernel, inside a test network
// namespace: nft's check mode accepts fullBuildPolicy's batch (interval verdict maps of address
// ranges, the concatenated `inet_proto . inet_service` interval maps with port ranges, `!= @set`,
// jumps and the egress Accept's goto), the kernel applies it and lists the maps' elements back as
// rendered; then diffPolicy's batch to a changed policy (groups regrouped: maps, class chains and
// rule chains added and removed) applies and leaves no drift. The batches add chains before sets
// and maps (nft refuses the other order, see below).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderFlatClusterTiers } from '../../src/policy/clusternetworkpolicy/flat-groups.ts';
import { emptyTableState } from '../../src/nft/objects.ts';
import { createNetlinkTransport } from '../../src/nft/netlink/transport.ts';
import { createNftRunner } from '../../src/nft/runner.ts';
import { compilePolicy, diffPolicy, fullBuildPolicy, policyDrift, renderPolicy } from '../../src/policy/index.ts';
import { TestNetns } from '../support/netns.ts';

const ns = TestNetns.create('pcf');
const nlNs = TestNetns.create('pcfnl');
const dir = mkdtempSync(join(tmpdir(), 'strand-pcf-'));
const nft = createNftRunner({ netns: ns.name });

afterAll(() => {
  ns.destroy();
  nlNs.destroy();
  rmSync(dir, { recursive: true, force: true });
});

function model(change = false) {
  const teams: Record<string, string> = { x: 'red', y: 'blue', z: 'green' };
  const namespaces = ['x', 'y', 'z'].map((name) => ({
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name, team: teams[name] as string } },
  }));
  const pods = [
    { name: 'a', namespace: 'x', node: 'n1', ips: ['10.244.0.11', 'fd00:244::11'] },
    { name: 'b', namespace: 'y', node: 'n2', ips: ['10.244.1.12', 'fd00:244:1::12'] },
    { name: 'c', namespace: 'y', node: 'n1', ips: ['10.244.0.13'] },
    { name: 'd', namespace: 'y', node: 'n1', ips: ['10.244.0.14'] },
    { name: 'e', namespace: 'z', node: 'n2', ips: ['10.244.1.15'] },
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
  // Pods c and d (namespace y) have rules pod a lacks: their Admin ingress group is the base (two
  // pods), a's an overlay of it where green's address decides nothing for a (a `return` element).
  const onlyY = { subject: { namespaces: { matchLabels: { team: 'blue' } } } };
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
    cnp('admin-y', 'Admin', 2, {
      ...onlyY,
      ingress: [{ name: 'deny-green', action: 'Deny', from: [{ namespaces: { matchLabels: { team: 'green' } } }] }],
    }),
    // The change: a new Admin policy ahead of the others (new classes, new rule chains), and one for
    // pod d alone (d's group becomes an overlay of the base: rules inserted).
    ...(change
      ? [
          cnp('admin-d', 'Admin', 0, {
            subject: { pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'd' } } } },
            ingress: [
              {
                name: 'deny-e',
                action: 'Deny',
                from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'e' } } } }],
              },
            ],
          }),
          cnp('admin-first', 'Admin', 0, {
            ingress: [
              {
                name: 'accept-a',
                action: 'Accept',
                from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'a' } } } }],
                protocols: [{ tcp: { destinationPort: { range: { start: 9000, end: 9100 } } } }],
              },
            ],
          }),
        ]
      : []),
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
    const want = renderPolicy(m, { logDenied: { perSecond: 5 } });
    const flat = renderFlatClusterTiers(m, { logDenied: { perSecond: 5 } });
    expect(flat.groups.size).toBeGreaterThan(0);
    // The kernel (nft 1.0.6 here) refuses an element of an interval verdict map created before the
    // chain it jumps to in the same batch (ENOENT), whatever the element: fullBuildPolicy adds chains
    // first.
    const lines = fullBuildPolicy(want, emptyTableState()).render().split('\n');
    const firstMap = lines.findIndex((l) => /^add (set|map) /.test(l));
    const lastChain = lines.findLastIndex((l) => /^add chain /.test(l));
    expect(lastChain).toBeLessThan(firstMap);
    const script = join(dir, 'build.nft');
    writeFileSync(script, lines.join('\n'));
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
    expect(policyDrift(want, listed)).toEqual([]);
    // The overlay maps (a group's ranges that decide apart from its tier's base map) went in: here a
    // range that decides nothing for pod a (`return`); after the change, a class reached by `goto`.
    const overlayValues = (t: typeof want) =>
      [...t.elements]
        .filter(([name]) => /-cm-/.test(name))
        .flatMap(([, list]) => list.map((e) => e.value?.join(' ') ?? ''));
    expect(overlayValues(want)).toContain('return');

    // A change: diffPolicy's batch applies, and the kernel then holds exactly the new table.
    const next = renderPolicy(model(true), { logDenied: { perSecond: 5 } });
    const added = [...next.chains.keys()].filter((n) => !want.chains.has(n));
    const removed = [...want.chains.keys()].filter((n) => !next.chains.has(n));
    expect(added.length, 'the change adds chains').toBeGreaterThan(0);
    expect(overlayValues(next).some((v) => v.startsWith('goto '))).toBe(true);
    const diff = join(dir, 'diff.nft');
    writeFileSync(diff, diffPolicy(want, next).render());
    const changed = ns.tryExec('nft', ['-f', diff]);
    expect(changed.stderr).toBe('');
    expect(changed.status).toBe(0);
    expect(policyDrift(next, await nft.list()), `removed ${removed.length} chains`).toEqual([]);
    // And back (what the change added goes).
    writeFileSync(diff, diffPolicy(next, want).render());
    const back = ns.tryExec('nft', ['-f', diff]);
    expect(back.stderr).toBe('');
    expect(back.status).toBe(0);
    expect(policyDrift(want, await nft.list())).toEqual([]);
  });

  it('over netlink (the agent transport): the overlay maps list back as rendered, goto and return', async () => {
    const nl = createNetlinkTransport({ netns: nlNs.name });
    const text = (es: readonly { key: readonly string[]; value?: readonly string[] | undefined }[]) =>
      es.map((e) => `${e.key.join(' . ')}${e.value ? ` : ${e.value.join(' ')}` : ''}`).sort();
    // Elements are listed for the sets named (as adoption asks for the dispatch maps).
    const check = async (t: typeof want) => {
      const overlays = [...t.sets.keys()].filter((n) => /-cm-/.test(n));
      expect(overlays.length).toBeGreaterThan(0);
      const got = await nl.list({ chains: [...t.chains.keys()], sets: overlays });
      for (const n of overlays) expect(text(got.maps.get(n)?.elements ?? []), n).toEqual(text(t.elements.get(n) ?? []));
      for (const [n, c] of t.chains) expect(got.chains.get(n)?.rules.length, n).toBe(c.rules.length);
    };
    const want = renderPolicy(model(), { logDenied: { perSecond: 5 } });
    await nl.run(fullBuildPolicy(want, emptyTableState()));
    await check(want);
    const next = renderPolicy(model(true), { logDenied: { perSecond: 5 } });
    await nl.run(diffPolicy(want, next));
    await check(next);
    await nl.run(diffPolicy(next, want));
    await check(want);
  });
});
