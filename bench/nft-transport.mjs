// The agent's nftables transports side by side on one table of policy shape (test/support's toy
// layout: 1,000 isolated pods × 10 rules, 10,002 rules): a policy change (one pod's rules replaced) as
// the LayoutApplier sends it, a counter read of the whole table, and the no-change drift check; over
// nf_tables netlink in process and through `nft -f` / `nft -j` processes, in the same run.
// Usage (root): node bench/nft-transport.mjs [rounds]
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { LayoutApplier } from '../src/nft/layout-applier.ts';
import { createNetlinkTransport } from '../src/nft/netlink/transport.ts';
import { createNftRunner } from '../src/nft/runner.ts';
import { toyLayout } from '../test/support/toy-policy-layout.ts';

const rounds = Number(process.argv[2] ?? 20);
const log = pino({ level: 'silent' });
const state = new Map();
for (let i = 0; i < 1000; i++)
  state.set(
    `10.1.${i >> 8}.${i & 255}`,
    Array.from({ length: 9 }, (_, j) => `10.2.${j}.${i & 255}`),
  );

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const fmt = (xs) => `p50 ${pct(xs, 50).toFixed(2)} ms, p90 ${pct(xs, 90).toFixed(2)} ms`;

async function measure(kind) {
  const ns = `strand-bench-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const nft = kind === 'netlink' ? createNetlinkTransport({ netns: ns }) : createNftRunner({ netns: ns });
    const applier = new LayoutApplier({ nft, layout: toyLayout, log });
    let t = performance.now();
    await applier.apply(state);
    const build = performance.now() - t;
    const change = [];
    for (let r = 0; r < rounds; r++) {
      const next = new Map(applier.current);
      next.set(`10.1.0.${r % 200}`, [`10.3.${r}.1`, `10.3.${r}.2`]);
      t = performance.now();
      await applier.apply(next, { checkDrift: false });
      change.push(performance.now() - t);
    }
    const counters = [];
    for (let r = 0; r < Math.min(rounds, 10); r++) {
      t = performance.now();
      await nft.counters();
      counters.push(performance.now() - t);
    }
    await applier.drift();
    const drift = [];
    for (let r = 0; r < rounds; r++) {
      t = performance.now();
      await applier.drift();
      drift.push(performance.now() - t);
    }
    nft.close?.();
    return { kind, build, change, counters, drift };
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

for (const kind of ['netlink', 'process']) {
  const r = await measure(kind);
  console.log(
    `${kind.padEnd(8)} build 10,002 rules ${r.build.toFixed(0)} ms | policy change ${fmt(r.change)} | counters ${fmt(r.counters)} | no-change drift check ${fmt(r.drift)}`,
  );
}
