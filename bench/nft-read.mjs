#!/usr/bin/env node
// nf_tables reads over netlink (src/nft/netlink/read.ts) against `nft -j list table inet strand`, at
// 10,000 rules (BENCH_CHAINS chains × BENCH_RULES rules, each with a counter and a comment, reached
// through a verdict map: test/support/big-ruleset.ts), in a throwaway network namespace:
//   - readGeneration (NFT_MSG_GETGEN): the per-drift-period question "did anything change";
//   - readTableRules: one GETRULE dump of the table decoded to per-chain digests and per-rule
//     handle, comment and counter (the drift check when the generation moved);
//   - readTableCounters: the same dump read for the counters only, in place (the /metrics scrape);
//   - listChains, listSets;
//   - `nft -j list table inet strand` (process wall time, and JSON.parse of its output), less the
//     cost of `ip netns exec <ns> true` that wraps it here.
// Knobs: BENCH_CHAINS (default 2000), BENCH_RULES (default 5), BENCH_RUNS (default 10).
import { execFileSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { childCpuMs, fmt, printTable, stats } from './lib.mjs';
import { bigRuleset } from '../test/support/big-ruleset.ts';
import { flock, LOCK_SH, LOCK_UN } from '../src/kernel/libc.ts';
import {
  listChains,
  listSets,
  openNftReader,
  readGeneration,
  readTableCounters,
  readTableRules,
} from '../src/nft/netlink/read.ts';

const chains = Number(process.env.BENCH_CHAINS ?? 2000);
const perChain = Number(process.env.BENCH_RULES ?? 5);
const runs = Number(process.env.BENCH_RUNS ?? 10);
const ns = `sttbnch${randomBytes(4).toString('hex')}`;
const table = { family: 'inet', name: 'strand' };

/** Wall time of each of n runs (after one warm-up), and the CPU time per run: this process's for
 * in-process reads, its children's for processes (the machine may be shared: CPU time is the
 * steadier figure). */
function sample(n, fn) {
  fn();
  const cpu0 = process.cpuUsage();
  const child0 = childCpuMs();
  const walls = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    walls.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const own = process.cpuUsage(cpu0);
  return { ...stats(walls), cpu: (own.user + own.system) / 1000 / n, childCpu: (childCpuMs() - child0) / n };
}

// A test run's sweep removes "stt" namespaces unless some run holds this lock shared (global-setup.ts).
const lock = openSync('/run/strand-test-runs.lock', 'a');
flock(lock, LOCK_SH);
execFileSync('ip', ['netns', 'add', ns]);
try {
  execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: bigRuleset(chains, perChain) });
  const nl = openNftReader({ netns: `/run/netns/${ns}` });
  try {
    const rules = readTableRules(nl, table).rules.length;
    const nftList = () =>
      execFileSync('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'inet', 'strand'], {
        encoding: 'utf8',
        maxBuffer: 256 << 20,
      });
    const json = nftList();
    const rows = [
      ['readGeneration (GETGEN)', sample(runs * 100, () => readGeneration(nl))],
      ['readTableRules (dump + decode + digests)', sample(runs, () => readTableRules(nl, table))],
      ['readTableCounters (the scrape: counters only)', sample(runs, () => readTableCounters(nl, table))],
      ['listChains', sample(runs, () => listChains(nl, table))],
      ['listSets', sample(runs, () => listSets(nl, table))],
      ['ip netns exec true (wrapper cost)', sample(runs, () => execFileSync('ip', ['netns', 'exec', ns, 'true']))],
      ['nft -j list table (with wrapper)', sample(runs, nftList)],
      ['JSON.parse of its output', sample(runs, () => JSON.parse(json))],
    ];
    printTable(
      `nf_tables reads at ${rules} rules in ${chains} chains (${(json.length / 1e6).toFixed(1)} MB of nft JSON), ms`,
      rows.map(([what, s]) => ({
        what,
        'wall median': fmt(s.median),
        'wall p90': fmt(s.p90),
        'wall min': fmt(s.min),
        'CPU/run (own)': fmt(s.cpu),
        'CPU/run (children)': fmt(s.childCpu),
      })),
    );
  } finally {
    nl.close();
  }
} finally {
  execFileSync('ip', ['netns', 'del', ns]);
  flock(lock, LOCK_UN);
  closeSync(lock);
}
