#!/usr/bin/env node
// Issue 2 and 12 benchmark: the pod-path executable dist/cni/strand against the reference
// host-local, whole processes, in one run.
//   - VERSION: strand vs host-local
//   - IPAM ADD+DEL pair: strand-ipam vs host-local, same config shape, separate data dirs
//   - CNI-mode start-up overhead: strand VERSION vs a bare start of the Bun it is compiled with
//     (`bun -e 0`); and, for the record, the agent's Node executable (dist/strand) answering VERSION
// Target: CNI-mode overhead over the bare Node start at most 10 ms.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cleanEnv, fmt, printTable, stats, timeOnce } from './lib.mjs';

const root = resolve(import.meta.dirname, '..');
const strand = join(root, 'dist', 'cni', 'strand');
const strandIpam = join(root, 'dist', 'cni', 'strand-ipam');
const nodeExecutable = join(root, 'dist', 'strand');
const bun = join(root, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun');
const hostLocal = '/usr/lib/cni/host-local';
const runs = Number(process.env.BENCH_RUNS ?? 40);

/**
 * Runs every measurement once per round, round after round, so that a change of machine load hits
 * Strand and the reference alike; returns the statistics of each.
 */
function interleaved(measures) {
  for (const fn of Object.values(measures)) fn(); // warm the page cache and the native-module cache
  const samples = Object.fromEntries(Object.keys(measures).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) for (const [k, fn] of Object.entries(measures)) samples[k].push(fn());
  return Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, stats(xs)]));
}

const versionEnv = cleanEnv({ CNI_COMMAND: 'VERSION' });

function ipamPair(plugin, type, dataDir) {
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'benchnet',
    type: 'bridge',
    ipam: { type, subnet: '10.250.0.0/16', dataDir },
  });
  let i = 0;
  return () => {
    const id = `bench${i++}`;
    const base = { CNI_CONTAINERID: id, CNI_NETNS: '/proc/self/ns/net', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' };
    const add = timeOnce(plugin, [], { env: cleanEnv({ ...base, CNI_COMMAND: 'ADD' }), input: conf }).ms;
    const del = timeOnce(plugin, [], { env: cleanEnv({ ...base, CNI_COMMAND: 'DEL' }), input: conf }).ms;
    return add + del;
  };
}

const dirs = [mkdtempSync(join(tmpdir(), 'strand-bench-')), mkdtempSync(join(tmpdir(), 'strand-bench-'))];
let r;
try {
  r = interleaved({
    bare: () => timeOnce(bun, ['-e', '0'], { env: cleanEnv() }).ms,
    nodeVersion: () => timeOnce(nodeExecutable, [], { env: versionEnv, input: '{"cniVersion":"1.1.0"}' }).ms,
    strandVersion: () => timeOnce(strand, [], { env: versionEnv, input: '{"cniVersion":"1.1.0"}' }).ms,
    refVersion: () => timeOnce(hostLocal, [], { env: versionEnv, input: '{"cniVersion":"1.1.0"}' }).ms,
    strandIpamPair: ipamPair(strandIpam, 'strand-ipam', dirs[0]),
    refIpamPair: ipamPair(hostLocal, 'host-local', dirs[1]),
  });
} finally {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
const { bare, nodeVersion, strandVersion, refVersion, strandIpamPair, refIpamPair } = r;

const row = (name, s, base) => ({
  measure: name,
  'median ms': fmt(s.median),
  'p90 ms': fmt(s.p90),
  'ratio to reference': base ? fmt(s.median / base.median) : '-',
});
printTable(`CNI start-up and IPAM, ${runs} interleaved rounds (whole processes)`, [
  row('bare bun -e 0 (the pinned Bun)', bare),
  row('strand VERSION', strandVersion, refVersion),
  row('host-local VERSION (reference)', refVersion),
  row("dist/strand VERSION (the agent's Node executable)", nodeVersion, refVersion),
  row('strand-ipam ADD+DEL', strandIpamPair, refIpamPair),
  row('host-local ADD+DEL (reference)', refIpamPair),
]);
const overhead = strandVersion.median - bare.median;
console.log(
  `\nCNI-mode start-up overhead over a bare Bun: ${fmt(overhead)} ms (target <= 10 ms): ${overhead <= 10 ? 'met' : 'NOT met'}`,
);
const vr = strandVersion.median / refVersion.median;
console.log(`VERSION ratio to host-local ${fmt(vr)} (target <= 4): ${vr <= 4 ? 'met' : 'NOT met'}`);
