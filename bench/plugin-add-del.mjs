#!/usr/bin/env node
// Issues 3 and 12 benchmark: whole-process ADD and DEL of the pod-path executable dist/cni/strand
// (with strand-ipam, in process) against the reference bridge + host-local, on the same config shape
// (isGateway, isDefaultGateway, hairpinMode, a /16), each with its own bridge and data dir, every ADD
// into a fresh pod namespace.
//   - sequential: median and p90 of BENCH_RUNS (default 40, at least 30) ADDs and then DELs each,
//     strand and reference alternating so that background load hits both alike; the mean CPU time
//     (user + system) of each
//   - concurrent: wall time and CPU time of 20 ADDs started at once, BENCH_ROUNDS rounds (default 3),
//     median
//   - VERSION, and the executables' sizes
// Targets: ADD median <= 2.5x reference, DEL median <= 1.5x, 20 concurrent ADDs' wall <= 2.5x,
// VERSION <= 4x. STRAND_CNI=<path> measures another build of the CNI executable.
// Runs as root. Everything it creates starts with "stb" (not the tests' "stt", which their clean-up sweeps) and is removed at the end, even on failure.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { childCpuMs, cleanEnv, fmt, printTable, sizeMiB, stats, timeOnce } from './lib.mjs';

const root = resolve(import.meta.dirname, '..');
const dist = join(root, 'dist');
const strandCni = process.env.STRAND_CNI ?? join(dist, 'cni', 'strand');
const refDir = '/usr/lib/cni';
const runs = Math.max(30, Number(process.env.BENCH_RUNS ?? 40));
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const concurrency = 20;

if (process.getuid?.() !== 0) throw new Error('plugin-add-del.mjs needs root: it creates network namespaces');
for (const p of [strandCni, join(refDir, 'bridge'), join(refDir, 'host-local')]) {
  if (!existsSync(p))
    throw new Error(`${p} is missing (npm run build; scripts/setup.sh installs the reference plugins)`);
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
    ...(type === 'strand'
      ? { logFile: join(tmp, `${type}.log`), stateDir: join(tmp, 'state'), agentSocket: false }
      : {}),
    ipam: { type: ipamType, subnet, dataDir: join(tmp, `${type}-ipam`) },
  });
  return {
    label,
    plugin,
    bridge,
    config,
    cpu: {},
    count: {},
    path: type === 'strand' ? `${dirname(strandCni)}:${refDir}` : refDir,
    n: 0,
  };
}

const strand = side('strand + strand-ipam', strandCni, 'strand', 'strand-ipam', '10.211.0.0/16');
const reference = side(
  'reference bridge + host-local',
  join(refDir, 'bridge'),
  'bridge',
  'host-local',
  '10.212.0.0/16',
);

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
  return cleanEnv({
    CNI_COMMAND: command,
    CNI_CONTAINERID: a.containerId,
    CNI_NETNS: a.netns,
    CNI_IFNAME: 'eth0',
    CNI_PATH: s.path,
  });
}

/** One run: its wall time, and its CPU time added to s.cpu[command]. */
const time = (s, command, a) => {
  const cpu0 = childCpuMs();
  const { ms } = timeOnce(s.plugin, [], { env: env(s, command, a), input: s.config });
  s.cpu[command] = (s.cpu[command] ?? 0) + childCpuMs() - cpu0;
  s.count[command] = (s.count[command] ?? 0) + 1;
  return ms;
};

/** Starts `count` ADDs at once as separate processes; the wall time until the last one exits. */
function concurrentAdds(s, attachments) {
  const cpu0 = childCpuMs();
  const t0 = process.hrtime.bigint();
  const runs = attachments.map(
    (a) =>
      new Promise((resolvePromise, reject) => {
        const child = spawn(s.plugin, [], { env: env(s, 'ADD', a), stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.on('error', reject);
        child.on('close', (code) =>
          code === 0 ? resolvePromise() : reject(new Error(`${s.label} ADD exited ${code}: ${out}`)),
        );
        child.stdin.end(s.config);
      }),
  );
  return Promise.all(runs).then(() => ({ wall: Number(process.hrtime.bigint() - t0) / 1e6, cpu: childCpuMs() - cpu0 }));
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
/** A bare start of the Bun that dist/cni/strand is compiled with: the floor of any whole-process figure. */
const pinnedBun = resolve(import.meta.dirname, '..', 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun');
const bareStarts = [];
const versionEnv = cleanEnv({ CNI_COMMAND: 'VERSION' });
const version = (plugin) => timeOnce(plugin, [], { env: versionEnv, input: '{"cniVersion":"1.0.0"}' }).ms;
try {
  const sides = [strand, reference];
  // Warm-up: the page cache, the bridges, the IPAM stores.
  for (const s of sides) {
    const a = attachment(s);
    time(s, 'ADD', a);
    time(s, 'DEL', a);
  }
  for (const s of sides) {
    results.set(s, { add: [], del: [], attachments: [], concurrent: [], concurrentCpu: [], version: [] });
    s.cpu = {};
    s.count = {};
  }
  for (let i = 0; i < runs; i++) {
    bareStarts.push(timeOnce(pinnedBun, ['-e', '0'], { env: cleanEnv() }).ms);
    for (const s of sides) {
      results.get(s).version.push(version(s.plugin));
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
      const c = await concurrentAdds(s, batch);
      results.get(s).concurrent.push(c.wall);
      results.get(s).concurrentCpu.push(c.cpu);
      for (const a of batch) time(s, 'DEL', a);
    }
  }
} finally {
  cleanup();
}

const r = (s) => results.get(s);
const st = (s) => ({
  add: stats(r(s).add),
  del: stats(r(s).del),
  concurrent: stats(r(s).concurrent),
  concurrentCpu: stats(r(s).concurrentCpu),
  version: stats(r(s).version),
  cpuAdd: s.cpu.ADD / s.count.ADD,
  cpuDel: s.cpu.DEL / s.count.DEL,
});
const S = st(strand);
const R = st(reference);
const row = (measure, a, b, target = '') => ({ measure, strand: fmt(a), reference: fmt(b), ratio: fmt(a / b), target });
printTable(`Whole-process ADD and DEL, ${runs} sequential each, fresh pod namespaces (ms)`, [
  row('ADD median', S.add.median, R.add.median, '<= 2.50'),
  row('ADD p90', S.add.p90, R.add.p90),
  row('ADD CPU time (user+sys), mean', S.cpuAdd, R.cpuAdd),
  row('DEL median', S.del.median, R.del.median, '<= 1.50'),
  row('DEL p90', S.del.p90, R.del.p90),
  row('DEL CPU time (user+sys), mean', S.cpuDel, R.cpuDel),
  row(
    `${concurrency} concurrent ADDs, wall (median of ${rounds})`,
    S.concurrent.median,
    R.concurrent.median,
    '<= 2.50',
  ),
  row(`${concurrency} concurrent ADDs, CPU time (median of ${rounds})`, S.concurrentCpu.median, R.concurrentCpu.median),
  row('VERSION median', S.version.median, R.version.median, '<= 4.00'),
  row('VERSION p90', S.version.p90, R.version.p90),
]);
const bare = stats(bareStarts);
console.log(
  `\nBare start of the Bun the CNI executable is compiled with (bun -e 0), same rounds: median ${fmt(bare.median)} ms. ADD over it: ${fmt(S.add.median - bare.median)} ms.`,
);
printTable('Executable sizes (MiB)', [
  { executable: strandCni, size: fmt(sizeMiB(strandCni)) },
  { executable: join(refDir, 'bridge'), size: fmt(sizeMiB(join(refDir, 'bridge'))) },
  { executable: join(refDir, 'host-local'), size: fmt(sizeMiB(join(refDir, 'host-local'))) },
]);
const verdict = (name, ratio, target) =>
  console.log(`${name} ratio ${fmt(ratio)} (target <= ${target}): ${ratio <= target ? 'met' : 'NOT met'}`);
console.log('');
verdict('ADD median', S.add.median / R.add.median, 2.5);
verdict('DEL median', S.del.median / R.del.median, 1.5);
verdict(`${concurrency} concurrent ADDs wall`, S.concurrent.median / R.concurrent.median, 2.5);
verdict('VERSION median', S.version.median / R.version.median, 4);
