#!/usr/bin/env node
// Issues 4 and 18 benchmark: `strand agent` start-up, memory and idle cost on a large cluster served
// by the test API server (test/support), the agent in a test network namespace (a veth underlay with
// a default route; a listener inside the namespace hands its connections to the API server in this
// process) with every directory in a temporary one. The cluster (bench/agent-cluster.mjs)
// has valid pod addresses at every size and Nodes annotated as running Strand agents publish them.
//   - time from process start to /readyz 200 (node state and conflist written, informers listed);
//   - resident memory (VmRSS) once synced and BENCH_SETTLE_MS after ready (split there into RssAnon,
//     the agent's own, and RssFile, its executable's pages in the page cache), and its peak (VmHWM);
//   - CPU while idle after that, over BENCH_IDLE_MS (default 65 s: the window holds one periodic
//     resync, RESYNC_MS = 60 s, which a 30 s window missed: at 5,000 nodes it was most of the idle
//     cost), of the agent and of its children (the `nft` processes it runs), as % of one core, with no
//     health probe in that window;
//   - /healthz, /readyz and /metrics response times, sampled from inside the namespace every 100 ms
//     during start-up and, after the idle window, for BENCH_PROBED_MS (default 10 s; the CPU of that
//     window is reported apart) (target < 100 ms);
//   - warnings the agent logged, by message (a warning per peer per pass is a bug of its own);
//   - baseline in the same run: the same pinned Node running an idle script.
// Targets (issues 4 and 18): ready < 3 s and RSS < 150 MiB at 5,000 pods; idle CPU < 0.3 % of a core
// at 5,000 pods (< 1 % at 50,000); ready < 5 s at 50,000 pods / 10,000 policies.
// Knobs: BENCH_PODS, BENCH_NAMESPACES, BENCH_POLICIES, BENCH_NODES (or BENCH_SCALE), see
// agent-cluster.mjs; BENCH_MEMORY_LIMIT_MIB=256 runs the agent with the heap Node gives it under the
// DaemonSet's memory limit; BENCH_COLD_API=1 (the test API server serialises objects as the agent lists, not ahead); BENCH_RUNS (agent starts, default 3), BENCH_SETTLE_MS (default 3000),
// BENCH_IDLE_MS (default 65000), BENCH_VERBOSE=1 (the agent's own memory report), BENCH_SMAPS=1 (RSS by
// mapping), BENCH_AGENT_LOG=<file> (keep the agent's log), BENCH_AGENT_NODE_OPTIONS (V8/Node flags for the agent, e.g. --max-semi-space-size=1), BENCH_SLOW_PROBES=1 or =<ms> (each start-up answer over 100 ms, or over <ms>, with its time since the start and how late the prober itself ran).
//   node bench/agent-startup.mjs [--quick]     (--quick: one start, 10 s idle)
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fmt, printTable, stats } from './lib.mjs';
import { PROTOBUF, readListMeta } from '../test/kit/k8s/protobuf.ts';
import {
  cpuPercent,
  cpuSeconds,
  exited,
  logComplaints,
  makeNodeNamespace,
  memStatus,
  node,
  populate,
  sampleSummary,
  sizesFromEnv,
  sleep,
  startAgent,
  startApi,
  startProber,
  until,
  waitReady,
} from './agent-cluster.mjs';

const quick = process.argv.includes('--quick');
const runs = Number(process.env.BENCH_RUNS ?? (quick ? 1 : 3));
const SIZES = sizesFromEnv();
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 3000);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? (quick ? 10_000 : 65_000));
/** The health endpoints are sampled (every 100 ms) for this long after the unprobed idle window. */
const PROBED_MS = Number(process.env.BENCH_PROBED_MS ?? 10_000);
const LIMIT_MIB = Number(process.env.BENCH_MEMORY_LIMIT_MIB ?? 0);
const TARGET_RSS_MIB = 150;
const TARGET_READY_MS = 3000;
const TARGET_IDLE_PCT = SIZES.pods >= 50_000 ? 1 : 0.3;

/** The main loop's per-step counters from a /metrics answer: {step: {seconds, runs}}. */
function stepCounters(text = '') {
  const out = {};
  for (const m of text.matchAll(/^strand_step_(seconds|runs)_total\{step="([^"]+)"\} (\S+)$/gm)) {
    out[m[2]] ??= { seconds: 0, runs: 0 };
    out[m[2]][m[1]] = Number(m[3]);
  }
  // Garbage collections, as prom-client counts them (nodejs_gc_duration_seconds by kind).
  for (const m of text.matchAll(/^nodejs_gc_duration_seconds_(sum|count)\{kind="([^"]+)"\} (\S+)$/gm)) {
    const key = `(GC: ${m[2]})`;
    out[key] ??= { seconds: 0, runs: 0 };
    out[key][m[1] === 'sum' ? 'seconds' : 'runs'] = Number(m[3]);
  }
  // Watches opened again (a quiet watch the client took for dead, a 410, an error).
  for (const m of text.matchAll(/^strand_watch_restarts_total\{resource="([^"]+)"\} (\S+)$/gm)) {
    out[`(watch restarts: ${m[1]})`] = { seconds: 0, runs: Number(m[2]) };
  }
  return out;
}

/** RSS by mapping (BENCH_SMAPS=1): where resident memory is, in MiB. */
function smapsSummary(pid) {
  const by = new Map();
  let current = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      current = head[1] || '[anon]';
      continue;
    }
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m) by.set(current, (by.get(current) ?? 0) + Number(m[1]));
  }
  return [...by]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([k, v]) => `${(v / 1024).toFixed(1)} MiB ${k}`)
    .join('\n');
}

/**
 * Lists every resource the agent lists, page by page as it does, with its token and in the format it
 * asks for (pods, nodes and namespaces in Kubernetes protobuf, the others in JSON), so that the items
 * of the format it reads are the ones made ahead; the pages' count.
 */
async function warmLists(api) {
  const protobuf = `${PROTOBUF}, application/json`;
  const lists = [
    ['/api/v1/nodes', protobuf],
    ['/api/v1/pods', protobuf],
    ['/api/v1/namespaces', protobuf],
    ['/apis/networking.k8s.io/v1/networkpolicies', 'application/json'],
  ];
  let pages = 0;
  for (const [path, accept] of lists) {
    let cont;
    do {
      const query = new URLSearchParams({ limit: '500', ...(cont ? { continue: cont } : {}) });
      const res = await fetch(`${api.url}${path}?${query}`, {
        headers: { authorization: `Bearer ${api.agentToken}`, accept },
      });
      if (!res.ok) throw new Error(`warming the test API server: ${path}: ${res.status}`);
      pages++;
      if (res.headers.get('content-type') === PROTOBUF) {
        cont = readListMeta(new Uint8Array(await res.arrayBuffer())).continue;
      } else {
        const text = await res.text();
        cont = /"continue":"([^"]+)"/.exec(text.slice(0, 4096))?.[1];
      }
    } while (cont);
  }
  return pages;
}

async function agentRun(api, plan) {
  // This process is the test API server: its CPU time while the agent lists is what serving the
  // lists cost on the same 2 cores (a real API server runs elsewhere).
  const bench0 = process.cpuUsage();
  const agent = await startAgent(api, plan);
  let prober;
  // The peak is VmHWM and the largest VmRSS sampled, whichever is known: a read of /proc once the
  // agent is gone (or a status without the line) gives NaN, which Math.max would spread to the result.
  let peak = 0;
  const notePeak = (m) => {
    for (const v of [m.rss, m.hwm]) if (Number.isFinite(v)) peak = Math.max(peak, v);
  };
  const peakTimer = setInterval(() => {
    try {
      notePeak(memStatus(agent.pid));
    } catch {
      // exited
    }
  }, 50);
  try {
    // The prober starts after the agent (so that the agent's start is not delayed by it) and samples
    // the health endpoints from then on; failures before the agent listens are left out.
    prober = await startProber(agent.ns);
    prober.startSampling(100, ['/healthz', '/readyz', '/metrics']);
    await until(() => agent.logText().includes('"msg":"synced with the API server"'), 120_000, 'the agent to sync');
    const synced = memStatus(agent.pid);
    const syncedMs = Date.now() - agent.startedAt;
    // CPU time (every thread of the agent: V8's collector threads too) is steadier than wall time on
    // a shared machine: the work of start-up, whatever else runs.
    const syncedCpu = cpuSeconds(agent.pid).self;
    const benchCpu = process.cpuUsage(bench0);
    const apiCpu = (benchCpu.user + benchCpu.system) / 1e6;
    if (process.env.BENCH_SMAPS) console.log(smapsSummary(agent.pid));
    const readyMs = await waitReady(agent, prober);
    const readyAt = Date.now();
    const readyCpu = cpuSeconds(agent.pid).self;
    // The collections of the start-up (to ready), by kind: their count and main-thread time.
    const gcToReady = Object.entries(stepCounters((await prober.get('/metrics')).body))
      .filter(([k]) => k.startsWith('(GC'))
      .map(([k, v]) => `${k.slice(5, -1)} ${v.runs} in ${(v.seconds * 1000).toFixed(0)} ms`)
      .join(', ');
    console.log(`garbage collections from start to ready: ${gcToReady}`);
    await sleep(SETTLE_MS);
    const settled = memStatus(agent.pid);
    // Idle as a node sees it: no probe but kubelet's every 10 s and a scrape every 15-30 s, so the
    // window is unprobed (probing 30 times a second costs more than the target itself); the health
    // endpoints' latency is sampled in a window of its own after it, whose CPU is reported apart.
    await prober.stopSampling();
    const steps0 = stepCounters((await prober.get('/metrics')).body);
    const idleFrom = Date.now();
    const c0 = cpuSeconds(agent.pid);
    await sleep(IDLE_MS);
    const idleCpu = cpuPercent(c0, cpuSeconds(agent.pid), Date.now() - idleFrom);
    const idleWindowMs = Date.now() - idleFrom;
    const steps1 = stepCounters((await prober.get('/metrics')).body);
    const stepIdle = Object.fromEntries(
      Object.entries(steps1).map(([step, v]) => [
        step,
        {
          runs: v.runs - (steps0[step]?.runs ?? 0),
          pct: ((v.seconds - (steps0[step]?.seconds ?? 0)) * 1000 * 100) / idleWindowMs,
        },
      ]),
    );
    prober.startSampling(100, ['/healthz', '/readyz', '/metrics']);
    const probedFrom = Date.now();
    const p0 = cpuSeconds(agent.pid);
    await sleep(PROBED_MS);
    const probedCpu = cpuPercent(p0, cpuSeconds(agent.pid), Date.now() - probedFrom);
    const idleTo = Date.now();
    await prober.stopSampling();
    const all = prober.samples();
    const firstAnswer = all.find((s) => s.status !== 0)?.at ?? readyAt;
    // BENCH_SLOW_PROBES=1: each start-up answer over 100 ms, by its time since the agent started (to
    // read beside the agent's log, BENCH_AGENT_LOG).
    if (process.env.BENCH_SLOW_PROBES)
      for (const s of prober.samples(firstAnswer, readyAt))
        if (s.ms > (Number(process.env.BENCH_SLOW_PROBES) > 1 ? Number(process.env.BENCH_SLOW_PROBES) : 100))
          console.log(
            `slow ${s.sample}: ${s.ms.toFixed(1)} ms, answered at +${s.at - agent.startedAt} ms; the prober's own 5 ms timer was up to ${s.lag.toFixed(1)} ms late meanwhile`,
          );
    const health = {
      startup: sampleSummary(prober.samples(firstAnswer, readyAt)),
      idle: sampleSummary(prober.samples(probedFrom, idleTo)),
    };
    const end = memStatus(agent.pid);
    notePeak(end);
    const text = agent.logText();
    const syncedLine = JSON.parse(text.split('\n').find((l) => l.includes('"msg":"synced with the API server"')));
    if (process.env.BENCH_VERBOSE)
      console.log('agent memory at sync (process.memoryUsage, MiB):', JSON.stringify(syncedLine.memoryMiB));
    const complaints = logComplaints(text);
    // BENCH_AGENT_LOG=<file>: the agent's log is kept there (its directory goes with the agent).
    if (process.env.BENCH_AGENT_LOG) writeFileSync(process.env.BENCH_AGENT_LOG, text);
    const exitCode = await agent.stop();
    return {
      readyMs,
      syncedMs,
      syncedCpu,
      apiCpu,
      readyCpu,
      synced,
      settled,
      hwm: peak,
      idleCpu,
      stepIdle,
      probedCpu,
      health,
      objects: syncedLine.objects,
      exitCode,
      complaints,
    };
  } catch (err) {
    await agent.stop();
    throw err;
  } finally {
    clearInterval(peakTimer);
    prober?.close();
  }
}

async function baselineRun(api) {
  const host = makeNodeNamespace(api);
  const t0 = Date.now();
  const child = spawn(
    'ip',
    ['netns', 'exec', host.ns, node, '-e', 'process.stdout.write("up\\n"); setInterval(() => {}, 1000)'],
    { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  try {
    await until(() => out.includes('up'), 10_000, 'the idle Node');
    const startMs = Date.now() - t0;
    await sleep(1000);
    const c0 = cpuSeconds(child.pid);
    const t = Date.now();
    await sleep(Math.min(IDLE_MS, 10_000));
    return { startMs, idleCpu: cpuPercent(c0, cpuSeconds(child.pid), Date.now() - t).self, ...memStatus(child.pid) };
  } finally {
    child.kill('SIGKILL');
    await exited(child);
    host.close();
  }
}

const { api, close } = await startApi();
try {
  const t = Date.now();
  const plan = populate(api, SIZES);
  console.log(
    `cluster: ${SIZES.nodes} nodes, ${SIZES.pods} pods, ${SIZES.namespaces} namespaces, ${SIZES.policies} NetworkPolicies; cluster CIDR ${plan.clusterCidr}, ${plan.podsPerNode} pods a node (built in ${Date.now() - t} ms)`,
  );
  // The test API server runs in this process, on the cores the agent uses: its objects' list texts are
  // made now (a real API server serialises on its own machine). BENCH_COLD_API=1 leaves that to the
  // agent's first list, as before.
  if (!process.env.BENCH_COLD_API) {
    const t1 = Date.now();
    const n = api.prepareLists();
    console.log(
      `test API server: ${n} objects serialised for lists ahead (${Date.now() - t1} ms; BENCH_COLD_API=1: not)`,
    );
  }
  // A real API server serving a cluster of this size is warm: the first start of a run used to be
  // the one that also warmed this one's list path (its CPU to synced ~1.07 s against ~0.5 s), on the
  // cores the agent uses. Every list is read once, as the agent reads it, before the first start.
  const t2 = Date.now();
  const pages = await warmLists(api);
  console.log(`test API server: warmed by listing everything once (${pages} pages, ${Date.now() - t2} ms)`);
  if (LIMIT_MIB > 0)
    console.log(
      `the agent runs with the heap of a ${LIMIT_MIB} MiB memory limit (--max-old-space-size=${Math.floor(LIMIT_MIB / 2)})`,
    );
  const baselines = [];
  const agents = [];
  for (let i = 0; i < runs; i++) {
    baselines.push(await baselineRun(api));
    const r = await agentRun(api, plan);
    if (r.objects.pods !== SIZES.pods || r.objects.networkpolicies !== SIZES.policies)
      throw new Error(`the agent synced ${JSON.stringify(r.objects)}`);
    // Not fatal: an agent whose event loop is blocked does not stop within 15 s and is killed, a
    // finding of its own (seen at 50,000 pods); the figures still count.
    if (r.exitCode !== 0)
      console.log(
        `run ${i + 1}: the agent did not exit cleanly on SIGTERM (exit code ${r.exitCode}; null = killed after 15 s)`,
      );
    agents.push(r);
    // Each start on its own line: the table's median hides which start was slow and why (the first
    // start's lists also warm the test API server, which shares these cores).
    console.log(
      `run ${i + 1}: ready ${r.readyMs} ms, synced ${r.syncedMs} ms, CPU to ready ${Math.round(r.readyCpu * 1000)} ms, test API server CPU to synced ${Math.round(r.apiCpu * 1000)} ms, peak ${fmt(r.hwm)} MiB; the idle Node's start just before, ${baselines.at(-1).startMs} ms (how fast this machine is running now)`,
    );
  }
  const row = (st) => ({ median: fmt(st.median), min: fmt(st.min), max: fmt(st.max) });
  const s = (f) => row(stats(agents.map(f)));
  const healthRows = [];
  for (const phase of ['startup', 'idle']) {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const per = agents.map((a) => a.health[phase][path]).filter(Boolean);
      if (per.length === 0) continue;
      healthRows.push({
        measure: `${path} during ${phase === 'startup' ? 'start-up' : 'idle'}: median / p99 / max (ms)`,
        median: fmt(stats(per.map((p) => p.median)).median),
        min: fmt(stats(per.map((p) => p.p99)).median),
        max: `${fmt(Math.max(...per.map((p) => p.max)))} (${per.reduce((n, p) => n + p.n, 0)} probes, ${per.reduce((n, p) => n + p.over100, 0)} > 100 ms, ${per.reduce((n, p) => n + p.failed, 0)} failed)`,
      });
    }
  }
  printTable(`strand agent start-up, memory and idle cost, ${runs} run(s) (median, min, max)`, [
    { measure: 'agent: start to /readyz 200 (ms)', ...s((a) => a.readyMs) },
    { measure: 'agent: start to all informers synced (ms)', ...s((a) => a.syncedMs) },
    { measure: 'agent: CPU time to synced (ms, all its threads)', ...s((a) => a.syncedCpu * 1000) },
    { measure: 'agent: CPU time to /readyz 200 (ms, all its threads)', ...s((a) => a.readyCpu * 1000) },
    {
      measure: 'test API server (this process): CPU time from the start to synced (ms)',
      ...s((a) => a.apiCpu * 1000),
    },
    { measure: 'agent: VmRSS once synced (MiB)', ...s((a) => a.synced.rss) },
    { measure: 'agent: RssAnon once synced (MiB)', ...s((a) => a.synced.anon) },
    { measure: `agent: VmRSS ${SETTLE_MS / 1000} s after ready, settled (MiB)`, ...s((a) => a.settled.rss) },
    { measure: 'agent: RssAnon (its own memory), settled (MiB)', ...s((a) => a.settled.anon) },
    { measure: 'agent: RssFile (its executable, from the page cache), settled (MiB)', ...s((a) => a.settled.file) },
    { measure: 'agent: peak RSS (VmHWM) (MiB)', ...s((a) => a.hwm) },
    { measure: `agent: CPU idle over ${IDLE_MS / 1000} s (% of a core)`, ...s((a) => a.idleCpu.self) },
    { measure: `agent's children (nft): CPU over the same (% of a core)`, ...s((a) => a.idleCpu.children) },
    {
      measure: `agent + children: CPU over ${PROBED_MS / 1000} s of health probes every 100 ms (% of a core)`,
      ...s((a) => a.probedCpu.self + a.probedCpu.children),
    },
    { measure: 'baseline idle Node: start to first output (ms)', ...row(stats(baselines.map((b) => b.startMs))) },
    { measure: 'baseline idle Node: VmRSS (MiB)', ...row(stats(baselines.map((b) => b.rss))) },
    { measure: 'baseline idle Node: CPU idle (% of a core)', ...row(stats(baselines.map((b) => b.idleCpu))) },
  ]);
  const stepNames = [...new Set(agents.flatMap((a) => Object.keys(a.stepIdle)))];
  if (stepNames.length > 0)
    printTable(
      `main loop steps and garbage collections while idle, over ${IDLE_MS / 1000} s (median over runs; wall time of the step's runs as % of the window)`,
      stepNames.map((step) => ({
        step,
        runs: fmt(stats(agents.map((a) => a.stepIdle[step]?.runs ?? 0)).median),
        '% of a core': fmt(stats(agents.map((a) => a.stepIdle[step]?.pct ?? 0)).median),
      })),
    );
  printTable(
    "health endpoints sampled from inside the namespace every 100 ms (median over runs of each run's median and p99; target < 100 ms)",
    healthRows.map((r) => ({ measure: r.measure, median: r.median, p99: r.min, 'max (probes)': r.max })),
  );
  const complaints = new Map();
  for (const a of agents) for (const [msg, n] of a.complaints) complaints.set(msg, (complaints.get(msg) ?? 0) + n);
  console.log(`\nwarnings and errors in the agent's log over ${runs} run(s): ${complaints.size === 0 ? 'none' : ''}`);
  for (const [msg, n] of [...complaints].slice(0, 8)) console.log(`  ${n} × ${msg}`);
  const ready = stats(agents.map((a) => a.readyMs)).median;
  const rss = stats(agents.map((a) => a.settled.rss)).median;
  const idle = stats(agents.map((a) => a.idleCpu.self + a.idleCpu.children)).median;
  const peak = Math.max(...agents.map((a) => a.hwm));
  const verdict = (ok) => (ok ? 'met' : 'NOT met');
  console.log(
    '\n(the machine is shared with other work: wall times vary run to run; CPU times are the steadier figures)',
  );
  console.log(
    `start to ready: ${fmt(ready)} ms (target < ${TARGET_READY_MS} ms at 5,000 pods, < 5000 ms at 50,000): ${verdict(ready < (SIZES.pods >= 50_000 ? 5000 : TARGET_READY_MS))}`,
  );
  console.log(
    `resident memory settled: ${fmt(rss)} MiB (target < ${TARGET_RSS_MIB} MiB at 5,000 pods): ${verdict(rss < TARGET_RSS_MIB)}`,
  );
  console.log(
    `idle CPU, agent + children: ${fmt(idle)} % of a core (target < ${TARGET_IDLE_PCT} %): ${verdict(idle < TARGET_IDLE_PCT)}`,
  );
  if (LIMIT_MIB > 0)
    console.log(
      `peak RSS ${fmt(peak)} MiB against the ${LIMIT_MIB} MiB limit: ${peak < LIMIT_MIB ? 'under' : 'OVER (the kernel would OOM-kill the agent)'}`,
    );
} finally {
  await close();
}
