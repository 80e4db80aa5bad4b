#!/usr/bin/env node
// Issue 18 benchmark: the agent under churn. A running agent on node-7 of the 5,000-pod cluster
// (bench/agent-cluster.mjs; its knobs set the size) while this script changes the cluster through
// the test API server at a steady rate, one kind of change per phase:
//   label   a pod's tier label flips front ↔ back (pods of every node in turn; policies select on it);
//   pod     a pod is created (on the nodes in turn, a valid free address) and the oldest churn pod
//           deleted, alternately;
//   policy  a NetworkPolicy is created (the bench's shape) and the oldest churn policy deleted,
//           alternately.
// Each phase runs BENCH_CHURN_S seconds (30) at each of BENCH_RATES changes per second (10,50,200)
// and reports: the agent's CPU and its children's (nft) in % of a core over the phase, RSS before,
// right after and BENCH_WAIT_S (10) seconds after the phase, the programming latency distribution
// from the agent's strand_policy_programming_seconds (observations from the phase's start until the
// end of the wait; interpolated within buckets), /healthz, /readyz and /metrics sampled every 100 ms
// during the phase, and the runs of the agent's main-loop steps.
// Targets (issue 18): 200 label changes/s < 25 % of a core with programming p99 < 100 ms; RSS after
// churn within 10 % of before; /healthz < 100 ms.
//   node bench/agent-churn.mjs [--quick]    (--quick: 8 s phases, 5 s waits, rates 10 and 200)
// Knobs: BENCH_KINDS (label,pod,policy), BENCH_RATES, BENCH_CHURN_S, BENCH_WAIT_S, the cluster's.
import { benchPolicySpec, fmt, printTable } from './lib.mjs';
import {
  benchPod,
  cpuPercent,
  cpuSeconds,
  histogramDelta,
  memStatus,
  parseMetrics,
  podObject,
  populate,
  sampleSummary,
  sizesFromEnv,
  sleep,
  startAgent,
  startApi,
  startProber,
  waitReady,
} from './agent-cluster.mjs';

const quick = process.argv.includes('--quick');
const KINDS = (process.env.BENCH_KINDS ?? 'label,pod,policy').split(',');
const RATES = (process.env.BENCH_RATES ?? (quick ? '10,200' : '10,50,200')).split(',').map(Number);
const CHURN_MS = 1000 * Number(process.env.BENCH_CHURN_S ?? (quick ? 8 : 30));
const WAIT_MS = 1000 * Number(process.env.BENCH_WAIT_S ?? (quick ? 5 : 10));
const SIZES = sizesFromEnv();
const TICK_MS = 20;

/** The change makers: each call makes one change. */
function changers(api, plan) {
  let label = 0;
  let podSeq = 0;
  const pods = [];
  let policySeq = 0;
  const policies = [];
  return {
    label() {
      const p = benchPod(label++ % SIZES.pods, SIZES, plan);
      const current = api.get('pods', p.metadata.name, p.metadata.namespace);
      const tier = current.metadata.labels.tier === 'front' ? 'back' : 'front';
      api.patch(
        'pods',
        p.metadata.name,
        { metadata: { labels: { tier } } },
        { namespace: p.metadata.namespace, type: 'merge' },
      );
    },
    pod() {
      if (podSeq % 2 === 1 && pods.length > 0) {
        const old = pods.shift();
        api.delete('pods', old.name, old.namespace);
        podSeq++;
        return;
      }
      const i = podSeq++;
      const n = i % SIZES.nodes;
      const app = `app-${i % 250}`;
      const ip = plan.spare(n, Math.floor(i / SIZES.nodes));
      const o = podObject({
        name: `churn-${i.toString(36)}`,
        namespace: `ns-${i % SIZES.namespaces}`,
        app,
        tier: i % 3 === 0 ? 'front' : 'back',
        nodeIndex: n,
        plan,
        ip,
      });
      api.create('pods', o);
      pods.push({ name: o.metadata.name, namespace: o.metadata.namespace });
    },
    policy() {
      if (policySeq % 2 === 1 && policies.length > 0) {
        const old = policies.shift();
        api.delete('networkpolicies', old.name, old.namespace);
        policySeq++;
        return;
      }
      const i = policySeq++;
      const ns = `ns-${i % SIZES.namespaces}`;
      api.create('networkpolicies', { metadata: { name: `churn-${i}`, namespace: ns }, spec: benchPolicySpec(i + 7) });
      policies.push({ name: `churn-${i}`, namespace: ns });
    },
  };
}

/** Sampled one at a time every 100 ms during each phase, as probes and a scrape would. */
const ENDPOINTS = ['/healthz', '/readyz', '/metrics'];

/** strand_step_runs_total by step from parsed metrics. */
function stepRuns(metrics) {
  const out = {};
  for (const [key, v] of metrics) {
    const m = /^strand_step_runs_total\{step="([^"]+)"\}$/.exec(key);
    if (m) out[m[1]] = v;
  }
  return out;
}

async function churn(make, rate, ms) {
  const t0 = Date.now();
  let done = 0;
  let late = 0;
  while (Date.now() - t0 < ms) {
    const due = Math.floor(((Date.now() - t0) * rate) / 1000);
    if (due - done > rate) late++;
    while (done < due) {
      make();
      done++;
    }
    await sleep(TICK_MS);
  }
  return { done, seconds: (Date.now() - t0) / 1000, late };
}

const { api, close } = await startApi();
let agent;
let prober;
try {
  const plan = populate(api, SIZES);
  console.log(
    `cluster: ${SIZES.nodes} nodes, ${SIZES.pods} pods, ${SIZES.namespaces} namespaces, ${SIZES.policies} NetworkPolicies; phases of ${CHURN_MS / 1000} s, ${WAIT_MS / 1000} s wait after each`,
  );
  console.log(
    '(the machine is shared, and this script and the test API server run on it too: CPU figures are the steadier ones)',
  );
  agent = await startAgent(api, plan);
  prober = await startProber(agent.ns);
  const readyMs = await waitReady(agent, prober);
  await sleep(WAIT_MS);
  const startRss = memStatus(agent.pid).rss;
  console.log(`agent ready in ${readyMs} ms; RSS ${fmt(startRss)} MiB ${WAIT_MS / 1000} s later`);
  const make = changers(api, plan);
  const rows = [];
  const latency = [];
  const healthRows = [];
  const stepRows = [];
  for (const kind of KINDS) {
    for (const rate of RATES) {
      const rssBefore = memStatus(agent.pid).rss;
      const m0 = parseMetrics((await prober.get('/metrics')).body);
      const c0 = cpuSeconds(agent.pid);
      const from = Date.now();
      prober.startSampling(100, ENDPOINTS);
      const r = await churn(make[kind], rate, CHURN_MS);
      const c1 = cpuSeconds(agent.pid);
      const to = Date.now();
      const rssAfter = memStatus(agent.pid).rss;
      await prober.stopSampling();
      await sleep(WAIT_MS);
      const m1 = parseMetrics((await prober.get('/metrics')).body);
      const rssWait = memStatus(agent.pid);
      const cpu = cpuPercent(c0, c1, to - from);
      const summary = sampleSummary(prober.samples(from, to));
      const none = { median: NaN, p99: NaN, max: NaN, n: 0, over100: 0, failed: 0 };
      const health = Object.fromEntries(
        ENDPOINTS.map((path) => {
          const h = summary[path] ?? none;
          return [
            `${path} med/p99/max ms`,
            `${fmt(h.median)} / ${fmt(h.p99)} / ${fmt(h.max)} (${h.over100} of ${h.n} > 100)`,
          ];
        }),
      );
      const steps = Object.entries(stepRuns(m1))
        .map(([step, n]) => [step, n - (stepRuns(m0)[step] ?? 0)])
        .filter(([, n]) => n > 0)
        .map(([step, n]) => `${step} ${n}`)
        .join(', ');
      const prog = histogramDelta(m0, m1, 'strand_policy_programming_seconds');
      rows.push({
        change: kind,
        'per s (made)': `${rate} (${fmt(r.done / r.seconds)})`,
        'agent CPU %': fmt(cpu.self),
        'nft CPU %': fmt(cpu.children),
        'RSS before/after/+wait MiB': `${fmt(rssBefore)} / ${fmt(rssAfter)} / ${fmt(rssWait.rss)}`,
        'peak MiB': fmt(rssWait.hwm),
      });
      healthRows.push({ change: kind, 'per s': String(rate), ...health });
      stepRows.push({ change: kind, 'per s': String(rate), 'main loop step runs (phase + wait)': steps || 'none' });
      latency.push({
        change: kind,
        'per s': String(rate),
        passes: String(prog.count),
        'p50 ms': fmt(prog.p50 * 1000),
        'p90 ms': fmt(prog.p90 * 1000),
        'p99 ms': fmt(prog.p99 * 1000),
        'mean ms': fmt((prog.sum / prog.count) * 1000),
      });
      console.log(
        `  ${kind} ${rate}/s: agent ${fmt(cpu.self)} % + nft ${fmt(cpu.children)} %, RSS ${fmt(rssBefore)} → ${fmt(rssAfter)} → ${fmt(rssWait.rss)} MiB, programming p99 ${fmt(prog.p99 * 1000)} ms`,
      );
      if (!agent.alive()) throw new Error('the agent died during churn');
    }
  }
  printTable('agent under churn (CPU in % of one core over the phase)', rows);
  printTable('health endpoints sampled every 100 ms during the phase (target < 100 ms)', healthRows);
  printTable("the agent's main loop during the phase and its wait (strand_step_runs_total)", stepRows);
  printTable(
    'programming latency, strand_policy_programming_seconds observed from the phase start to the end of its wait (interpolated within buckets)',
    latency,
  );
  const endRss = memStatus(agent.pid).rss;
  console.log(
    `\nRSS: ${fmt(startRss)} MiB before any churn, ${fmt(endRss)} MiB at the end (${fmt((100 * (endRss - startRss)) / startRss)} %; target within 10 %)`,
  );
  const label200 = rows.find((r) => r.change === 'label' && r['per s (made)'].startsWith('200 '));
  if (label200) {
    const pct = Number(label200['agent CPU %']) + Number(label200['nft CPU %']);
    const p99 = Number(latency.find((l) => l.change === 'label' && l['per s'] === '200')['p99 ms']);
    console.log(
      `200 label changes/s: ${fmt(pct)} % of a core (target < 25 %): ${pct < 25 ? 'met' : 'NOT met'}; programming p99 ${fmt(p99)} ms (target < 100 ms): ${p99 < 100 ? 'met' : 'NOT met'}`,
    );
  }
} finally {
  prober?.close();
  await agent?.stop();
  await close();
}
