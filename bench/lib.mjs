// Shared by the benchmarks: timing of whole processes, statistics and a printed table.
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';

export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, median: quantile(s, 0.5), p90: quantile(s, 0.9), min: s[0], max: s.at(-1) };
}

/**
 * CPU time (user + system, ms) of this process's children that have been waited for, from
 * /proc/self/stat (cutime + cstime, in clock ticks of 10 ms): the difference around some runs is
 * their CPU time, exact in sum over many runs.
 */
export function childCpuMs() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 16 and 17 of proc(5) (cutime, cstime); the slice starts at field 3.
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/** The size of a file in MiB, following links. */
export function sizeMiB(path) {
  return statSync(path).size / (1 << 20);
}

/** Runs a command once and returns its wall time in ms; throws if it fails. */
export function timeOnce(cmd, args, { env, input } = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, input, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} exited ${r.status}: ${r.stdout}${r.stderr}`);
  return { ms, stdout: r.stdout };
}

export const fmt = (x) => (Number.isFinite(x) ? x.toFixed(2) : String(x));

export function printTable(title, rows) {
  console.log(`\n${title}`);
  const cols = Object.keys(rows[0]);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  console.log(cols.map((c, i) => c.padEnd(width[i])).join('  '));
  for (const r of rows) console.log(cols.map((c, i) => String(r[c]).padEnd(width[i])).join('  '));
}

/** The environment a runtime gives a plugin: no NODE_EXTRA_CA_CERTS or NODE_OPTIONS. */
export function cleanEnv(extra = {}) {
  return { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...extra };
}

/**
 * The spec of NetworkPolicy number `i` of the benchmarks' large cluster (agent start-up, policy
 * compiler): pods of one app, ingress from a pod peer, a namespace-and-pod peer and an ipBlock on a
 * numeric and a named port, egress DNS to every namespace.
 */
export function benchPolicySpec(i, port = 8080) {
  return {
    podSelector: { matchLabels: { app: `app-${i % 250}` } },
    policyTypes: ['Ingress', 'Egress'],
    ingress: [
      {
        from: [
          { podSelector: { matchLabels: { tier: 'front' } } },
          {
            namespaceSelector: { matchLabels: { team: `team-${i % 20}` } },
            podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['a', 'b'] }] },
          },
          { ipBlock: { cidr: '198.18.0.0/15', except: ['198.18.9.0/24'] } },
        ],
        ports: [
          { protocol: 'TCP', port },
          { protocol: 'TCP', port: 'metrics' },
        ],
      },
    ],
    egress: [{ to: [{ namespaceSelector: {} }], ports: [{ protocol: 'UDP', port: 53 }] }],
  };
}
