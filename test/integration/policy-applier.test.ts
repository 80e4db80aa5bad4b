// The policy applier (src/policy/applier.ts) against the kernel, with a small layout
// (test/support/toy-policy-layout.ts) in a test "node" namespace that routes between two "pod"
// namespaces: differences go as small transactions, a failed one is followed by a rebuild, drift
// (a flushed table, a deleted chain, a flushed chain) is found and repaired, and a new applier (an
// agent restart) adopts the table in one transaction while a packet flood to an isolated pod shows
// that not one packet got through.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { createNftRunner } from '../../src/nft/runner.ts';
import { PolicyApplier, type ApplierHooks } from '../../src/policy/applier.ts';
import { TestNetns } from '../support/netns.ts';
import { podChain, toyLayout, type ToyState } from '../support/toy-policy-layout.ts';
import { sh, trySh } from '../support/sh.ts';
import { spawn } from 'node:child_process';

const log = pino({ level: 'silent' });
let node: TestNetns, a: TestNetns, b: TestNetns;
const A = '10.99.1.2';
const B = '10.99.2.2';

beforeAll(() => {
  node = TestNetns.create('node');
  a = TestNetns.create('poda');
  b = TestNetns.create('podb');
  for (const [pod, i, ip] of [
    [a, 1, A],
    [b, 2, B],
  ] as const) {
    const host = `${node.name.slice(0, 11)}h${i}`;
    sh('ip', ['-n', node.name, 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name]);
    sh('ip', ['-n', node.name, 'addr', 'add', `10.99.${i}.1/24`, 'dev', host]);
    sh('ip', ['-n', node.name, 'link', 'set', host, 'up']);
    sh('ip', ['-n', pod.name, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', pod.name, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', pod.name, 'route', 'add', 'default', 'via', `10.99.${i}.1`]);
  }
  node.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  // What reaches b: a counter in b's own input hook.
  b.exec('nft', [
    'add table inet stt-count ; add chain inet stt-count in { type filter hook input priority 0 ; udp dport 5000 counter ; }',
  ]);
});

afterAll(() => {
  for (const ns of [a, b, node]) ns?.destroy();
});

function received(): number {
  const out = b.exec('nft', ['-j', 'list', 'chain', 'inet', 'stt-count', 'in']);
  const m = /"packets":\s*(\d+)/.exec(out);
  return (m ? Number(m[1]) : 0) - base;
}

let base = 0;
/** From now on received() counts from zero (anonymous rule counters cannot be reset by nft 1.0.6). */
function resetCount(): void {
  base += received();
}

function sendOne(): void {
  trySh('ip', ['netns', 'exec', a.name, 'bash', '-c', `echo x > /dev/udp/${B}/5000`]);
}

function counting(): { hooks: ApplierHooks; counts: Record<string, number> } {
  const counts: Record<string, number> = {};
  const inc = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
  return {
    counts,
    hooks: {
      transaction: (kind) => inc(`tx-${kind}`),
      rebuild: (reason) => inc(`rebuild-${reason}`),
      failure: (kind) => inc(`fail-${kind}`),
    },
  };
}

const nft = () => createNftRunner({ netns: node.name });
const isolated: ToyState = new Map([[B, []]]);
const allowA: ToyState = new Map([[B, [A]]]);

describe('policy applier', () => {
  it('builds at start, then sends only differences; packets follow every step', async () => {
    const { hooks, counts } = counting();
    const applier = new PolicyApplier({ nft: nft(), layout: toyLayout, log, hooks });
    expect(applier.problem).toMatch(/not applied yet/);
    const first = await applier.apply(isolated);
    expect(first).toMatchObject({ kind: 'rebuild', reason: 'start' });
    expect(applier.problem).toBeUndefined();
    resetCount();
    sendOne();
    expect(received()).toBe(0);

    const opened = await applier.apply(allowA);
    expect(opened.kind).toBe('diff');
    // Flush the pod chain, two rules, the marker's two element changes.
    expect(opened.lines).toBe(5);
    sendOne();
    expect(received()).toBe(1);
    expect(await applier.apply(allowA)).toMatchObject({ kind: 'none', lines: 0 });
    expect(counts).toEqual({ 'tx-rebuild': 1, 'rebuild-start': 1, 'tx-diff': 1 });
  });

  it('rebuilds in one transaction after a failed one, and says why while even that fails', async () => {
    const { hooks, counts } = counting();
    const applier = new PolicyApplier({ nft: nft(), layout: toyLayout, log, hooks });
    await applier.apply(allowA);
    toyLayout.broken = true;
    try {
      const r = await applier.apply(isolated);
      expect(r).toMatchObject({ kind: 'rebuild', reason: 'failure' });
    } finally {
      toyLayout.broken = false;
    }
    expect(counts['fail-diff']).toBe(1);
    resetCount();
    sendOne();
    expect(received()).toBe(0);
    expect(applier.problem).toBeUndefined();

    // A rebuild the kernel refuses: the rules stay as they were, the applier says so.
    const bad: ToyState = new Map([[B, ['10.99.1.300']]]);
    await expect(applier.apply(bad)).rejects.toThrow(/rebuilding the policy rules failed/);
    expect(applier.problem).toMatch(/policy rules not applied/);
    sendOne();
    expect(received()).toBe(0);
    expect(counts['fail-rebuild']).toBe(1);
    await applier.apply(isolated);
    expect(applier.problem).toBeUndefined();
  });

  it('finds a flushed table, a deleted chain and a flushed chain, and rebuilds', async () => {
    const { hooks, counts } = counting();
    const applier = new PolicyApplier({ nft: nft(), layout: toyLayout, log, hooks, fullCheckMs: 0 });
    await applier.apply(isolated);
    expect(await applier.drift()).toBeUndefined();

    node.exec('nft', ['flush', 'table', 'inet', 'strand']);
    resetCount();
    sendOne();
    expect(received(), 'open after the flush by hand').toBe(1);
    expect(await applier.drift()).toMatch(/marker/);
    expect(await applier.apply(isolated)).toMatchObject({ kind: 'rebuild', reason: 'drift' });
    resetCount();
    sendOne();
    expect(received()).toBe(0);

    node.exec('nft', ['flush', 'map', 'inet', 'strand', 'toy-ingress']);
    node.exec('nft', ['flush', 'chain', 'inet', 'strand', podChain(B)]);
    node.exec('nft', ['delete', 'chain', 'inet', 'strand', podChain(B)]);
    expect(await applier.drift()).toMatch(/gone/);
    await applier.apply(isolated);

    node.exec('nft', ['flush', 'chain', 'inet', 'strand', 'toy-forward']);
    expect(await applier.drift()).toMatch(/toy-forward holds 0 rules/);
    await applier.apply(isolated);
    sendOne();
    expect(received()).toBe(0);

    node.exec('nft', ['delete', 'table', 'inet', 'strand']);
    expect(await applier.drift()).toMatch(/gone/);
    await applier.apply(isolated);
    sendOne();
    expect(received()).toBe(0);
    expect(counts['rebuild-drift']).toBe(4);
  });

  it('adopts the table at a restart without one packet to an isolated pod getting through, and removes stale objects', async () => {
    const before = new PolicyApplier({ nft: nft(), layout: toyLayout, log });
    // A stale pod chain of an earlier agent, for an address no longer isolated.
    await before.apply(
      new Map([
        [B, []],
        ['10.99.9.9', []],
      ]),
    );
    resetCount();
    // A flood of datagrams from a to b while ten agents in turn adopt the table.
    const flood = spawn(
      'ip',
      ['netns', 'exec', a.name, 'timeout', '1.5', 'bash', '-c', `while :; do echo x > /dev/udp/${B}/5000; done`],
      { stdio: 'ignore' },
    );
    const done = new Promise<void>((r) => flood.once('exit', () => r()));
    let adoptions = 0;
    let finished = false;
    void done.then(() => (finished = true));
    while (!finished || adoptions < 10) {
      const after = new PolicyApplier({ nft: nft(), layout: toyLayout, log });
      const r = await after.apply(isolated);
      expect(r).toMatchObject({ kind: 'rebuild', reason: 'start' });
      adoptions++;
      if (adoptions > 200) break;
    }
    await done;
    expect(adoptions).toBeGreaterThanOrEqual(10);
    expect(received(), 'datagrams that reached the isolated pod during the adoptions').toBe(0);
    const listed = node.exec('nft', ['list', 'table', 'inet', 'strand']);
    expect(listed).not.toContain(podChain('10.99.9.9'));
    expect(listed).toContain(podChain(B));
    // The same flood once the pod is open reaches it: the flood did send.
    await new PolicyApplier({ nft: nft(), layout: toyLayout, log }).apply(allowA);
    sendOne();
    expect(received()).toBe(1);
  });
});
