#!/usr/bin/env node
// The policy enforcer's own work at scale, in process, against the nft fake, or with BENCH_KERNEL=1
// the real kernel through today's transport (`nft -f` processes) in a throwaway network namespace:
// the pod-start notice → answer latency (the gate answering, with the time inside the transport
// apart), a pass whose inputs did not change, a remote and a local pod label change, a policy change,
// a remote and a local pod deleted,
// the flow cutter's "what changed", and the longest time the event loop was held in each phase.
// Knobs: BENCH_PODS (5000), BENCH_POLICIES (1000) or BENCH_SCALE (multiplies both: 10 is the 50,000-pod
// / 10,000-policy point), BENCH_NODES (100), BENCH_NOTICES (50), BENCH_CHANGES (5: samples of each
// kind of change), BENCH_KERNEL, BENCH_PROFILE=file (a CPU profile; BENCH_PROFILE_PHASE=name: of that
// phase only, e.g. "policy change"), BENCH_NOTICE_GAP_MS (0: a pause before each sequential notice).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { benchPolicySpec, fmt, printTable, quantile } from './lib.mjs';
import { PolicyEnforcer } from '../src/agent/policy/enforcer.ts';
import { changedPodAddresses } from '../src/agent/policy/flow-cutter.ts';
import { PodStartNotices } from '../src/agent/pod-notices.ts';
import { execFileSync } from 'node:child_process';
import { FakeNft } from '../src/nft/fake.ts';
import { createNftRunner } from '../src/nft/runner.ts';
import { createNetlinkTransport } from '../src/nft/netlink/transport.ts';
import { silentLogger } from '../src/log.ts';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const PODS = Number(process.env.BENCH_PODS ?? 5000 * SCALE);
const POLICIES = Number(process.env.BENCH_POLICIES ?? 1000 * SCALE);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 5);
const NODES = Number(process.env.BENCH_NODES ?? 100);
const NOTICES = Number(process.env.BENCH_NOTICES ?? 50);
// A pause before each sequential notice (ms): a node's pod starts come apart, and an idle process
// answers slower than one in a tight loop (caches, CPU frequency, wake-ups).
const NOTICE_GAP_MS = Number(process.env.BENCH_NOTICE_GAP_MS ?? 0);
const NAMESPACES = Math.max(1, Math.round(PODS / 25));
const ME = 'node-7';

class Store {
  constructor() {
    this.m = new Map();
  }
  key(name, ns) {
    return `${ns ?? ''}/${name}`;
  }
  put(o) {
    this.m.set(this.key(o.metadata.name, o.metadata.namespace), o);
  }
  del(o) {
    this.m.delete(this.key(o.metadata.name, o.metadata.namespace));
  }
  get(name, ns) {
    return this.m.get(this.key(name, ns));
  }
  list() {
    return [...this.m.values()];
  }
}
const ip = (i) => `10.${64 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256}`;
const cache = {
  pods: new Store(),
  namespaces: new Store(),
  networkPolicies: new Store(),
  clusterNetworkPolicies: new Store(),
  nodes: new Store(),
  synced: true,
  unsynced: [],
};
for (let n = 0; n < NAMESPACES; n++) {
  cache.namespaces.put({ metadata: { name: `ns-${n}`, labels: { team: `team-${n % 20}` } } });
}
const pod = (i, node, ips) => ({
  metadata: {
    name: `pod-${i}`,
    namespace: `ns-${i % NAMESPACES}`,
    uid: `u-${i}`,
    labels: { app: `app-${i % 250}`, tier: i % 3 === 0 ? 'front' : 'back' },
  },
  spec: { nodeName: node, containers: [{ ports: [{ name: 'metrics', containerPort: 9090, protocol: 'TCP' }] }] },
  status: { phase: 'Running', podIPs: ips.map((x) => ({ ip: x })) },
});
for (let i = 0; i < PODS; i++) cache.pods.put(pod(i, `node-${i % NODES}`, [ip(i + 1)]));
for (let i = 0; i < POLICIES; i++) {
  cache.networkPolicies.put({
    metadata: { name: `np-${i}`, namespace: `ns-${i % NAMESPACES}` },
    spec: benchPolicySpec(i),
  });
}

const clock = {
  now: () => performance.now(),
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};
// BENCH_KERNEL=1: `nft -f` processes; BENCH_KERNEL=netlink: the agent's own transport (nf_tables netlink).
const KERNEL = process.env.BENCH_KERNEL === '1' || process.env.BENCH_KERNEL === 'netlink';
const NETLINK = process.env.BENCH_KERNEL === 'netlink';
const NETNS = `strand-bench-inc-${process.pid}`;
if (KERNEL) execFileSync('ip', ['netns', 'add', NETNS]);
process.on('exit', () => {
  if (KERNEL) execFileSync('ip', ['netns', 'del', NETNS]);
});
const nft = NETLINK
  ? createNetlinkTransport({ netns: NETNS })
  : KERNEL
    ? createNftRunner({ netns: NETNS })
    : new FakeNft();
// BENCH_TRANSPORT=none: transactions are accepted and dropped, so the figures are the agent's own
// work (the fake copies its whole table on every run: 0.5 s at 50,000 pods, which hides the rest).
if (process.env.BENCH_TRANSPORT === 'none') nft.run = async () => {};
// The transport's share: time inside nft.run (the fake here; `nft -f` or netlink on a node).
const transport = { ms: 0, runs: 0 };
const run = nft.run.bind(nft);
nft.run = async (tx) => {
  const t = performance.now();
  try {
    return await run(tx);
  } finally {
    transport.ms += performance.now() - t;
    transport.runs++;
  }
};
const notices = new PodStartNotices(clock, { apiPod: (ns, name) => cache.pods.get(name, ns) });
const enforcer = new PolicyEnforcer({
  nodeName: ME,
  nft,
  cache,
  kube: {
    request: async () => {
      throw new Error('no API');
    },
  },
  log: silentLogger,
  registry: new Registry(),
  notices,
  nodeAddresses: () => ['10.0.0.7'],
  cutDeniedFlows: false,
  logDenied: false,
  clock,
});

// The longest event-loop slice of each phase (ms): what /healthz and a notice would wait behind.
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
const slices = [];
let phaseTransport = 0;
let phaseRuns = 0;
// BENCH_PROFILE=file: a CPU profile of everything after the first pass (the changes and notices), or
// with BENCH_PROFILE_PHASE of that phase alone.
const PROFILE_PHASE = process.env.BENCH_PROFILE_PHASE;
const profiler = process.env.BENCH_PROFILE ? new (await import('node:inspector')).Session() : undefined;
const post = (method, params) =>
  new Promise((resolve, reject) => profiler.post(method, params, (err, r) => (err ? reject(err) : resolve(r))));
let profiling = false;
async function startProfile() {
  profiler.connect();
  await post('Profiler.enable');
  await post('Profiler.start');
  profiling = true;
}
async function stopProfile() {
  if (!profiling) return;
  profiling = false;
  const { profile } = await post('Profiler.stop');
  (await import('node:fs')).writeFileSync(process.env.BENCH_PROFILE, JSON.stringify(profile));
}
/** Called before each phase after the first: starts the profile of the phase asked for. */
async function begin(name) {
  if (profiler && PROFILE_PHASE === name) await startProfile();
}
async function phase(name) {
  const runs = transport.runs - phaseRuns;
  slices.push([name, loopDelay.max / 1e6, runs, runs > 0 ? (transport.ms - phaseTransport) / runs : 0]);
  phaseTransport = transport.ms;
  phaseRuns = transport.runs;
  if (PROFILE_PHASE === name) await stopProfile();
  loopDelay.reset();
}

async function timed(fn) {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const first = await timed(async () => {
  enforcer.request();
  await enforcer.settle();
});
if (enforcer.problem) throw new Error(`the first apply failed: ${enforcer.problem}`);
await phase('first pass');
if (profiler && !PROFILE_PHASE) await startProfile();
await begin('pass with nothing changed');
const noop = [];
for (let r = 0; r < CHANGES; r++)
  noop.push(
    await timed(async () => {
      enforcer.request();
      await enforcer.settle();
    }),
  );

await phase('pass with nothing changed');
await begin('remote pod label change');
// Label changes of a remote pod the local pods' peers select.
const label = [];
for (let r = 0; r < CHANGES; r++) {
  const p = cache.pods.get(`pod-${r * 100 + 1}`, `ns-${(r * 100 + 1) % NAMESPACES}`);
  cache.pods.put({
    ...p,
    metadata: {
      ...p.metadata,
      labels: { ...p.metadata.labels, tier: p.metadata.labels.tier === 'front' ? 'back' : 'front' },
    },
  });
  label.push(
    await timed(async () => {
      enforcer.request(performance.now());
      await enforcer.settle();
    }),
  );
}

await phase('remote pod label change');
await begin('local pod label change');
// Label changes of local pods (their chains change).
const localLabel = [];
for (let r = 0; r < CHANGES; r++) {
  const i = r * NODES + 7;
  const p = cache.pods.get(`pod-${i}`, `ns-${i % NAMESPACES}`);
  cache.pods.put({ ...p, metadata: { ...p.metadata, labels: { ...p.metadata.labels, app: `app-${(i + 1) % 250}` } } });
  localLabel.push(
    await timed(async () => {
      enforcer.request(performance.now());
      await enforcer.settle();
    }),
  );
}
await phase('local pod label change');
await begin('policy change');
// A policy's port changed.
const policyChange = [];
for (let r = 0; r < CHANGES; r++) {
  const i = r * 7 + 7;
  cache.networkPolicies.put({
    metadata: { name: `np-${i}`, namespace: `ns-${i % NAMESPACES}` },
    spec: benchPolicySpec(i, 9000 + r),
  });
  policyChange.push(
    await timed(async () => {
      enforcer.request(performance.now());
      await enforcer.settle();
    }),
  );
}
await phase('policy change');
await begin('remote pod deleted');
// Pod deletions (issue 18: proportional to the pod): a remote pod, then a local one, from the middle
// of the informer's list.
const remoteDelete = [];
for (let r = 0; r < CHANGES; r++) {
  const i = r * 100 + 3;
  cache.pods.del(cache.pods.get(`pod-${i}`, `ns-${i % NAMESPACES}`));
  remoteDelete.push(
    await timed(async () => {
      enforcer.request(performance.now());
      await enforcer.settle();
    }),
  );
}
await phase('remote pod deleted');
await begin('local pod deleted');
const localDelete = [];
for (let r = 0; r < CHANGES; r++) {
  // A local pod from the middle of this node's (pod i is on node i % NODES), none a label phase touched.
  const i = (Math.floor(PODS / NODES / 2) + r) * NODES + 7;
  cache.pods.del(cache.pods.get(`pod-${i}`, `ns-${i % NAMESPACES}`));
  localDelete.push(
    await timed(async () => {
      enforcer.request(performance.now());
      await enforcer.settle();
    }),
  );
}
await phase('local pod deleted');
await begin('pod-start notices (sequential)');
// Pod starts: the pod is in the informer (scheduled here, no address yet) before its notice.
const answers = [];
const answerCpu = [];
const fullPasses = { n: 0 };
const pass = enforcer.pass.bind(enforcer);
let inNotice = false;
enforcer.pass = (...a) => {
  if (inNotice) fullPasses.n++;
  return pass(...a);
};
if (process.env.BENCH_DEBUG && enforcer.bindModel) {
  const bm = enforcer.bindModel.bind(enforcer);
  enforcer.bindModel = () => {
    console.log(
      'bindDue',
      [...enforcer.bindDue],
      'problem',
      enforcer.applier.problem,
      !!enforcer.compiled,
      !!enforcer.applier.current,
    );
    const r = bm();
    console.log('bound', !!r);
    return r;
  };
}
const t0 = { ms: 0 };
// The agent's own parts of a notice: the bind, the apply (diff + transport); the rest is the render.
const parts = { bind: 0, apply: 0 };
for (const [obj, name, key] of [
  [enforcer, 'bindModel', 'bind'],
  [enforcer.applier, 'apply', 'apply'],
]) {
  if (typeof obj[name] !== 'function') continue; // an older enforcer (the figures before)
  const f = obj[name].bind(obj);
  obj[name] = (...a) => {
    if (!inNotice) return f(...a);
    const t = performance.now();
    const r = f(...a);
    if (r instanceof Promise)
      return r.finally(() => {
        parts[key] += performance.now() - t;
      });
    parts[key] += performance.now() - t;
    return r;
  };
}
// The pods are in the informer (scheduled here, no address yet) before their notices, as kubelet does.
for (let k = 0; k < NOTICES; k++) cache.pods.put(pod(PODS + 10 + k, ME, []));
enforcer.request(performance.now());
await enforcer.settle();
for (let k = 0; k < NOTICES; k++) {
  const i = PODS + 10 + k;
  const n = { namespace: `ns-${i % NAMESPACES}`, name: `pod-${i}`, uid: `u-${i}`, ips: [ip(i + 1)] };
  if (NOTICE_GAP_MS > 0) await new Promise((r) => setTimeout(r, NOTICE_GAP_MS));
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  const before = transport.ms;
  inNotice = true;
  notices.record(n);
  const a = await enforcer.gate.podStarted(n, 10_000);
  inNotice = false;
  if (!a.ok) throw new Error(`notice refused: ${a.message}`);
  answers.push(performance.now() - t);
  const cpu = process.cpuUsage(cpu0);
  answerCpu.push((cpu.user + cpu.system) / 1000);
  t0.ms += transport.ms - before;
}
await phase('pod-start notices (sequential)');
await begin('20 concurrent notices');
// 20 concurrent.
const conc = [];
for (let r = 0; r < 3; r++) {
  const ns = [];
  for (let k = 0; k < 20; k++) {
    const i = PODS + 1000 + r * 20 + k;
    cache.pods.put(pod(i, ME, []));
    ns.push({ namespace: `ns-${i % NAMESPACES}`, name: `pod-${i}`, uid: `u-${i}`, ips: [ip(i + 1)] });
  }
  enforcer.request(performance.now());
  await enforcer.settle();
  conc.push(
    await timed(() =>
      Promise.all(
        ns.map((n) => {
          notices.record(n);
          return enforcer.gate.podStarted(n, 10_000);
        }),
      ),
    ),
  );
}

await phase('20 concurrent notices');
const compiled = enforcer.programming.compiled;
const cut = [];
for (let r = 0; r < 3; r++) cut.push(await timed(() => changedPodAddresses(compiled, compiled)));

enforcer.stop();
await stopProfile();
console.log(
  `notices: ${fullPasses.n} of ${NOTICES} fell back to a full compile; a notice's mean ms: bind ${fmt(parts.bind / NOTICES)}, apply ${fmt(parts.apply / NOTICES)} of which transport ${fmt(t0.ms / NOTICES)}`,
);
// How the notices were bound (sequential and concurrent): computed ahead, at the notice, by a compile.
const paths = (await enforcer.metrics.podStartBinds?.get())?.values ?? [];
console.log(`binds by path: ${paths.map((v) => `${v.labels.path} ${v.value}`).join(', ') || 'none counted'}`);
const q = (s, x) =>
  fmt(
    quantile(
      [...s].sort((a, b) => a - b),
      x,
    ),
  );
const row = (name, s) => [name, s.length, q(s, 0.5), q(s, 0.9), q(s, 0.99), q(s, 1)];
printTable(
  `policy enforcer, ${NETLINK ? 'kernel (netlink)' : KERNEL ? 'kernel (nft -f)' : process.env.BENCH_TRANSPORT === 'none' ? 'no transport' : 'nft fake'}: ${PODS} pods / ${POLICIES} policies / ${NODES} nodes, ${compiled.pods.length} local pods (ms)`,
  [
    ['what', 'n', 'p50', 'p90', 'p99', 'max'],
    ['first pass (full compile + rebuild)', 1, fmt(first), '', '', ''],
    row('pass with nothing changed', noop),
    row('remote pod label change', label),
    row('local pod label change', localLabel),
    row('policy change', policyChange),
    row('remote pod deleted', remoteDelete),
    row('local pod deleted', localDelete),
    row('pod-start notice -> answer (sequential)', answers),
    row('  the same, CPU time of this process', answerCpu),
    row('20 concurrent notices -> all answered', conc),
    row('flow cutter: what changed (no change)', cut),
  ],
);

printTable('per phase: longest event-loop slice (ms, the transport included), transport runs and mean ms', [
  ['phase', 'longest slice', 'nft runs', 'ms per run'],
  ...slices.map(([n, ms, runs, per]) => [n, fmt(ms), runs, fmt(per)]),
]);

// Where a bind's time goes (BENCH_SPLIT=1).
if (process.env.BENCH_SPLIT) {
  const { bindLocalPod } = await import('../src/policy/bind.ts');
  const { renderBound, diffShared } = await import('../src/policy/bind-render.ts');
  const before = enforcer.applier.current;
  const i = PODS + 5000;
  const p = pod(i, ME, []);
  cache.pods.put(p);
  const key = `ns-${i % NAMESPACES}/pod-${i}`;
  notices.record({ namespace: `ns-${i % NAMESPACES}`, name: `pod-${i}`, ips: [ip(i + 1)] });
  const f = enforcer.input.forPod(key);
  const split = { forPod: [], bind: [], render: [], diff: [] };
  const reps = Number(process.env.BENCH_SPLIT_REPS ?? 5);
  for (let r = 0; r < reps; r++) {
    let t = performance.now();
    const g = enforcer.input.forPod(key);
    split.forPod.push(performance.now() - t);
    t = performance.now();
    const m = bindLocalPod(compiled, g.input, g.pod)?.compiled;
    split.bind.push(performance.now() - t);
    t = performance.now();
    const b = renderBound(compiled, before, m);
    split.render.push(performance.now() - t);
    t = performance.now();
    diffShared(before, b);
    split.diff.push(performance.now() - t);
  }
  void f;
  printTable('bind split (ms)', [
    ['what', 'n', 'p50', 'p90', 'p99', 'max'],
    ...Object.entries(split).map(([k, v]) => row(k, v)),
  ]);
}
