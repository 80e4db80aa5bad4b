// The pod-start bind computed before the notice (src/agent/policy/bind-ahead.ts), against the nft
// fake: a pod scheduled here gets its bind computed once the loop is quiet; its notice then sends that
// transaction with the notice's address, is answered, and the model and table the bookkeeping builds
// are what compiling everything gives. Where it cannot be used (another family, an address another
// pod holds, the state changed since), the bind computed at the notice answers as before.
import { describe, expect, it } from 'vitest';
import type { NetworkPolicyInfo, PodInfo } from '../../src/k8s/objects.ts';
import { AHEAD_QUIET_MS, sameTransaction, substituted } from '../../src/agent/policy/bind-ahead.ts';
import { Transaction } from '../../src/nft/transaction.ts';
import { verdict } from '../../src/nft/expr.ts';
import {
  aheadCluster as cluster,
  aheadOf,
  aheadPod as pod,
  bindsByPath as binds,
  schedule,
  start,
} from '../support/ahead-cluster.ts';
import { fakeEnforcer } from '../support/fake-enforcer.ts';
import { compilePolicy, renderPolicy } from '../../src/policy/index.ts';

const quiet = () => new Promise((r) => setTimeout(r, AHEAD_QUIET_MS + 50));

describe('a pod-start bind computed ahead (nft fake)', () => {
  it('binds each pod of a sequence from the transaction computed ahead; the result is what compiling everything gives', async () => {
    const cache = cluster();
    const { enforcer, nft, notices } = fakeEnforcer(cache, { nodeName: 'n0', nodeAddress: '192.168.0.1' });
    try {
      const waiting = [0, 1, 2, 3, 4].map((k) => pod(1000 + k, 'n0', [], `a${k % 3}`));
      await schedule(cache, enforcer, waiting);
      for (let k = 0; k < waiting.length; k++) {
        const p = waiting[k] as PodInfo;
        await aheadOf(enforcer, p);
        expect(await start(enforcer, notices, p, [`10.9.0.${k + 1}`])).toBe(true);
        const whole = compilePolicy(enforcer.compileInput());
        expect(enforcer.programming.compiled).toEqual(whole);
        // The kernel (the fake) holds the render of it: every chain and element.
        const want = renderPolicy(whole);
        for (const [name, c] of want.chains)
          expect(nft.state?.chains.get(name)?.rules.length, name).toBe(c.rules.length);
        for (const [name, list] of want.elements)
          expect(nft.state?.sets.get(name)?.elements.length, name).toBe(list.length);
      }
      expect(await binds(enforcer)).toEqual({ ahead: 5 });
    } finally {
      enforcer.stop();
    }
  });

  it('binds at the notice when the bind ahead does not fit: another family, a change since it was computed', async () => {
    const cache = cluster();
    const { enforcer, notices } = fakeEnforcer(cache, { nodeName: 'n0', nodeAddress: '192.168.0.1' });
    const started = async (p: PodInfo, ips: string[]) => {
      expect(await start(enforcer, notices, p, ips)).toBe(true);
      expect(enforcer.programming.compiled).toEqual(compilePolicy(enforcer.compileInput()));
    };
    try {
      const [v6, late, dual, next] = [0, 1, 2, 3].map((k) => pod(2000 + k, 'n0', [], 'a1'));
      for (const p of [v6, late, dual, next]) cache.pods.put(p as PodInfo);
      enforcer.request(Date.now());
      await enforcer.settle();
      await quiet();
      // Computed for IPv4 (no notice came yet): an IPv6 address binds at the notice.
      await started(v6 as PodInfo, ['fd00::9']);
      expect(await binds(enforcer)).toEqual({ notice: 1 });
      // A policy changed after the binds ahead were computed: the pass decides (a compile).
      await quiet();
      const np = cache.networkPolicies.get('np1', 'ns1') as NetworkPolicyInfo;
      cache.networkPolicies.put({
        ...np,
        metadata: { ...np.metadata, labels: { changed: 'yes' } },
      } as NetworkPolicyInfo);
      enforcer.request(Date.now());
      await started(late as PodInfo, ['10.9.0.2']);
      expect((await binds(enforcer)).ahead ?? 0).toBe(0);
      // Computed for the last notice's families (this node's ranges): dual-stack after a dual-stack one.
      await started(dual as PodInfo, ['10.9.0.3', 'fd00::3']);
      await aheadOf(enforcer, next as PodInfo);
      await started(next as PodInfo, ['10.9.0.4', 'fd00::4']);
      expect((await binds(enforcer)).ahead).toBe(1);
      expect((await binds(enforcer)).mismatch ?? 0).toBe(0);
    } finally {
      enforcer.stop();
    }
  });
});

describe('a bind ahead whose bookkeeping disagrees (the safety net)', () => {
  it('is counted, and the rules are rebuilt to the whole compile at once', async () => {
    const cache = cluster();
    const { enforcer, nft, notices } = fakeEnforcer(cache, { nodeName: 'n0', nodeAddress: '192.168.0.1' });
    try {
      const p = pod(4000, 'n0', [], 'a0'); // np0 isolates it
      cache.pods.put(p);
      enforcer.request(Date.now());
      await enforcer.settle();
      await aheadOf(enforcer, p);
      // A bug stood in for: the transaction computed ahead loses the pod's ingress verdict-map element.
      const aheads = (enforcer as unknown as { ahead: { aheads: Map<string, { diff: Transaction }> } }).ahead.aheads;
      const a = aheads.get('ns0/p4000') as { diff: Transaction };
      const broken = new Transaction();
      for (const op of a.diff.operations)
        if (!(op.object.kind === 'element' && op.object.set === 'agent-pol-ingress-v4')) broken.append(wrap(op));
      expect(broken.operations.length).toBe(a.diff.operations.length - 1);
      a.diff = broken;
      const n = { namespace: 'ns0', name: 'p4000', uid: 'u4000', ips: ['10.9.0.1'] };
      notices.record(n);
      expect((await enforcer.gate.podStarted(n, 10_000)).ok).toBe(true);
      await enforcer.settle();
      expect(await binds(enforcer)).toEqual({ ahead: 1, mismatch: 1 });
      const whole = compilePolicy(enforcer.compileInput());
      expect(enforcer.programming.compiled).toEqual(whole);
      expect(nft.state?.sets.get('agent-pol-ingress-v4')?.elements.map((e) => e.key[0])).toContain('10.9.0.1');
    } finally {
      enforcer.stop();
    }
  });
});

/** One operation as a transaction of its own (to append). */
function wrap(op: Transaction['operations'][number]): Transaction {
  const t = new Transaction();
  if (op.verb === 'add') t.add(op.object);
  else if (op.verb === 'flush') t.flush(op.object, op.edit);
  else throw new Error(`unexpected ${op.verb}`);
  return t;
}

describe('bind-ahead.ts (pure)', () => {
  const tx = (lines: [string, string][]) => {
    const t = new Transaction();
    for (const [set, ip] of lines) t.add({ kind: 'element', set, key: [ip] });
    return t;
  };
  it('substitutes exact strings only, shares what does not change', () => {
    const t = new Transaction()
      .add({ kind: 'element', set: 'agent-pol-peer-x-v4', key: ['240.0.0.1'] })
      .add({ kind: 'element', set: 'agent-pol-peer-x-v4', key: ['240.0.0.10'] });
    const out = substituted(t, new Map([['240.0.0.1', '10.0.0.7']]));
    expect(out.render()).toBe(
      'add element inet strand agent-pol-peer-x-v4 { 10.0.0.7 }\nadd element inet strand agent-pol-peer-x-v4 { 240.0.0.10 }\n',
    );
    expect(out.operations[1]?.object).toBe(t.operations[1]?.object);
  });
  it('compares elements in any order, everything else in order', () => {
    const a = tx([
      ['s-v4', '10.0.0.1'],
      ['s-v4', '10.0.0.2'],
    ]);
    const b = tx([
      ['s-v4', '10.0.0.2'],
      ['s-v4', '10.0.0.1'],
    ]);
    expect(sameTransaction(a, b)).toBe(true);
    expect(sameTransaction(a, tx([['s-v4', '10.0.0.1']]))).toBe(false);
    const r = (c: string) => ({ kind: 'rule' as const, chain: 'agent-pol-c', body: [verdict('accept')], comment: c });
    expect(sameTransaction(new Transaction().add(r('x')).add(r('y')), new Transaction().add(r('y')).add(r('x')))).toBe(
      false,
    );
  });
});
