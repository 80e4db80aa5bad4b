// The diff and the full build on the fake (kernel semantics, all or nothing): both are transactions
// the fake accepts; a diff from A to B leaves exactly what a fresh build of B makes; a full build
// repairs any drift, adopts what is there, is idempotent, and never touches other owners' objects
// (the plugin's cni-*, the agent's masquerade).
import { describe, expect, it } from 'vitest';
import { desiredMasquerade, planMasquerade } from '../../src/agent/masquerade.ts';
import { FakeNft } from '../../src/nft/fake.ts';
import { emptyTableState, PRIORITY } from '../../src/nft/objects.ts';
import { Transaction } from '../../src/nft/transaction.ts';
import {
  compilePolicy,
  diffPolicy,
  fullBuildPolicy,
  policyDrift,
  renderPolicy,
  type DesiredPolicyTable,
} from '../../src/policy/index.ts';
import { FORWARD_CHAIN, verdictMapName } from '../../src/policy/index.ts';
import { namespace, pod, policy, servePorts, upstreamNamespaces, upstreamPods } from '../support/netpol.ts';
import { lookup, payload, renderRule, verdict } from '../../src/nft/expr.ts';
import type { Rule } from '../../src/nft/objects.ts';

const sortedDump = (f: FakeNft, keep: (line: string) => boolean = () => true) =>
  f.dump().split('\n').filter(keep).sort().join('\n');
const ours = (line: string) => line.includes('agent-pol-');

function desired(
  policies: ReturnType<typeof policy>[],
  pods = upstreamPods(),
  namespaces = upstreamNamespaces(),
): DesiredPolicyTable {
  return renderPolicy(compilePolicy({ nodeName: 'n1', nodeAddresses: ['192.168.50.1'], namespaces, pods, policies }));
}

const STATES: ReturnType<typeof policy>[][] = [
  [],
  [policy('x', 'deny', { podSelector: {} })],
  [
    policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
    policy('x', 'web', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [
        { from: [{ namespaceSelector: {} }], ports: [{ port: 'serve-80-tcp' }, { port: 81, protocol: 'UDP' }] },
      ],
    }),
  ],
  [
    policy('y', 'out', {
      podSelector: {},
      egress: [
        {
          to: [
            { ipBlock: { cidr: '10.244.0.0/16', except: ['10.244.1.0/24'] } },
            { podSelector: { matchLabels: { pod: 'b' } } },
          ],
          ports: [{ port: 'serve-81-udp', protocol: 'UDP' }],
        },
      ],
    }),
  ],
  [
    policy('z', 'v', {
      podSelector: { matchExpressions: [{ key: 'pod', operator: 'NotIn', values: ['c'] }] },
      ingress: [{ from: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] } }] }],
    }),
  ],
];

async function seedOthers(f: FakeNft): Promise<void> {
  await f.run(
    new Transaction()
      .add({ kind: 'table' })
      .add({
        kind: 'chain',
        name: 'cni-masquerade',
        base: { type: 'nat', hook: 'postrouting', priority: PRIORITY.srcnat },
      })
      .add({ kind: 'set', name: 'cni-1a2b3c4d-5e6f7a8b', type: 'ipv4_addr' })
      .add({ kind: 'element', set: 'cni-1a2b3c4d-5e6f7a8b', key: ['10.244.0.5'] })
      .add({
        kind: 'rule',
        chain: 'cni-masquerade',
        body: [lookup(payload('ip saddr'), 'cni-1a2b3c4d-5e6f7a8b'), { kind: 'masquerade' }],
      }),
  );
  await f.run(planMasquerade(await f.list(), desiredMasquerade({ clusterCidrs: ['10.244.0.0/16'] })));
}

describe('diff', () => {
  it('from every state to every other, the fake accepts the diff and ends where a fresh build of the target ends', async () => {
    for (let i = 0; i < STATES.length; i++) {
      for (let j = 0; j < STATES.length; j++) {
        const a = desired(STATES[i] as ReturnType<typeof policy>[]);
        const b = desired(STATES[j] as ReturnType<typeof policy>[]);
        const f = new FakeNft();
        await seedOthers(f);
        const others = sortedDump(f);
        await f.run(fullBuildPolicy(a, await f.list()));
        await f.run(diffPolicy(a, b));
        const fresh = new FakeNft();
        await fresh.run(fullBuildPolicy(b, emptyTableState()));
        expect(sortedDump(f, ours), `${i} → ${j}`).toBe(sortedDump(fresh, ours));
        expect(
          sortedDump(f, (l) => !ours(l)),
          'other owners untouched',
        ).toBe(
          others
            .split('\n')
            .filter((l) => !ours(l))
            .join('\n'),
        );
      }
    }
  });

  it("a refilled chain's edit marks the first and last rules kept: the old chain with the rules between replaced is the new one", () => {
    const text = (r: { body: Parameters<typeof renderRule>[0]; comment?: string | undefined }) =>
      `${renderRule(r.body)} # ${r.comment ?? ''}`;
    let edits = 0;
    for (let i = 0; i < STATES.length; i++) {
      for (let j = 0; j < STATES.length; j++) {
        const a = desired(STATES[i] as ReturnType<typeof policy>[]);
        const b = desired(STATES[j] as ReturnType<typeof policy>[]);
        const ops = diffPolicy(a, b).operations;
        ops.forEach((o, at) => {
          if (o.verb !== 'flush' || o.edit === undefined) return;
          edits++;
          const old = (a.chains.get(o.object.name)?.rules ?? []).map(text);
          const refill = ops.slice(at + 1, at + 1 + o.edit.rules).map((r) => text(r.object as Rule));
          expect(o.edit.was).toEqual((a.chains.get(o.object.name)?.rules ?? []).map((r) => r.comment));
          expect(o.edit.keep + o.edit.tail).toBeGreaterThan(0);
          const edited = [
            ...old.slice(0, o.edit.keep),
            ...refill.slice(o.edit.keep, refill.length - o.edit.tail),
            ...old.slice(old.length - o.edit.tail),
          ];
          expect(edited, `${i} → ${j} ${o.object.name}`).toEqual((b.chains.get(o.object.name)?.rules ?? []).map(text));
        });
      }
    }
    expect(edits).toBeGreaterThan(0);
  });

  it('removing every policy leaves the static chain and empty maps only', async () => {
    const a = desired(STATES[2] as ReturnType<typeof policy>[]);
    const f = new FakeNft();
    await f.run(diffPolicy(undefined, a));
    await f.run(diffPolicy(a, desired([])));
    const s = await f.list();
    expect([...s.chains.keys()]).toEqual([FORWARD_CHAIN]);
    expect([...s.sets.keys()]).toEqual([]);
    expect([...s.maps.values()].every((m) => m.elements.length === 0)).toBe(true);
  });

  it("a pod whose address moves to another pod: the entry's delete comes before its add, in one transaction", async () => {
    const pods1 = [
      pod({ namespace: 'x', name: 'old', node: 'n1', ips: ['10.244.0.9'] }),
      pod({ namespace: 'x', name: 'new', node: 'n1', ips: ['10.244.0.10'] }),
    ];
    const pods2 = [pod({ namespace: 'x', name: 'new', node: 'n1', ips: ['10.244.0.9'] })];
    const pols = [policy('x', 'deny', { podSelector: {} })];
    const a = desired(pols, pods1, [namespace('x')]);
    const b = desired(pols, pods2, [namespace('x')]);
    const f = new FakeNft();
    await f.run(diffPolicy(undefined, a));
    const tx = diffPolicy(a, b);
    const ops = tx.operations.map(
      (o) =>
        `${o.verb} ${o.object.kind} ${'key' in o.object ? o.object.key.join() : ''} ${'set' in o.object ? o.object.set : ''}`,
    );
    const del = ops.findIndex(
      (o) => o.startsWith('delete element 10.244.0.9') && o.includes(verdictMapName('ingress', 4)),
    );
    const add = ops.findIndex(
      (o) => o.startsWith('add element 10.244.0.9') && o.includes(verdictMapName('ingress', 4)),
    );
    expect(del).toBeGreaterThanOrEqual(0);
    expect(add).toBeGreaterThan(del);
    await f.run(tx);
    expect(f.elements(verdictMapName('ingress', 4))).toHaveLength(1);
  });
});

describe('full build', () => {
  it('repairs drift: flushed chains, lost and extra elements, a stale object of another type, a foreign base chain', async () => {
    const want = desired(STATES[2] as ReturnType<typeof policy>[]);
    const f = new FakeNft();
    await seedOthers(f);
    await f.run(fullBuildPolicy(want, await f.list()));
    const clean = sortedDump(f);
    const podChain = [...want.chainOwners.keys()][0] as string;
    const peerSet = [...want.sets.keys()].find((n) => n.startsWith('agent-pol-peer-')) as string;
    const damage = new Transaction()
      .flush({ kind: 'chain', name: podChain })
      .flush({ kind: 'set', name: peerSet })
      .add({ kind: 'element', set: verdictMapName('ingress', 4), key: ['10.99.0.1'], value: ['drop'] })
      .add({ kind: 'set', name: 'agent-pol-peer-0000000000000000-v4', type: 'ipv6_addr' })
      .add({ kind: 'chain', name: 'agent-pol-in-0000000000000000' })
      .add({
        kind: 'rule',
        chain: 'agent-pol-in-0000000000000000',
        body: [lookup(payload('ip6 saddr'), 'agent-pol-peer-0000000000000000-v4'), verdict('accept')],
      })
      .add({
        kind: 'element',
        set: verdictMapName('ingress', 6),
        key: ['fd00::99'],
        value: ['jump agent-pol-in-0000000000000000'],
      });
    expect(policyDrift(want, await f.list())).toEqual([]);
    await f.run(damage);
    expect(sortedDump(f)).not.toBe(clean);
    expect(policyDrift(want, await f.list())).toEqual([
      `chain ${podChain} has 0 rules, not the ${want.chains.get(podChain)?.rules.length} wanted`,
      'chain agent-pol-in-0000000000000000 is not wanted',
      `map ${verdictMapName('ingress', 4)}: 0 element(s) missing, 1 not wanted`,
      `map ${verdictMapName('ingress', 6)}: 0 element(s) missing, 1 not wanted`,
      `set ${peerSet}: ${want.elements.get(peerSet)?.length} element(s) missing, 0 not wanted`,
      'set or map agent-pol-peer-0000000000000000-v4 is not wanted',
    ]);
    await f.run(fullBuildPolicy(want, await f.list()));
    expect(sortedDump(f)).toBe(clean);
    expect(policyDrift(want, await f.list())).toEqual([]);
  });

  it('remakes a policy set whose type differs from the wanted one, and a base chain on another hook', async () => {
    const want = desired(STATES[1] as ReturnType<typeof policy>[]);
    const f = new FakeNft();
    await f.run(
      new Transaction()
        .add({ kind: 'table' })
        .add({ kind: 'map', name: verdictMapName('ingress', 4), type: 'ipv6_addr', value: 'verdict' })
        .add({ kind: 'chain', name: FORWARD_CHAIN, base: { type: 'filter', hook: 'input', priority: 0 } })
        .add({
          kind: 'rule',
          chain: FORWARD_CHAIN,
          body: [{ kind: 'vmap', keys: [payload('ip6 saddr')], map: verdictMapName('ingress', 4) }],
        }),
    );
    await f.run(fullBuildPolicy(want, await f.list()));
    const fresh = new FakeNft();
    await fresh.run(fullBuildPolicy(want, emptyTableState()));
    expect(sortedDump(f)).toBe(sortedDump(fresh));
  });

  it('is idempotent and adopts a table built by an earlier agent', async () => {
    const want = desired(STATES[3] as ReturnType<typeof policy>[]);
    const f = new FakeNft();
    await f.run(diffPolicy(undefined, want));
    const first = sortedDump(f);
    await f.run(fullBuildPolicy(want, await f.list()));
    expect(sortedDump(f)).toBe(first);
    await f.run(fullBuildPolicy(want, await f.list()));
    expect(sortedDump(f)).toBe(first);
  });

  it('a failed transaction changes nothing (the applier then rebuilds)', async () => {
    const f = new FakeNft();
    await f.run(diffPolicy(undefined, desired([])));
    const before = sortedDump(f);
    f.failNextRun();
    await expect(f.run(diffPolicy(desired([]), desired(STATES[1] as ReturnType<typeof policy>[])))).rejects.toThrow();
    expect(sortedDump(f)).toBe(before);
    const x = pod({ namespace: 'x', name: 'p', labels: {}, node: 'n1', ips: ['10.244.0.1'], ports: servePorts() });
    await f.run(fullBuildPolicy(desired(STATES[1] as ReturnType<typeof policy>[], [x]), await f.list()));
    expect(f.elements(verdictMapName('ingress', 4))).toHaveLength(1);
  });
});
