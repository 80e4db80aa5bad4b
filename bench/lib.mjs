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

/**
 * The spec of ClusterNetworkPolicy number `i` of the benchmarks' large cluster: even numbers in the
 * Admin tier, odd in the Baseline tier, priority 10·⌊i/2⌋ (distinct within a tier). Every one selects
 * every pod (three spellings of "all"), the worst case for a connection's first packet: each pod's
 * chains hold every CNP's rules of its direction. 25 rules: 20 ingress (namespace and namespace+pod
 * peers of teams other than `skipTeam`, so the client of bench/policy.mjs is matched by none; all
 * ports, a TCP range around 8080, or TCP 8080 and UDP 53) and 5 egress (networks, namespaces, pods,
 * with port ranges); actions cycle Pass, Deny, Accept. BENCH_CNP_SUBJECTS=team instead: CNP i selects
 * the namespaces of team i mod 20 (the server of bench/policy.mjs, in a team-7 namespace, gets 5).
 */
export function benchCnpSpec(i, skipTeam = 8, subjectsOf = process.env.BENCH_CNP_SUBJECTS ?? 'all') {
  const team = (k) => `team-${k % 20 === skipTeam ? (k + 1) % 20 : k % 20}`;
  const subjects = [
    { namespaces: {} },
    { namespaces: { matchExpressions: [{ key: 'team', operator: 'Exists' }] } },
    {
      pods: {
        namespaceSelector: {},
        podSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'back'] }] },
      },
    },
  ];
  const actions = ['Pass', 'Deny', 'Accept'];
  const ports = (j) =>
    j % 3 === 0
      ? {}
      : j % 3 === 1
        ? { protocols: [{ tcp: { destinationPort: { range: { start: 8000 + j, end: 8100 + j } } } }] }
        : { protocols: [{ tcp: { destinationPort: { number: 8080 } } }, { udp: { destinationPort: { number: 53 } } }] };
  const ingress = Array.from({ length: 20 }, (_, j) => ({
    name: `in-${j}`,
    action: actions[(i + j) % 3],
    from: [
      j % 2 === 0
        ? { namespaces: { matchLabels: { team: team(i + j) } } }
        : {
            pods: {
              namespaceSelector: { matchLabels: { team: team(i + j) } },
              podSelector: { matchLabels: { app: `app-${(i * 25 + j) % 250}` } },
            },
          },
    ],
    ...ports(j),
  }));
  const egress = Array.from({ length: 5 }, (_, j) => ({
    name: `out-${j}`,
    action: actions[(i + j) % 3],
    to: [
      j % 3 === 0
        ? { networks: [`203.0.113.${(j * 16) % 256}/28`, `10.${100 + ((i + j) % 100)}.0.0/16`] }
        : j % 3 === 1
          ? { namespaces: { matchLabels: { team: team(i + j + 3) } } }
          : {
              pods: {
                namespaceSelector: { matchLabels: { team: team(i + j + 5) } },
                podSelector: { matchLabels: { tier: 'front' } },
              },
            },
    ],
    protocols: [{ tcp: { destinationPort: { range: { start: 1000 * (j + 1), end: 1000 * (j + 1) + 500 } } } }],
  }));
  // BENCH_CNP_SUBJECTS=team: each CNP selects the namespaces of one team (a twentieth of the cluster).
  const subject = subjectsOf === 'team' ? { namespaces: { matchLabels: { team: `team-${i % 20}` } } } : subjects[i % 3];
  return {
    tier: i % 2 === 0 ? 'Admin' : 'Baseline',
    priority: 10 * Math.floor(i / 2),
    subject,
    ingress,
    egress,
  };
}
