// Egress masquerade on the fake: the desired state from the cluster CIDRs, the difference against what
// the table holds, idempotence, repair of drift, and that the plugin's cni-* objects are never touched.
import { beforeEach, describe, expect, it } from 'vitest';
import {
  CLUSTER_SET_V4,
  CLUSTER_SET_V6,
  clusterCidrsByFamily,
  desiredMasquerade,
  MASQUERADE_CHAIN,
  planMasquerade,
  reconcileMasquerade,
  removeMasquerade,
} from '../../src/agent/masquerade.ts';
import { FakeNft } from '../../src/nft/fake.ts';
import { emptyTableState, PRIORITY } from '../../src/nft/objects.ts';
import { Transaction } from '../../src/nft/transaction.ts';
import { counter, lookup, payload, renderRule, verdict } from '../../src/nft/expr.ts';

/** The plugin's objects as the CNI plugin keeps them (made here through the fake, not netlink). */
async function seedPlugin(nft: FakeNft): Promise<string> {
  await nft.run(
    new Transaction()
      .add({ kind: 'table' })
      .add({
        kind: 'chain',
        name: 'cni-masquerade',
        base: { type: 'nat', hook: 'postrouting', priority: PRIORITY.srcnat },
      })
      .add({ kind: 'set', name: 'cni-1a2b3c4d-5e6f7a8b', type: 'ipv4_addr' })
      .add({ kind: 'chain', name: 'cni-1a2b3c4d-5e6f7a8b' })
      .add({ kind: 'element', set: 'cni-1a2b3c4d-5e6f7a8b', key: ['10.244.1.5'], comment: 'veth1234' })
      .add({ kind: 'rule', chain: 'cni-1a2b3c4d-5e6f7a8b', body: [{ kind: 'masquerade' }] })
      .add({
        kind: 'rule',
        chain: 'cni-masquerade',
        body: [lookup(payload('ip saddr'), 'cni-1a2b3c4d-5e6f7a8b'), verdict('jump', 'cni-1a2b3c4d-5e6f7a8b')],
      }),
  );
  return cniDump(nft);
}

function cniDump(nft: FakeNft): string {
  return nft
    .dump()
    .split('\n')
    .filter((l) => l.includes(' cni-'))
    .join('\n');
}

describe('cluster CIDRs', () => {
  it('splits by family, clears host bits, drops duplicates and CIDRs inside others', () => {
    expect(
      clusterCidrsByFamily([
        '10.244.0.0/16',
        '10.244.3.0/24',
        'fd00:10:244::1/56',
        '10.245.1.1/16',
        '10.244.0.0/16',
        '10.0.0.9/32',
      ]),
    ).toEqual({
      v4: ['10.0.0.9', '10.244.0.0/16', '10.245.0.0/16'],
      v6: ['fd00:10:244::/56'],
    });
    expect(clusterCidrsByFamily([])).toEqual({ v4: [], v6: [] });
    expect(() => clusterCidrsByFamily(['10.244.0.0/33'])).toThrow(/invalid cluster CIDR "10.244.0.0\/33"/);
    expect(() => clusterCidrsByFamily(['pods'])).toThrow(/invalid cluster CIDR/);
  });

  it('wants a srcnat base chain with one rule per family, multicast exempt, and both sets', () => {
    const d = desiredMasquerade({ clusterCidrs: ['10.244.0.0/16'] });
    expect(d.chain).toEqual({
      kind: 'chain',
      name: 'agent-postrouting',
      base: { type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' },
    });
    expect(d.rules.map((r) => renderRule(r.body))).toEqual([
      'ip saddr @agent-cluster-v4 ip daddr != @agent-cluster-v4 ip daddr != 224.0.0.0/4 masquerade fully-random',
      'ip6 saddr @agent-cluster-v6 ip6 daddr != @agent-cluster-v6 ip6 daddr != ff00::/8 masquerade fully-random',
    ]);
    expect(d.rules.map((r) => r.comment)).toEqual([
      expect.stringMatching(/^pod egress v4 \[[0-9a-f]{8}\]$/),
      expect.stringMatching(/^pod egress v6 \[[0-9a-f]{8}\]$/),
    ]);
    expect(d.sets.map((s) => [s.name, s.type, s.flags])).toEqual([
      ['agent-cluster-v4', 'ipv4_addr', ['interval']],
      ['agent-cluster-v6', 'ipv6_addr', ['interval']],
    ]);
    expect(d.elements.get(CLUSTER_SET_V4)).toEqual(['10.244.0.0/16']);
    expect(d.elements.get(CLUSTER_SET_V6)).toEqual([]);
  });

  it('plans everything, table first, for an empty kernel', () => {
    const tx = planMasquerade(emptyTableState(), desiredMasquerade({ clusterCidrs: ['10.244.0.0/16', 'fd00::/48'] }));
    expect(
      tx
        .render()
        .split('\n')
        .map((l) => l.split(' ').slice(0, 5).join(' ')),
    ).toEqual([
      'add table inet strand',
      'add set inet strand agent-cluster-v4',
      'add element inet strand agent-cluster-v4',
      'add set inet strand agent-cluster-v6',
      'add element inet strand agent-cluster-v6',
      'add chain inet strand agent-postrouting',
      'add rule inet strand agent-postrouting',
      'add rule inet strand agent-postrouting',
      '',
    ]);
  });
});

describe('reconcileMasquerade on the fake', () => {
  let nft: FakeNft;
  beforeEach(() => {
    nft = new FakeNft();
  });

  it('installs the chain, sets and rules, then changes nothing on a second pass', async () => {
    const first = await reconcileMasquerade(nft, { clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/56'] });
    expect(first.changed).toBe(true);
    expect(nft.rules(MASQUERADE_CHAIN).map((r) => r.rule)).toEqual(
      desiredMasquerade({ clusterCidrs: [] }).rules.map((r) => renderRule(r.body)),
    );
    expect(nft.elements(CLUSTER_SET_V4)).toEqual(['10.244.0.0/16']);
    expect(nft.elements(CLUSTER_SET_V6)).toEqual(['fd00:10:244::/56']);
    const dump = nft.dump();
    expect(await reconcileMasquerade(nft, { clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/56'] })).toEqual({
      changed: false,
      script: '',
    });
    // The same CIDRs written differently are the same desired state.
    expect(
      (await reconcileMasquerade(nft, { clusterCidrs: ['fd00:10:244:0::5/56', '10.244.7.7/16', '10.244.1.0/24'] }))
        .changed,
    ).toBe(false);
    expect(nft.dump()).toBe(dump);
    expect(nft.applied).toHaveLength(1);
  });

  it('follows a change of cluster CIDRs with element changes only, deletions first', async () => {
    await reconcileMasquerade(nft, { clusterCidrs: ['10.244.0.0/16', '10.96.0.0/12'] });
    const handles = (await nft.list()).chains.get(MASQUERADE_CHAIN)!.rules.map((r) => r.handle);
    const r = await reconcileMasquerade(nft, { clusterCidrs: ['10.0.0.0/8', 'fd00::/48'] });
    expect(r.script).toBe(
      [
        'delete element inet strand agent-cluster-v4 { 10.244.0.0/16 }',
        'delete element inet strand agent-cluster-v4 { 10.96.0.0/12 }',
        'add element inet strand agent-cluster-v4 { 10.0.0.0/8 }',
        'add element inet strand agent-cluster-v6 { fd00::/48 }',
        '',
      ].join('\n'),
    );
    expect(nft.elements(CLUSTER_SET_V4)).toEqual(['10.0.0.0/8']);
    expect((await nft.list()).chains.get(MASQUERADE_CHAIN)!.rules.map((r) => r.handle)).toEqual(handles);
  });

  it('repairs drift: a lost rule, a foreign rule, a missing set, a wrong element', async () => {
    const cfg = { clusterCidrs: ['10.244.0.0/16'] };
    await reconcileMasquerade(nft, cfg);
    const want = nft.dump();
    const [h1] = (await nft.list()).chains.get(MASQUERADE_CHAIN)!.rules.map((r) => r.handle);
    await nft.run(
      new Transaction()
        .delete({ kind: 'rule', chain: MASQUERADE_CHAIN, handle: h1! })
        .add({ kind: 'rule', chain: MASQUERADE_CHAIN, body: [counter()], comment: 'stray' }),
    );
    await nft.run(new Transaction().add({ kind: 'element', set: CLUSTER_SET_V4, key: ['192.168.0.0/16'] }));
    expect((await reconcileMasquerade(nft, cfg)).changed).toBe(true);
    expect(nft.dump()).toBe(want);

    // A set deleted behind the agent's back (the rules naming it have to go first).
    await nft.run(
      new Transaction().flush({ kind: 'chain', name: MASQUERADE_CHAIN }).delete({ kind: 'set', name: CLUSTER_SET_V6 }),
    );
    expect((await reconcileMasquerade(nft, cfg)).changed).toBe(true);
    expect(nft.dump()).toBe(want);
  });

  it('remakes a base chain whose hook or priority is wrong, and a set of the wrong type', async () => {
    await nft.run(
      new Transaction()
        .add({ kind: 'table' })
        .add({ kind: 'chain', name: MASQUERADE_CHAIN, base: { type: 'nat', hook: 'postrouting', priority: 50 } })
        .add({ kind: 'set', name: CLUSTER_SET_V4, type: 'ipv4_addr' })
        .add({
          kind: 'rule',
          chain: MASQUERADE_CHAIN,
          body: [lookup(payload('ip saddr'), CLUSTER_SET_V4), { kind: 'masquerade' }],
          comment: 'old',
        }),
    );
    const r = await reconcileMasquerade(nft, { clusterCidrs: ['10.244.0.0/16'] });
    expect(r.script.split('\n').slice(0, 3)).toEqual([
      'flush chain inet strand agent-postrouting',
      'delete chain inet strand agent-postrouting',
      'delete set inet strand agent-cluster-v4',
    ]);
    const s = await nft.list();
    expect(s.chains.get(MASQUERADE_CHAIN)!.base!.priority).toBe(100);
    expect(s.sets.get(CLUSTER_SET_V4)!.flags).toEqual(['interval']);
    expect((await reconcileMasquerade(nft, { clusterCidrs: ['10.244.0.0/16'] })).changed).toBe(false);
  });

  it("never touches the plugin's cni-* objects, before or after them", async () => {
    const plugin = await seedPlugin(nft);
    await reconcileMasquerade(nft, { clusterCidrs: ['10.244.0.0/16'] });
    await reconcileMasquerade(nft, { clusterCidrs: ['10.0.0.0/8'] });
    await removeMasquerade(nft);
    expect(cniDump(nft)).toBe(plugin);
    for (const script of nft.applied.slice(1)) expect(script).not.toMatch(/ cni-/);
  });

  it('leaves a failed pass changing nothing, and the next pass completes it', async () => {
    nft.failNextRun('timeout');
    await expect(reconcileMasquerade(nft, { clusterCidrs: ['10.244.0.0/16'] })).rejects.toThrow(/injected/);
    expect(nft.state).toBeUndefined();
    expect((await reconcileMasquerade(nft, { clusterCidrs: ['10.244.0.0/16'] })).changed).toBe(true);
  });

  it('removes only its own objects and keeps the table; a second removal does nothing', async () => {
    await seedPlugin(nft);
    await reconcileMasquerade(nft, { clusterCidrs: ['10.244.0.0/16'] });
    await nft.run(new Transaction().add({ kind: 'chain', name: 'agent-other' }));
    const r = await removeMasquerade(nft);
    expect(r.changed).toBe(true);
    const s = await nft.list();
    expect(s.exists).toBe(true);
    expect([...s.chains.keys()].sort()).toEqual(['agent-other', 'cni-1a2b3c4d-5e6f7a8b', 'cni-masquerade']);
    expect([...s.sets.keys()]).toEqual(['cni-1a2b3c4d-5e6f7a8b']);
    expect(await removeMasquerade(nft)).toEqual({ changed: false, script: '' });
    expect(await removeMasquerade(new FakeNft())).toEqual({ changed: false, script: '' });
  });
});
