// The policy counters' reader (src/agent/policy/counter-reader.ts): reads at most every
// COUNTER_READ_MS while a scrape waits; once a read has been slow, the next one runs after the
// scrape is answered, and the scrape after it sees its figures.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/agent/clock.ts';
import { COUNTER_READ_MS, CounterReader, SLOW_COUNTER_READ_MS } from '../../src/agent/policy/counter-reader.ts';
import { countedChains, RULES_PER_CHAIN_APART } from '../../src/agent/policy-counters.ts';
import { CachingRegistry } from '../../src/agent/metrics.ts';
import { createPolicyMetrics } from '../../src/agent/policy-metrics.ts';
import { silentLogger } from '../../src/log.ts';
import type { Nft, RuleCounter } from '../../src/nft/transport.ts';
import type { DesiredPolicyTable } from '../../src/policy/index.ts';

const table = {
  chains: new Map([['pod-a-in', { rules: [{ comment: 'deny' }] }]]),
  chainOwners: new Map([['pod-a-in', { pod: { namespace: 'x', name: 'a' }, direction: 'ingress' }]]),
  comments: new Map([['deny', { verdict: 'deny' }]]),
} as unknown as DesiredPolicyTable;

function reader(readMs: number) {
  let t = 1_000_000;
  const clock: Clock = { now: () => t, after: () => ({ cancel: () => {} }) };
  let reads = 0;
  let packets = 0;
  const nft = {
    async counters(): Promise<RuleCounter[]> {
      reads++;
      // The netlink read blocks: so does this one.
      const end = performance.now() + readMs;
      while (performance.now() < end);
      return [{ chain: 'pod-a-in', handle: 1, comment: 'deny', packets, bytes: 0 }];
    },
  } as unknown as Nft;
  const registry = new Registry();
  const r = new CounterReader(nft, clock, silentLogger, () => table);
  const m = createPolicyMetrics(registry, () => r.collect(m));
  const denied = async () => (await m.podPackets.get()).values.find((v) => v.labels.verdict === 'deny')?.value ?? 0;
  return {
    r,
    m,
    denied,
    reads: () => reads,
    setPackets: (n: number) => (packets = n),
    advance: (ms: number) => (t += ms),
  };
}

describe('CounterReader', () => {
  it('reads while the scrape waits when reads are fast, at most every COUNTER_READ_MS', async () => {
    const c = reader(0);
    c.setPackets(3);
    await c.r.collect(c.m);
    expect(await c.denied()).toBe(3);
    c.setPackets(5);
    c.advance(COUNTER_READ_MS - 1);
    await c.r.collect(c.m);
    expect(c.reads()).toBe(1);
    c.advance(1);
    const scrape = c.r.collect(c.m);
    expect(c.reads()).toBe(2); // made before collect returned
    await scrape;
    expect(await c.denied()).toBe(5);
  });

  it('after a slow read, answers with the figures it has and reads just after', async () => {
    const c = reader(SLOW_COUNTER_READ_MS + 20);
    c.setPackets(3);
    await c.r.collect(c.m); // the first read: nothing to serve yet, so it is waited for
    expect(await c.denied()).toBe(3);
    c.setPackets(8);
    c.advance(COUNTER_READ_MS);
    await c.r.collect(c.m);
    expect(c.reads()).toBe(1); // not during the scrape
    expect(await c.denied()).toBe(3); // the last figures
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(c.reads()).toBe(2);
    expect(await c.denied()).toBe(8);
    // A scrape while the next read is not due does not wait for anything.
    c.advance(1_000);
    await c.r.collect(c.m);
    expect(c.reads()).toBe(2);
  });
});

describe('CounterReader with the agent registry', () => {
  it('keeps the series and their text while the counters do not move, and renews both when they do', async () => {
    let t = 1_000_000;
    const clock: Clock = { now: () => t, after: () => ({ cancel: () => {} }) };
    let packets = 3;
    const nft = {
      async counters(): Promise<RuleCounter[]> {
        return [{ chain: 'pod-a-in', handle: 1, comment: 'deny', packets, bytes: 0 }];
      },
    } as unknown as Nft;
    const registry = new CachingRegistry();
    const r = new CounterReader(nft, clock, silentLogger, () => table);
    const m = createPolicyMetrics(registry, () => r.collect(m));
    const first = await registry.metrics();
    expect(first).toMatch(/strand_policy_pod_packets_total\{[^}]*verdict="deny"[^}]*\} 3/);
    const version = m.countersVersion;
    t += COUNTER_READ_MS;
    expect(await registry.metrics()).toBe(first);
    expect(m.countersVersion).toBe(version);
    packets = 7;
    t += COUNTER_READ_MS;
    const next = await registry.metrics();
    expect(m.countersVersion).toBe(version + 1);
    expect(next).toMatch(/strand_policy_pod_packets_total\{[^}]*verdict="deny"[^}]*\} 7/);
    // The other families are formatted each scrape as before.
    m.conntrackDeleted.inc(2);
    expect(await registry.metrics()).toMatch(/strand_policy_conntrack_deleted_total 2/);
  });
});

describe('countedChains', () => {
  /** Two pods' chains of `perChain` rules, a dispatch chain of many, and a CNP chain of `perChain`. */
  function shaped(perChain: number): DesiredPolicyTable {
    const rules = (n: number, comment: string) => Array.from({ length: n }, () => ({ comment }));
    return {
      chains: new Map([
        ['dispatch', { rules: rules(500, 'jump') }],
        ['pod-a-in', { rules: rules(perChain, 'allow') }],
        ['pod-b-out', { rules: rules(perChain, 'deny') }],
        ['cnp-x', { rules: rules(perChain, 'cnp-rule') }],
      ]),
      chainOwners: new Map([
        ['pod-a-in', { pod: { namespace: 'x', name: 'a' }, direction: 'ingress' }],
        ['pod-b-out', { pod: { namespace: 'x', name: 'b' }, direction: 'egress' }],
      ]),
      comments: new Map([
        ['allow', { verdict: 'allow' }],
        ['deny', { verdict: 'deny' }],
        ['cnp-rule', { verdict: 'cnp' }],
      ]),
    } as unknown as DesiredPolicyTable;
  }

  it('names the chains readPolicyCounters reads when they are large, else the whole table', () => {
    expect(countedChains(shaped(RULES_PER_CHAIN_APART))).toEqual(['pod-a-in', 'pod-b-out', 'cnp-x']);
    expect(countedChains(shaped(RULES_PER_CHAIN_APART - 1))).toBeUndefined();
  });

  it('the reader asks the transport for those chains only', async () => {
    const asked: Array<readonly string[] | undefined> = [];
    const nft = {
      async counters(chains?: readonly string[]): Promise<RuleCounter[]> {
        asked.push(chains);
        return [];
      },
    } as unknown as Nft;
    const clock: Clock = { now: () => 0, after: () => ({ cancel: () => {} }) };
    const big = shaped(RULES_PER_CHAIN_APART);
    const r = new CounterReader(nft, clock, silentLogger, () => big);
    const m = createPolicyMetrics(new Registry(), () => r.collect(m));
    await r.collect(m);
    expect(asked).toEqual([['pod-a-in', 'pod-b-out', 'cnp-x']]);
  });
});
