// The rendered policy against the real nft and kernel, inside a test network namespace: nft's check
// mode (-c) accepts a full-build script with every kind of rule the renderer writes; the kernel
// applies it, lists every element back in the form the renderer wrote it (so adoption compares like
// with like), takes a rebuild over what it holds, a peer's label change as element changes, and
// the removal of every policy; and the fake answers each of those transactions the same way.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PodInfo } from '../../src/k8s/objects.ts';
import { FakeNft } from '../../src/nft/fake.ts';
import { emptyTableState } from '../../src/nft/objects.ts';
import { createNftRunner } from '../../src/nft/runner.ts';
import {
  compilePolicy,
  diffPolicy,
  fullBuildPolicy,
  policyDrift,
  renderPolicy,
  type DesiredPolicyTable,
  type RenderOptions,
} from '../../src/policy/index.ts';
import { namespace, pod, policy, servePorts } from '../support/netpol.ts';
import { TestNetns } from '../support/netns.ts';

const ns = TestNetns.create('pol');
const dir = mkdtempSync(join(tmpdir(), 'strand-pol-'));
const nft = createNftRunner({ netns: ns.name });

afterAll(() => {
  ns.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const NODE = 'n1';
function pods(relabel = false): PodInfo[] {
  return [
    pod({
      namespace: 'x',
      name: 'a',
      labels: { pod: 'a' },
      node: NODE,
      ips: ['10.244.0.11', 'fd00:244::11'],
      ports: servePorts(),
    }),
    pod({
      namespace: 'x',
      name: 'b',
      labels: { pod: relabel ? 'c' : 'b' },
      node: 'n2',
      ips: ['10.244.1.12', 'fd00:244:1::12'],
      ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
    }),
    pod({
      namespace: 'y',
      name: 'c',
      labels: { pod: 'c' },
      node: NODE,
      ips: ['10.244.0.13'],
      ports: [
        { name: 'http', containerPort: 80, protocol: 'TCP' },
        { name: 'dns', containerPort: 53, protocol: 'UDP' },
      ],
    }),
  ];
}
const POLICIES = [
  policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
  policy('x', 'web', {
    podSelector: { matchLabels: { pod: 'a' } },
    ingress: [
      {
        from: [
          { podSelector: { matchLabels: { pod: 'b' } } },
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } }, podSelector: {} },
        ],
        ports: [
          { port: 'serve-80-tcp' },
          { protocol: 'UDP', port: 81 },
          { protocol: 'SCTP', port: 9000, endPort: 9010 },
        ],
      },
      {
        from: [
          { ipBlock: { cidr: '10.0.0.0/8', except: ['10.244.1.0/24', '10.99.0.0/16'] } },
          { ipBlock: { cidr: 'fd00::/8', except: ['fd00:244:1::/48'] } },
        ],
      },
      { ports: [{ protocol: 'TCP' }] },
    ],
    egress: [
      {
        to: [{ podSelector: {}, namespaceSelector: {} }, { ipBlock: { cidr: '0.0.0.0/0' } }],
        ports: [{ port: 'http' }, { port: 'dns', protocol: 'UDP' }, { port: 443 }],
      },
      { to: [{ ipBlock: { cidr: '192.0.2.0/24' } }] },
    ],
  }),
  policy('y', 'any', { podSelector: {}, egress: [{ ports: [{ port: 'http' }] }] }),
];

function desired(p: PodInfo[], policies = POLICIES, options: RenderOptions = {}): DesiredPolicyTable {
  return renderPolicy(
    compilePolicy({
      nodeName: NODE,
      nodeAddresses: ['192.168.50.1'],
      namespaces: [namespace('x'), namespace('y')],
      pods: p,
      policies,
    }),
    options,
  );
}

/** Every policy set's and map's elements as text, sorted, from a listed or desired table. */
function elementsOf(
  sets: Iterable<[string, { key: readonly string[]; value?: readonly string[] | undefined }[]]>,
): string[] {
  const out: string[] = [];
  for (const [name, es] of sets)
    if (name.startsWith('agent-pol-'))
      for (const e of es) out.push(`${name} ${e.key.join(' . ')}${e.value ? ` : ${e.value.join(' ')}` : ''}`);
  return out.sort();
}

describe('the rendered policy on the kernel', () => {
  it('nft -c accepts the full build; the kernel applies it, lists it back as written, and takes rebuilds and diffs', async () => {
    const want = desired(pods());
    const build = fullBuildPolicy(want, emptyTableState());
    const script = join(dir, 'build.nft');
    writeFileSync(script, build.render());
    const check = ns.tryExec('nft', ['-c', '-f', script]);
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);

    const fake = new FakeNft();
    await nft.run(build);
    await fake.run(build);
    const listed = await nft.list();
    const wantElements = elementsOf([...want.elements.entries()].map(([n, es]) => [n, [...es]]));
    expect(elementsOf([...listed.sets.entries(), ...listed.maps.entries()].map(([n, s]) => [n, s.elements]))).toEqual(
      wantElements,
    );
    for (const [name, c] of want.chains)
      expect(
        listed.chains.get(name)?.rules.map((r) => r.comment ?? null),
        name,
      ).toEqual(c.rules.map((r) => r.comment ?? null));

    // The applier's drift check finds nothing on a table it just built (no rebuild loop).
    expect(policyDrift(want, listed)).toEqual([]);
    // Adoption: a rebuild over what the kernel holds.
    const rebuild = fullBuildPolicy(want, listed);
    // The kernel lists types, flags and base chains as they were rendered: nothing is remade.
    expect(rebuild.operations.filter((o) => o.verb === 'delete')).toEqual([]);
    await nft.run(rebuild);
    await fake.run(fullBuildPolicy(want, await fake.list()));
    // A peer's label change: elements only.
    const next = desired(pods(true));
    const diff = diffPolicy(want, next);
    expect(diff.operations.every((o) => o.object.kind === 'element')).toBe(true);
    await nft.run(diff);
    await fake.run(diff);
    const after = await nft.list();
    expect(policyDrift(next, after)).toEqual([]);
    // Someone flushes a pod chain: drift.
    ns.exec('nft', ['flush', 'chain', 'inet', 'strand', [...next.chainOwners.keys()][0] as string]);
    expect(policyDrift(next, await nft.list())).toHaveLength(1);
    await nft.run(fullBuildPolicy(next, await nft.list()));
    expect(policyDrift(next, await nft.list())).toEqual([]);
    expect(elementsOf([...after.sets.entries(), ...after.maps.entries()].map(([n, s]) => [n, s.elements]))).toEqual(
      elementsOf([...next.elements.entries()].map(([n, es]) => [n, [...es]])),
    );

    // Every policy gone.
    const none = desired(pods(true), []);
    await nft.run(diffPolicy(next, none));
    await fake.run(diffPolicy(next, none));
    const empty = await nft.list();
    expect([...empty.chains.keys()]).toEqual(['agent-pol-forward']);
    expect([...empty.sets.keys()]).toEqual([]);
    const fakeEmpty = await fake.list();
    expect([...fakeEmpty.chains.keys()]).toEqual(['agent-pol-forward']);
  });

  it('nft -c accepts the denied-connection log, to the kernel log and to an NFLOG group', () => {
    for (const logDenied of [{ perSecond: 5 }, { perSecond: 20, group: 7 }]) {
      const build = fullBuildPolicy(desired(pods(), POLICIES, { logDenied }), emptyTableState());
      expect(build.render()).toMatch(
        /limit rate \d+\/second burst \d+ packets log prefix "strand-deny x\/a ingress: " (level info|group 7)/,
      );
      const script = join(dir, 'log.nft');
      writeFileSync(script, build.render());
      const check = ns.tryExec('nft', ['-c', '-f', script]);
      expect(check.stderr).toBe('');
      expect(check.status).toBe(0);
    }
  });
});
