#!/usr/bin/env node
// The first rebuild's build and encode at scale, in process (no API server, no kernel): the cluster
// of bench/agent-startup.mjs (bench/agent-cluster.mjs's generator, BENCH_SCALE=10 for 50,000 pods)
// compiled for node-7, its full build (fullBuildPolicyAsync) and its netlink encoding (the transport's
// BatchEncoder, as runSliced drives it, slicing every 20 ms). Reports CPU and wall time of each, the
// bytes allocated and collections during them, the longest slice, and a hash of the datagram (it must
// not change with an encoder change). BENCH_RUNS (default 3) repetitions; `--hash-only` prints the hash.
import { createHash } from 'node:crypto';
import { PerformanceObserver } from 'node:perf_hooks';
import { GCProfiler, getHeapStatistics } from 'node:v8';
import { addressPlan, benchPod, sizesFromEnv } from './agent-cluster.mjs';
import { benchPolicySpec } from './lib.mjs';
import { compilePolicy, renderPolicy } from '../src/policy/index.ts';
import { fullBuildPolicyAsync } from '../src/policy/diff.ts';
import { emptyTableState, STRAND_TABLE } from '../src/nft/objects.ts';
import { BatchEncoder, batchSizeHint } from '../src/nft/netlink/batch.ts';
import { nftOpMapper } from '../src/nft/netlink/from-transaction.ts';

// The agent's rebuild runs once, on cold code: the first run is the figure, later ones warm.
// BENCH_HEAP_PROF=file: the encode's allocations (sampled, collected ones too) as a .heapprofile.
let session;
if (process.env.BENCH_HEAP_PROF) {
  const { Session } = await import('node:inspector/promises');
  session = new Session();
  session.connect();
}
const RUNS = Number(process.env.BENCH_RUNS ?? 1);
const SLICE_MS = 20;
const sizes = sizesFromEnv();
const plan = addressPlan(sizes);
const namespaces = [];
for (let n = 0; n < sizes.namespaces; n++)
  namespaces.push({
    metadata: { name: `ns-${n}`, labels: { 'kubernetes.io/metadata.name': `ns-${n}`, team: `team-${n % 20}` } },
  });
const pods = [];
for (let p = 0; p < sizes.pods; p++) pods.push(benchPod(p, sizes, plan));
const policies = [];
for (let i = 0; i < sizes.policies; i++)
  policies.push({
    metadata: { name: `policy-${i}`, namespace: `ns-${i % sizes.namespaces}`, uid: `np-${i}` },
    spec: benchPolicySpec(i),
  });
const table = renderPolicy(
  compilePolicy({
    nodeName: 'node-7',
    nodeAddresses: ['198.18.1.8', plan.gateway(7)],
    namespaces,
    pods,
    policies,
    clusterNetworkPolicies: [],
  }),
);

let gcs = { minor: 0, major: 0, ms: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.detail?.kind === 1) gcs.minor++;
    else gcs.major++;
    gcs.ms += e.duration;
  }
}).observe({ entryTypes: ['gc'] });

const breathe = () => new Promise((r) => setImmediate(r));
// Bytes allocated: the heap's growth plus what each collection in between freed (GCProfiler).
let profiler;
const allocStart = () => {
  profiler = new GCProfiler();
  profiler.start();
  return getHeapStatistics().used_heap_size;
};
const allocSince = (from) => {
  const now = getHeapStatistics().used_heap_size;
  let freed = 0;
  for (const g of profiler.stop().statistics)
    freed += g.beforeGC.heapStatistics.usedHeapSize - g.afterGC.heapStatistics.usedHeapSize;
  return now - from + freed;
};

/** The longest event-loop task from now to stop(), as a 1 ms timer sees it (collections included). */
function lag() {
  const out = { ms: 0, stop: () => clearInterval(timer) };
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    out.ms = Math.max(out.ms, now - last);
    last = now;
  }, 1);
  return out;
}

/** As the transport's drainSliced: steps run until SLICE_MS went by, then the loop is given back. */
async function drain(steps) {
  let slice = performance.now();
  let step = steps.next();
  while (!step.done) {
    if (performance.now() - slice >= SLICE_MS) {
      await breathe();
      slice = performance.now();
    }
    step = steps.next();
  }
  return step.value;
}

function* encodeSteps(ops, encoder) {
  const map = nftOpMapper(STRAND_TABLE, () => undefined);
  for (let i = 0; i < ops.length; i++) {
    if (((i + 1) & 15) === 0) yield;
    encoder.add(map(ops[i], i), i);
  }
}

/** Runs one phase and records its wall and CPU time, bytes allocated, longest task and collections. */
async function phase(out, name, fn) {
  gcs = { minor: 0, major: 0, ms: 0 };
  const a = allocStart();
  const cpu = process.cpuUsage();
  const t = performance.now();
  out[`${name}AtS`] = t / 1000;
  const longest = lag();
  const result = await fn();
  longest.stop();
  const c = process.cpuUsage(cpu);
  out[`${name}Ms`] = performance.now() - t;
  out[`${name}CpuMs`] = (c.user + c.system) / 1000;
  out[`${name}AllocMB`] = allocSince(a) / 1e6;
  out[`${name}LongestMs`] = longest.ms;
  out[`${name}Gc`] = { ...gcs };
  return result;
}

async function once() {
  const out = {};
  const tx = await phase(out, 'build', () => fullBuildPolicyAsync(table, emptyTableState(), breathe, SLICE_MS));
  const batch = await phase(out, 'encode', async () => {
    let rules = 0;
    for (const o of tx.operations) if (o.object.kind === 'rule') rules++;
    const encoder = new BatchEncoder({
      group: tx.operations.length > 256,
      sizeHint: batchSizeHint(rules, tx.operations.length - rules),
    });
    if (session)
      await session.post('HeapProfiler.startSampling', {
        samplingInterval: 4096,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
    await drain(encodeSteps(tx.operations, encoder));
    const finished = encoder.finish();
    if (session) {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      (await import('node:fs')).writeFileSync(process.env.BENCH_HEAP_PROF, JSON.stringify(profile));
    }
    return finished;
  });
  out.commands = tx.operations.length;
  out.messages = batch.length;
  out.bytes = batch.sink.used;
  out.sha = createHash('sha256').update(batch.sink.bytes()).digest('hex').slice(0, 16);
  batch.sink.free();
  return out;
}

const hashOnly = process.argv.includes('--hash-only');
for (let r = 0; r < (hashOnly ? 1 : RUNS); r++) {
  const o = await once();
  if (hashOnly) console.log(o.sha, o.commands, o.messages, o.bytes);
  else
    console.log(
      JSON.stringify(o, (_k, v) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 10) / 10 : v)),
    );
}
