// Drift over netlink at 10,000 rules (issue 16 item 2): a pod chain flushed by hand, one rule deleted
// by hand and one rule replaced by hand are each found by the next drift check (one check per drift
// period) and repaired by the rebuild; a check while nothing changed is answered by the generation
// alone (no dump). `nft` is the hand and the judge here, never the applier's transport.
import { execFileSync } from 'node:child_process';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayoutApplier } from '../../src/nft/layout-applier.ts';
import { createNetlinkTransport, type NetlinkTransport } from '../../src/nft/netlink/transport.ts';
import { TestNetns } from '../support/netns.ts';
import { podChain, toyLayout, type ToyState } from '../support/toy-policy-layout.ts';

const log = pino({ level: 'silent' });
const PODS = 1000;
const ALLOWED = 9; // + the drop: 10 rules a pod chain, 10,002 with the base chain's

let ns: TestNetns;
let nft: NetlinkTransport;
const state: ToyState = new Map();
for (let i = 0; i < PODS; i++) {
  state.set(
    `10.1.${i >> 8}.${i & 255}`,
    Array.from({ length: ALLOWED }, (_, j) => `10.2.${j}.${i & 255}`),
  );
}
const victim = podChain('10.1.1.7');

function nftIn(...args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns.name, 'nft', ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
}

function chainRules(chain: string): Array<{ handle: number; comment?: string }> {
  const out = JSON.parse(nftIn('-j', 'list', 'chain', 'inet', 'strand', chain)) as {
    nftables: Array<{ rule?: { handle: number; comment?: string } }>;
  };
  return out.nftables.flatMap((o) => (o.rule ? [o.rule] : []));
}

beforeAll(() => {
  ns = TestNetns.create('drift');
  nft = createNetlinkTransport({ netns: ns.name });
});
afterAll(() => {
  nft.close();
  ns.destroy();
});

describe('drift over netlink at 10,000 rules', () => {
  it('answers an unchanged table by the generation, and repairs hand edits at the next check', async () => {
    const applier = new LayoutApplier({ nft, layout: toyLayout, log });
    const first = await applier.apply(state);
    expect(first.kind).toBe('rebuild');
    const stats = applier.driftStats;
    if (!stats) throw new Error('the netlink transport has a probe');
    // The first check after the rebuild (nothing else committed since) reads every chain's digests,
    // a slice of chains at a time, and records them; the next ones are one request.
    const tr = performance.now();
    expect(await applier.drift()).toBeUndefined();
    console.log(`first check after the rebuild: ${(performance.now() - tr).toFixed(1)} ms (chain by chain, in slices)`);
    expect(stats).toEqual({ shortcuts: 0, dumps: 0, chainReads: 1 });
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) expect(await applier.drift()).toBeUndefined();
    const perCheckUs = ((performance.now() - t0) * 1000) / 100;
    expect(stats).toEqual({ shortcuts: 100, dumps: 0, chainReads: 1 });
    console.log(`no-change drift check: ${perCheckUs.toFixed(0)} µs (generation only)`);

    const repair = async (edit: () => void, expected: RegExp) => {
      const want = chainRules(victim).map((r) => r.comment);
      edit();
      const t = performance.now();
      const drift = await applier.drift();
      const checkMs = performance.now() - t;
      expect(drift).toMatch(expected);
      applier.invalidate('drift');
      const r = await applier.apply(state);
      expect([r.kind, r.reason]).toEqual(['rebuild', 'drift']);
      expect(chainRules(victim).map((x) => x.comment)).toEqual(want);
      expect(await applier.drift()).toBeUndefined();
      console.log(
        `drift found in ${checkMs.toFixed(1)} ms (one dump of 10,002 rules), repaired in ${r.ms.toFixed(1)} ms`,
      );
    };
    await repair(
      () => nftIn('flush', 'chain', 'inet', 'strand', victim),
      new RegExp(`${victim} holds 0 rules, not 10`),
    );
    await repair(
      () => {
        const h = chainRules(victim)[3]?.handle;
        nftIn('delete', 'rule', 'inet', 'strand', victim, 'handle', String(h));
      },
      new RegExp(`${victim} holds 9 rules, not 10`),
    );
    await repair(
      () => {
        const h = chainRules(victim)[2]?.handle;
        nftIn('replace', 'rule', 'inet', 'strand', victim, 'handle', String(h), 'ip', 'saddr', '0.0.0.0/0', 'accept');
      },
      new RegExp(`rules of chain ${victim} were changed`),
    );
    // A change by the applier itself is not drift; with no other commit since the last clean check,
    // the check reads only the chains the change touched (no dump of the table).
    const next: ToyState = new Map(state);
    next.set('10.1.1.7', ['10.3.0.1']);
    expect((await applier.apply(next, { checkDrift: false })).kind).toBe('diff');
    const before = { ...stats };
    expect(await applier.drift()).toBeUndefined();
    expect(await applier.drift()).toBeUndefined();
    expect(stats).toEqual({ shortcuts: before.shortcuts + 1, dumps: before.dumps, chainReads: before.chainReads + 1 });
    expect(chainRules(victim).map((r) => r.comment)).toEqual(['allow 10.3.0.1', 'isolated']);
    // That read recorded the changed chain's digest: a hand edit of it that keeps its count is found.
    const h = chainRules(victim)[0]?.handle;
    nftIn('replace', 'rule', 'inet', 'strand', victim, 'handle', String(h), 'ip', 'saddr', '0.0.0.0/0', 'accept');
    expect(await applier.drift()).toMatch(new RegExp(`rules of chain ${victim} were changed`));
    applier.invalidate('drift');
    expect((await applier.apply(next)).kind).toBe('rebuild');
    expect(await applier.drift()).toBeUndefined();

    // Another commit beside the applier's own (here another table's) makes the check read everything.
    const again: ToyState = new Map(next);
    again.set('10.1.1.7', ['10.3.0.2']);
    nftIn('add', 'table', 'inet', 'sttdriftother');
    try {
      expect((await applier.apply(again, { checkDrift: false })).kind).toBe('diff');
      const dumps = stats.dumps;
      expect(await applier.drift()).toBeUndefined();
      expect(stats.dumps).toBe(dumps + 1);
    } finally {
      nftIn('delete', 'table', 'inet', 'sttdriftother');
    }
  });
});
