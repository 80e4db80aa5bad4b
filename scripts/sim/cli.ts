// The simulated cluster from a shell.
//
//   node scripts/sim/cli.ts up [--nodes 3] [--backend vxlan|host-gw] [--pods 2] [--prefix ssim]
//       builds the cluster, starts the agents and pods, prints where everything is, and keeps it up
//       until Ctrl-C (or SIGTERM), then tears it all down.
//   node scripts/sim/cli.ts down [--all]
//       cleans up after simulators that died without tearing down (state files in /run/strand-sim);
//       --all also those whose process still runs.
//   node scripts/sim/cli.ts list
//       the simulators with state files.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  cleanupLeftovers,
  installSignalCleanup,
  OUTSIDE_IP,
  SimCluster,
  STATE_DIR,
  type SimBackend,
} from '../../test/kit/sim/cluster.ts';

const USAGE = `usage:
  node scripts/sim/cli.ts up [--nodes 3] [--backend vxlan|host-gw] [--pods 2] [--prefix ssim] [--log-level info]
  node scripts/sim/cli.ts down [--all]
  node scripts/sim/cli.ts list`;

async function up(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      nodes: { type: 'string', default: '3' },
      backend: { type: 'string', default: 'vxlan' },
      pods: { type: 'string', default: '2' },
      prefix: { type: 'string', default: 'ssim' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  if (values.backend !== 'vxlan' && values.backend !== 'host-gw') throw new Error('--backend: vxlan or host-gw');
  installSignalCleanup();
  const cluster = await SimCluster.create({
    prefix: values.prefix,
    nodes: Number(values.nodes),
    backend: values.backend as SimBackend,
    logLevel: values['log-level'],
    log: (m) => console.log(m),
  });
  try {
    await cluster.waitReady(60_000);
    for (const n of cluster.nodes) for (let k = 0; k < Number(values.pods); k++) await cluster.addPod(n);
    for (const p of cluster.pods) await cluster.serve(p.netns);
    await cluster.serve(cluster.outsideNetns);
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
  console.log(`\nUp (${values.backend}). Files under ${cluster.root}.`);
  for (const n of cluster.nodes) {
    console.log(
      `  ${n.name}  netns ${n.netns}  eth0 ${n.underlayIp}  pods ${n.podCidr}  agent pid ${n.agentPid}  log ${n.agentLog}`,
    );
  }
  for (const p of cluster.pods) console.log(`  ${p.name}  netns ${p.netns}  ${p.ip} on ${p.node.name}`);
  console.log(`  outside  netns ${cluster.outsideNetns}  ${OUTSIDE_IP}`);
  console.log(`Every pod and the outside run a test server on :8080 (answers the caller's address). Try:`);
  const [a, b] = [cluster.pods[0], cluster.pods[cluster.pods.length - 1]];
  if (a && b)
    console.log(`  ip netns exec ${a.netns} ping -c1 ${b.ip}\n  ip netns exec ${a.netns} nc ${b.ip} 8080 </dev/null`);
  console.log('Ctrl-C tears everything down.');
  await new Promise(() => {});
  return 0;
}

function list(): number {
  if (!existsSync(STATE_DIR)) return 0;
  for (const f of readdirSync(STATE_DIR).filter((x) => x.endsWith('.json'))) {
    const s = JSON.parse(readFileSync(join(STATE_DIR, f), 'utf8')) as {
      base: string;
      pid: number;
      root: string;
      namespaces: string[];
    };
    console.log(`${s.base}  pid ${s.pid}  ${s.namespaces.length} namespaces  ${s.root}`);
  }
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up':
      return up(rest);
    case 'down': {
      const all = rest.includes('--all');
      const cleaned = cleanupLeftovers({ all });
      console.log(cleaned.length ? `cleaned up: ${cleaned.join(' ')}` : 'nothing to clean up');
      return 0;
    }
    case 'list':
      return list();
    default:
      console.error(USAGE);
      return command === undefined || command === '--help' || command === '-h' ? 0 : 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`sim: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
