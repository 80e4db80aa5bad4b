#!/usr/bin/env node
// Issue 17 benchmark: pod start as a node meets it. ADD (and DEL) through the conflist the agent
// wrote, the way a runtime's libcni runs it (test/support/libcni.ts: strand with strand-ipam, then
// portmap), with the agent running on node-7 of a large cluster (bench/agent-cluster.mjs: 5,000 pods,
// 1,000 NetworkPolicies by default), against the reference bridge + host-local + portmap (Debian's
// /usr/lib/cni) on the same node namespace in the same run. Each pod is created in the API with its
// labels and spec.nodeName BEFORE its ADD, as the scheduler and kubelet do (BENCH_SCHEDULE_GAP_MS,
// default 100, between the pod's creation and its ADD: the sandbox's creation).
//   - sequential: BENCH_PODS_SEQ (50) ADDs each, strand and reference alternating: median, p90, p99;
//   - concurrent: BENCH_ROUNDS (3) rounds of 20 ADDs at once: wall time until the last one ends;
//   - after each ADD the pod's status gets its addresses, as kubelet reports them (BENCH_NO_STATUS=1:
//     not), so the agent sees the Pod event that follows every pod start on a node;
//   - DEL of every pod (sequential ones timed), the agent's CPU (and its nft children's) per ADD;
//   - the pod-start notice → answer time as the plugin sees it (its debug line "the agent
//     acknowledged the pod", the plugin's log level set to debug in the list): its wait for the
//     answer once it has wired the pod (the notice goes as soon as IPAM answers, so the agent binds
//     while the plugin wires), and the time since the notice went; sequential and concurrent apart;
//     and the agent's own strand_pod_start_answer_seconds histogram (notice arrived → answered).
// Every plugin runs inside the node namespace (nsenter --net), both sides alike.
// Targets: ADD median ≤ 1.5× reference, 20 concurrent ≤ 2× reference's wall, answer p50 ≤ 3 ms and
// p99 ≤ 10 ms.
//   node bench/pod-start.mjs [--quick]     (--quick: 20 sequential, 2 rounds of 20)
// Cluster knobs as agent-startup.mjs (BENCH_PODS, BENCH_POLICIES, ...); BENCH_AGENT_LOG_LEVEL (info) and
// BENCH_KEEP_LOGS=<dir> (the agent's and the plugin's logs kept there) for a timeline of the notices.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fmt, printTable, quantile } from './lib.mjs';
import {
  cpuSeconds,
  histogramDelta,
  ME,
  parseMetrics,
  populate,
  podObject,
  sizesFromEnv,
  sleep,
  startAgent,
  startApi,
  startProber,
  testName,
  waitReady,
} from './agent-cluster.mjs';
import { libcniPick, pluginConfig } from '../test/support/libcni.ts';

const quick = process.argv.includes('--quick');
const SEQ = Number(process.env.BENCH_PODS_SEQ ?? (quick ? 20 : 50));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (quick ? 2 : 3));
const CONCURRENT = 20;
const GAP_MS = Number(process.env.BENCH_SCHEDULE_GAP_MS ?? 100);
// BENCH_NO_STATUS=1: leave the pods' status without addresses after their ADD (kubelet reports them).
const STATUS = process.env.BENCH_NO_STATUS !== '1';
const SIZES = sizesFromEnv();

const namespaces = [];
function podNetns() {
  const name = testName('bq');
  spawnSync('ip', ['netns', 'add', name]);
  namespaces.push(name);
  spawnSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return `/run/netns/${name}`;
}

/** One plugin call inside the node namespace; resolves with its wall time and parsed stdout. */
function runPlugin(side, type, command, config, a) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('nsenter', [`--net=/run/netns/${side.nodeNs}`, '--', join(side.binDir, type)], {
      env: {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        CNI_COMMAND: command,
        CNI_CONTAINERID: a.containerId,
        CNI_NETNS: a.netns,
        CNI_IFNAME: 'eth0',
        CNI_PATH: side.binDir,
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${a.namespace};K8S_POD_NAME=${a.name};K8S_POD_INFRA_CONTAINER_ID=${a.containerId};K8S_POD_UID=${a.uid}`,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${type} ${command} exited ${code}: ${out}${err}`));
      else resolve({ ms: performance.now() - t0, json: out.trim() ? JSON.parse(out) : undefined });
    });
    child.stdin.end(JSON.stringify(config));
  });
}

/** ADD through the whole list (libcni's order and stdin); the wall time of the chain. */
async function addChain(side, a) {
  const t0 = performance.now();
  let prev;
  for (const plugin of side.list.plugins) {
    const config = pluginConfig(side.list, plugin, side.version, prev, { portMappings: [] });
    prev = (await runPlugin(side, plugin.type, 'ADD', config, a)).json;
  }
  a.result = prev;
  const ms = performance.now() - t0;
  if (side.api && STATUS) reportRunning(side.api, a);
  return ms;
}

/** What kubelet does once the sandbox is up: the pod's status gets its addresses (a Pod event the
 * agent sees right after the ADD, as on a node). */
function reportRunning(api, a) {
  const pod = api.get('pods', a.name, a.namespace);
  const ips = (a.result?.ips ?? []).map((x) => x.address.split('/')[0]);
  if (!pod || ips.length === 0) return;
  api.update('pods', {
    ...pod,
    status: { ...pod.status, phase: 'Running', podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) },
  });
}

/**
 * The addresses the cluster's pods on this node hold, reserved in strand-ipam's store as the IPAM that
 * gave them out would hold them: without it the bench's ADDs get addresses those pods still have
 * (two pods of one address, which no node shows, and which the agent's pod-start bind refuses and
 * compiles everything for).
 */
function reserveExisting(api, list) {
  const ipam = list.plugins[0].ipam ?? {};
  const dir = join(ipam.dataDir, list.name);
  mkdirSync(dir, { recursive: true });
  let n = 0;
  for (const pod of api.list('pods')) {
    if (pod.spec?.nodeName !== ME) continue;
    for (const { ip } of pod.status?.podIPs ?? []) {
      writeFileSync(join(dir, ip), `bench-${pod.metadata.uid ?? pod.metadata.name}\r\neth0`, { mode: 0o600 });
      n++;
    }
  }
  return n;
}

async function delChain(side, a) {
  const t0 = performance.now();
  for (const plugin of [...side.list.plugins].reverse()) {
    await runPlugin(
      side,
      plugin.type,
      'DEL',
      pluginConfig(side.list, plugin, side.version, a.result, { portMappings: [] }),
      a,
    );
  }
  return performance.now() - t0;
}

let seq = 0;
/** A pod for `side`: in the API (strand's side) before its ADD, and its namespace. `phase` names its
 * container id, so the plugin's log lines tell the sequential ADDs from the concurrent ones. */
function schedule(api, side, phase = 'seq') {
  const i = seq++;
  const app = `app-${i % 250}`;
  const a = {
    netns: podNetns(),
    containerId: `stb${phase}${i}`,
    namespace: `ns-${i % SIZES.namespaces}`,
    name: `start-${side.key}-${i}`,
    uid: `uid-start-${i}`,
  };
  if (side.key === 'strand') {
    const pod = api.create(
      'pods',
      podObject({
        name: a.name,
        namespace: a.namespace,
        app,
        tier: i % 3 === 0 ? 'front' : 'back',
        nodeIndex: 7,
        plan: side.plan,
      }),
    );
    a.uid = pod.metadata.uid ?? a.uid;
  }
  return a;
}

const tmp = mkdtempSync(join(tmpdir(), 'strand-bench-podstart-'));
const { api, close } = await startApi();
let agent;
let prober;
try {
  const plan = populate(api, SIZES);
  console.log(
    `cluster: ${SIZES.nodes} nodes, ${SIZES.pods} pods, ${SIZES.namespaces} namespaces, ${SIZES.policies} NetworkPolicies; the agent on ${ME}`,
  );
  agent = await startAgent(api, plan, { logLevel: process.env.BENCH_AGENT_LOG_LEVEL ?? 'info' });
  prober = await startProber(agent.ns);
  const readyMs = await waitReady(agent, prober);
  console.log(
    `agent ready in ${readyMs} ms; ${SEQ} sequential ADDs each, ${ROUNDS} rounds of ${CONCURRENT} concurrent (the machine is shared: see the ratios)`,
  );
  // The agent's list, the plugin's log at debug for its notice → answer line.
  const list = JSON.parse(readFileSync(join(agent.paths.confDir, '10-strand.conflist'), 'utf8'));
  list.plugins[0].logLevel = 'debug';
  const refList = {
    cniVersion: '1.0.0',
    name: 'stbref',
    plugins: [
      {
        type: 'bridge',
        bridge: testName('br'),
        isGateway: true,
        isDefaultGateway: true,
        hairpinMode: true,
        ipam: { type: 'host-local', subnet: '10.99.0.0/16', dataDir: join(tmp, 'host-local') },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
  const strand = {
    key: 'strand',
    label: 'strand (agent running)',
    api,
    list,
    version: libcniPick(list),
    binDir: agent.paths.binDir,
    nodeNs: agent.ns,
    plan,
    add: [],
    del: [],
    conc: [],
    cpu: 0,
  };
  const reference = {
    key: 'reference',
    label: 'bridge + host-local + portmap',
    list: refList,
    version: '1.0.0',
    binDir: '/usr/lib/cni',
    nodeNs: agent.ns,
    add: [],
    del: [],
    conc: [],
  };
  reserveExisting(api, list);
  const sides = [strand, reference];
  const metrics0 = parseMetrics((await prober.get('/metrics')).body);
  // Warm-up: page cache, bridges, IPAM stores.
  for (const s of sides) {
    const a = schedule(api, s);
    await sleep(GAP_MS);
    await addChain(s, a);
    await delChain(s, a);
  }
  const metricsSeq0 = parseMetrics((await prober.get('/metrics')).body);
  const cpuSeq0 = cpuSeconds(agent.pid);
  const seqPods = { strand: [], reference: [] };
  for (let i = 0; i < SEQ; i++) {
    for (const s of sides) {
      const a = schedule(api, s);
      await sleep(GAP_MS);
      s.add.push(await addChain(s, a));
      seqPods[s.key].push(a);
    }
  }
  const cpuSeq1 = cpuSeconds(agent.pid);
  const metricsSeq1 = parseMetrics((await prober.get('/metrics')).body);
  for (let i = 0; i < SEQ; i++) for (const s of sides) s.del.push(await delChain(s, seqPods[s.key][i]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of sides) {
      const batch = Array.from({ length: CONCURRENT }, () => schedule(api, s, 'conc'));
      await sleep(GAP_MS);
      const t0 = performance.now();
      await Promise.all(batch.map((a) => addChain(s, a)));
      s.conc.push(performance.now() - t0);
      for (const a of batch) await delChain(s, a);
    }
  }
  const metrics1 = parseMetrics((await prober.get('/metrics')).body);

  const st = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return { median: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99) };
  };
  const S = { add: st(strand.add), del: st(strand.del), conc: st(strand.conc) };
  const R = { add: st(reference.add), del: st(reference.del), conc: st(reference.conc) };
  const row = (measure, a, b, target = '') => ({
    measure,
    strand: fmt(a),
    reference: fmt(b),
    ratio: fmt(a / b),
    target,
  });
  printTable(`ADD and DEL through the list, in the node namespace, ${SEQ} sequential each (ms)`, [
    row('ADD median', S.add.median, R.add.median, '<= 1.50'),
    row('ADD p90', S.add.p90, R.add.p90),
    row('ADD p99', S.add.p99, R.add.p99),
    row(`${CONCURRENT} concurrent ADDs, wall (median of ${ROUNDS})`, S.conc.median, R.conc.median, '<= 2.00'),
    row(
      `${CONCURRENT} concurrent ADDs, wall (max of ${ROUNDS})`,
      Math.max(...strand.conc),
      Math.max(...reference.conc),
    ),
    row('DEL median', S.del.median, R.del.median, '<= 1.20 (standalone)'),
    row('DEL p90', S.del.p90, R.del.p90),
  ]);
  const cpu = cpuSeq1.self - cpuSeq0.self;
  const cpuChildren = cpuSeq1.children - cpuSeq0.children;
  console.log(
    `\nthe agent during the sequential ADDs: ${fmt((1000 * cpu) / SEQ)} ms CPU per pod (+ ${fmt((1000 * cpuChildren) / SEQ)} ms in its nft children), ${fmt((100 * (cpu + cpuChildren) * 1000) / (SEQ * (S.add.median + R.add.median + 2 * GAP_MS)))} % of a core on average`,
  );

  // The plugin's side of the handshake: its line about the notice in the CNI log, by phase (the
  // container id says which) and outcome.
  const handshake = new Map();
  const waitsOf = { seq: [], conc: [] };
  // Since the notice went (sent as soon as IPAM answered, before the plugin wires the pod).
  const sinceOf = { seq: [], conc: [] };
  for (const l of readFileSync(agent.paths.cniLog, 'utf8').split('\n')) {
    if (!l.includes('"agentSocket"')) continue;
    const o = JSON.parse(l);
    if (typeof o.ms !== 'number') continue;
    const list = handshake.get(o.msg) ?? [];
    list.push(o.ms);
    handshake.set(o.msg, list);
    const phase = /^stb(seq|conc)\d/.exec(o.containerId ?? '')?.[1];
    if (phase && o.msg === 'the agent acknowledged the pod') {
      waitsOf[phase].push(o.ms);
      if (typeof o.sinceNoticeMs === 'number') sinceOf[phase].push(o.sinceNoticeMs);
    }
  }
  for (const list of [...Object.values(waitsOf), ...Object.values(sinceOf)]) list.sort((a, b) => a - b);
  const notices = (m, result) => m.get(`strand_pod_start_notices_total{result="${result}"}`) ?? 0;
  const answerSeq = histogramDelta(metricsSeq0, metricsSeq1, 'strand_pod_start_answer_seconds');
  const answerAll = histogramDelta(metrics0, metrics1, 'strand_pod_start_answer_seconds');
  const prog = histogramDelta(metricsSeq0, metricsSeq1, 'strand_policy_programming_seconds');
  const fromList = (measure, xs, target = '') => ({
    measure,
    p50: fmt(quantile(xs, 0.5)),
    p90: fmt(quantile(xs, 0.9)),
    p99: fmt(quantile(xs, 0.99)),
    max: fmt(xs.at(-1)),
    target,
  });
  const fromHistogram = (measure, h, target = '') => ({
    measure,
    p50: fmt(h.p50 * 1000),
    p90: fmt(h.p90 * 1000),
    p99: fmt(h.p99 * 1000),
    max: '',
    target,
  });
  printTable('pod-start notice → answer (ms)', [
    fromList(`the plugin's wait, sequential ADDs (CNI log, ${waitsOf.seq.length})`, waitsOf.seq, 'p50 <= 3, p99 <= 10'),
    fromList(`the plugin's wait, concurrent ADDs (CNI log, ${waitsOf.conc.length})`, waitsOf.conc),
    fromList(`notice sent → answer read, sequential (plugin, ${sinceOf.seq.length})`, sinceOf.seq),
    fromHistogram(
      `agent: strand_pod_start_answer_seconds, sequential phase (${answerSeq.count} obs.)`,
      answerSeq,
      'p50 <= 3, p99 <= 10',
    ),
    fromHistogram(`agent: strand_pod_start_answer_seconds, whole run (${answerAll.count} obs.)`, answerAll),
    fromHistogram(`agent: strand_policy_programming_seconds, sequential phase (${prog.count} obs.)`, prog),
  ]);
  console.log(
    `agent: strand_pod_start_notices_total over the run: ok ${notices(metrics1, 'ok') - notices(metrics0, 'ok')}, refused ${notices(metrics1, 'refused') - notices(metrics0, 'refused')}, error ${notices(metrics1, 'error') - notices(metrics0, 'error')}`,
  );
  // How the notices were bound: computed ahead (before the notice), at the notice, or by a compile.
  const binds = (m0, m1) =>
    ['ahead', 'notice', 'compile', 'mismatch']
      .map((p) => {
        const key = `strand_policy_pod_start_binds_total{path="${p}"}`;
        return `${p} ${(m1.get(key) ?? 0) - (m0.get(key) ?? 0)}`;
      })
      .join(', ');
  console.log(
    `agent: strand_policy_pod_start_binds_total, sequential phase: ${binds(metricsSeq0, metricsSeq1)}; whole run: ${binds(metrics0, metrics1)}`,
  );
  for (const [msg, list] of handshake) console.log(`  plugin: ${list.length} × "${msg}"`);
  console.log(
    "(the agent's histograms are interpolated within their buckets; the programming histogram also counts Pod events)",
  );
  const verdict = (name, v, target) =>
    console.log(`${name}: ${fmt(v)} (target <= ${target}): ${v <= target ? 'met' : 'NOT met'}`);
  console.log('');
  verdict('ADD median ratio', S.add.median / R.add.median, 1.5);
  verdict(`${CONCURRENT} concurrent ADDs wall ratio`, S.conc.median / R.conc.median, 2);
  verdict("the plugin's wait p50 (ms, sequential)", quantile(waitsOf.seq, 0.5), 3);
  verdict("the plugin's wait p99 (ms, sequential)", quantile(waitsOf.seq, 0.99), 10);
  verdict("the agent's answer p50 (ms, its histogram, sequential)", answerSeq.p50 * 1000, 3);
  verdict("the agent's answer p99 (ms, its histogram, sequential)", answerSeq.p99 * 1000, 10);
  spawnSync('nsenter', [`--net=/run/netns/${agent.ns}`, 'ip', 'link', 'del', refList.plugins[0].bridge]);
} finally {
  // BENCH_KEEP_LOGS=<dir>: the agent's and the plugin's logs are kept there (for a timeline of a notice).
  if (process.env.BENCH_KEEP_LOGS && agent) {
    mkdirSync(process.env.BENCH_KEEP_LOGS, { recursive: true });
    for (const f of [agent.paths.log, agent.paths.cniLog])
      if (existsSync(f)) copyFileSync(f, join(process.env.BENCH_KEEP_LOGS, basename(f)));
  }
  prober?.close();
  await agent?.stop();
  for (const ns of namespaces.splice(0)) spawnSync('ip', ['netns', 'del', ns]);
  rmSync(tmp, { recursive: true, force: true });
  await close();
}
