// The simulated cluster (test/kit/sim/) for the e2e tests, with the test prefix ("stt", so the global
// sweep removes what a killed run leaves) and the checks the tests share.
import { TEST_PREFIX } from './names.ts';
import { SimCluster, type SimBackend, type SimOptions, type SimPod, waitFor } from '../kit/sim/cluster.ts';
import { mapLimit, ping, tcpWhoami } from '../kit/sim/probes.ts';
import { run } from '../kit/sim/exec.ts';

export * from '../kit/sim/cluster.ts';
export * from '../kit/sim/probes.ts';
export { ipJson, bridgeJson, run, sh, trySh } from '../kit/sim/exec.ts';

/** A simulated cluster named with the test prefix. */
export function createTestCluster(opts: Omit<SimOptions, 'prefix'>): Promise<SimCluster> {
  return SimCluster.create({ prefix: TEST_PREFIX, ...opts });
}

/** Node annotations the agent publishes with a backend (src/datapath/types.ts ANNOTATIONS). */
/** A cluster of `nodes` with two pods each, every pod (and the outside) serving the probes, the
 * backend published and, unless it failed to (kept for the first test to report), converged. */
export async function startMeshCluster(
  opts: Omit<SimOptions, 'prefix'> & { backend: SimBackend },
): Promise<{ cluster: SimCluster; pods: SimPod[]; convergence: Error | undefined }> {
  const cluster = await createTestCluster(opts);
  await cluster.waitReady();
  const pods = await Promise.all(cluster.nodes.flatMap((n) => [cluster.addPod(n), cluster.addPod(n)]));
  await Promise.all([...pods.map((p) => cluster.serve(p.netns)), cluster.serve(cluster.outsideNetns)]);
  await waitForBackend(cluster, opts.backend);
  let convergence: Error | undefined;
  await cluster.waitRoutes().catch((err: Error) => (convergence = err));
  return { cluster, pods, convergence };
}

export const ANNOTATION_BACKEND = 'strand.dev/backend';
export const ANNOTATION_UNDERLAY_IP = 'strand.dev/underlay-ip';
export const ANNOTATION_VTEP_MAC = 'strand.dev/vtep-mac';

/**
 * Waits until every Node carries strand.dev/backend = backend (the agent runs that backend and has
 * published its annotations); throws naming what the Nodes have instead.
 */
export async function waitForBackend(cluster: SimCluster, backend: SimBackend, timeoutMs = 15_000): Promise<void> {
  try {
    await waitFor(
      async () => {
        for (const n of cluster.nodes) if ((await n.annotations())[ANNOTATION_BACKEND] !== backend) return false;
        return true;
      },
      timeoutMs,
      'the backend annotation',
      100,
    );
  } catch {
    const seen = await Promise.all(
      cluster.nodes.map(async (n) => `${n.name}: ${JSON.stringify(await n.annotations())}`),
    );
    throw new Error(
      `no ${ANNOTATION_BACKEND}=${backend} on every Node within ${timeoutMs} ms (${seen.join('; ')})\n${describeNode(cluster, 'node-1')}`,
    );
  }
}

/** Waits until every node's agent has its egress masquerade chain (inet strand agent-postrouting); throws if not. */
export async function waitForMasquerade(cluster: SimCluster, timeoutMs = 10_000): Promise<void> {
  const has = async (netns: string) =>
    (await run('ip', ['netns', 'exec', netns, 'nft', 'list', 'chain', 'inet', 'strand', 'agent-postrouting'])).code ===
    0;
  await waitFor(
    async () => (await Promise.all(cluster.nodes.map((n) => has(n.netns)))).every(Boolean),
    timeoutMs,
    'the chain agent-postrouting in table inet strand on every node',
    100,
  );
}

export interface PairResult {
  from: SimPod;
  to: SimPod;
  ping: boolean;
  /** The source address the receiving pod saw over TCP (undefined: no connection). */
  seenAs: string | undefined;
}

/** ICMP and TCP from every pod to every other (both ways, as every ordered pair is probed). */
export function probeMesh(pods: readonly SimPod[], concurrency = 6): Promise<PairResult[]> {
  const pairs = pods.flatMap((from) => pods.filter((to) => to !== from).map((to) => ({ from, to })));
  return mapLimit(pairs, concurrency, async ({ from, to }) => {
    const [p, seenAs] = await Promise.all([
      ping(from.netns, to.ip, { count: 1, waitS: 2 }),
      tcpWhoami(from.netns, to.ip),
    ]);
    return { from, to, ping: p.ok, seenAs };
  });
}

/** The pairs that failed, as "pod-1-1 (10.244.1.2) → pod-2-3 (10.244.2.2): ping failed, TCP seen as …". */
export function meshFailures(results: readonly PairResult[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    const problems: string[] = [];
    if (!r.ping) problems.push('ping failed');
    if (r.seenAs === undefined) problems.push('TCP failed');
    else if (r.seenAs !== r.from.ip) problems.push(`TCP arrived from ${r.seenAs}, not the pod's own address`);
    if (problems.length > 0)
      out.push(
        `${r.from.name} (${r.from.ip}, ${r.from.node.name}) → ${r.to.name} (${r.to.ip}, ${r.to.node.name}): ${problems.join(', ')}`,
      );
  }
  return out;
}

/** A node's agent log and datapath, for failure messages. */
export function describeNode(cluster: SimCluster, name: string): string {
  const n = cluster.node(name);
  const routes = n
    .routes()
    .map(
      (r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${r.dev}${r.protocol ? ` proto ${r.protocol}` : ''}`,
    );
  const neigh = n.neighbours(cluster.vxlanDevice).map((e) => `${e.dst} ${e.lladdr ?? ''} ${(e.state ?? []).join(',')}`);
  const fdb = n.fdb().map((f) => `${f.mac} dst ${f.dst ?? '-'}`);
  return [`--- ${n.name} routes:`, ...routes, 'neigh:', ...neigh, 'fdb:', ...fdb, 'agent log:', n.logTail(15)].join(
    '\n',
  );
}
