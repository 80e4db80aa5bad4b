#!/usr/bin/env node
// The demo: Strand on a simulated two-node cluster, with no real Kubernetes (test/kit/sim/). Each node
// is a network namespace running `strand agent` against a small in-process API server; pods are
// wired by running dist/cni/strand exactly as a container runtime does. It prints the nodes, the pods,
// who reaches whom (ICMP and TCP, every pod to every pod), then under a NetworkPolicy, an Admin
// ClusterNetworkPolicy Deny that a NetworkPolicy cannot reopen and a Baseline default deny that one
// can, what the outside sees of a pod's traffic, and removes everything. Exit status 0 only if everything connected.
//
//   node scripts/demo.mjs [--backend vxlan|host-gw] [--nodes 2] [--pods 2]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { installSignalCleanup, OUTSIDE_IP, SimCluster } from '../test/kit/sim/cluster.ts';
import { mapLimit, ping, tcpWhoami } from '../test/kit/sim/probes.ts';

const { values: opts } = parseArgs({
  options: {
    backend: { type: 'string', default: 'vxlan' },
    nodes: { type: 'string', default: '2' },
    pods: { type: 'string', default: '2' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  console.log('usage: npm run demo -- [--backend vxlan|host-gw] [--nodes N] [--pods N-per-node]');
  process.exit(0);
}
if (!['vxlan', 'host-gw'].includes(opts.backend)) {
  console.error(`demo: --backend must be vxlan or host-gw, not ${opts.backend}`);
  process.exit(2);
}
const nodeCount = Number(opts.nodes);
const podsPerNode = Number(opts.pods);
const POD_KINDS = ['web', 'cache', 'db', 'queue', 'api', 'auth'];

const ms = (t0) => `${Math.round(performance.now() - t0)} ms`;
const pad = (s, n) => String(s).padEnd(n);
const color = process.stdout.isTTY ? (code, s) => `\x1b[${code}m${s}\x1b[0m` : (_code, s) => s;
const good = (s) => color(32, s);
const bad = (s) => color(31, s);
const dim = (s) => color(2, s);
const head = (s) => console.log(`\n${color(1, s)}`);

installSignalCleanup();
const started = performance.now();
console.log(`Strand demo: a simulated ${nodeCount}-node cluster, ${opts.backend} backend, no real Kubernetes.`);
console.log(
  dim(
    "Nodes are network namespaces on one underlay bridge; each runs `strand agent` against a test API server, as deploy/strand.yaml's ServiceAccount under its RBAC.",
  ),
);

let cluster;
let allGood = true;
try {
  let t0 = performance.now();
  cluster = await SimCluster.create({ prefix: 'sdemo', nodes: nodeCount, backend: opts.backend });
  console.log(
    dim(
      `namespaces ${cluster.switchNetns} (switch), ${cluster.outsideNetns} (outside), ${cluster.nodes.map((n) => n.netns).join(', ')}; API server ${cluster.api.url}`,
    ),
  );
  await cluster.waitReady(60_000);
  console.log(`${nodeCount} agents ready (/readyz) in ${ms(t0)}`);

  // Pods: CNI ADD on each node, as a runtime does, then the Pod objects.
  t0 = performance.now();
  const pods = [];
  for (const node of cluster.nodes) {
    for (let k = 0; k < podsPerNode; k++) {
      const p0 = performance.now();
      const role = POD_KINDS[k % POD_KINDS.length];
      const pod = await cluster.addPod(node, {
        name: `${role}-${node.index}`,
        labels: { app: `${role}-${node.index}`, role },
      });
      pod.role = role;
      pod.addMs = Math.round(performance.now() - p0);
      pods.push(pod);
    }
  }
  await Promise.all([...pods.map((p) => cluster.serve(p.netns)), cluster.serve(cluster.outsideNetns)]);
  const converged = await cluster.waitRoutes(20_000).then(
    () => true,
    (err) => {
      console.log(bad(`routes between the nodes did not appear: ${err.message.split('\n')[0]}`));
      return false;
    },
  );
  allGood &&= converged;

  head('Nodes');
  for (const n of cluster.nodes) {
    const a = await n.annotations();
    const state = JSON.parse(readFileSync(`${n.stateDir}/node.json`, 'utf8'));
    let datapath = '';
    if (opts.backend === 'vxlan') {
      const dev = n.link(cluster.vxlanDevice);
      datapath = dev
        ? `VTEP ${cluster.vxlanDevice} ${dev.address} (annotation ${a['strand.dev/vtep-mac'] ?? 'missing'})`
        : bad(`no ${cluster.vxlanDevice}`);
    } else {
      datapath = 'routes via peers’ underlay addresses';
    }
    console.log(
      `  ${pad(n.name, 8)} underlay ${pad(n.underlayIp, 12)} pod CIDR ${pad(n.podCidr, 14)} pod MTU ${state.mtu}  ${datapath}`,
    );
  }

  head('Routes to other nodes (what each agent programmed)');
  for (const n of cluster.nodes) {
    const others = new Set(cluster.nodes.filter((m) => m !== n).map((m) => m.podCidr));
    const routes = n.routes().filter((r) => others.has(r.dst));
    const text = routes.map(
      (r) => `${r.dst} via ${r.gateway} dev ${r.dev}${(r.flags ?? []).includes('onlink') ? ' onlink' : ''}`,
    );
    if (opts.backend === 'vxlan') {
      for (const f of n.fdb()) text.push(`fdb ${f.mac} dst ${f.dst}`);
    }
    console.log(`  ${pad(n.name, 8)} ${text.length ? text.join('; ') : bad('none')}`);
  }

  head('Pods (CNI ADD by dist/cni/strand, run as a runtime runs it)');
  for (const p of pods)
    console.log(`  ${pad(p.name, 8)} on ${pad(p.node.name, 7)} ${pad(p.ip, 12)} ${dim(`ADD ${p.addMs} ms`)}`);

  // Every pod to every pod: ping, and a TCP connection whose server reports the source it saw.
  head('Who reaches whom (ping / TCP; TCP must arrive from the sender’s own pod address)');
  t0 = performance.now();
  const pairs = pods.flatMap((from) => pods.filter((to) => to !== from).map((to) => ({ from, to })));
  const results = await mapLimit(pairs, 6, async ({ from, to }) => {
    const [p, seen] = await Promise.all([
      ping(from.netns, to.ip, { count: 1, waitS: 2 }),
      tcpWhoami(from.netns, to.ip),
    ]);
    return { from, to, ping: p.ok, seen };
  });
  // Cells are padded before they are coloured: colour codes take no room on screen.
  const cell = (r, width) => {
    if (!r) return dim(pad('·', width));
    const text = `${r.ping ? 'ok' : 'NO'}/${r.seen === undefined ? 'NO' : r.seen === r.from.ip ? 'ok' : `NAT:${r.seen}`}`;
    return text === 'ok/ok' ? good(pad(text, width)) : bad(pad(text, width));
  };
  const width = Math.max(10, ...pods.map((p) => p.name.length + 2));
  console.log(`  ${pad('from \\ to', width)}${pods.map((p) => pad(p.name, width)).join('')}`);
  for (const from of pods) {
    const cells = pods.map((to) =>
      cell(
        results.find((x) => x.from === from && x.to === to),
        width,
      ),
    );
    console.log(`  ${pad(from.name, width)}${cells.join('')}`);
  }
  const failed = results.filter((r) => !r.ping || r.seen !== r.from.ip);
  const crossNode = results.filter((r) => r.from.node !== r.to.node).length;
  if (failed.length === 0)
    console.log(
      good(`  all ${results.length} pairs (${crossNode} across nodes) connected both ways, source addresses kept`) +
        dim(` (${ms(t0)})`),
    );
  else console.log(bad(`  ${failed.length} of ${results.length} pairs failed`));
  allGood &&= failed.length === 0;

  // Policy steps: objects applied through the API, then every pod to every pod over TCP (a denied
  // connection is dropped: the probe times out), printed as a table, then the objects deleted.
  const probeAll = () =>
    mapLimit(pairs, 6, async ({ from, to }) => ({ from, to, seen: await tcpWhoami(from.netns, to.ip, undefined, 1) }));
  async function policyStep(title, objects, expected, summary) {
    head(title);
    const t0 = performance.now();
    for (const [resource, obj] of objects) await cluster.api.create(resource, obj);
    let results = await probeAll();
    for (let tries = 0; tries < 10 && results.some((r) => (r.seen !== undefined) !== expected(r.from, r.to)); tries++)
      results = await probeAll();
    const pcell = (r) => {
      if (!r) return dim(pad('·', width));
      const ok = r.seen !== undefined;
      const text = ok ? 'allowed' : 'denied';
      return ok === expected(r.from, r.to)
        ? ok
          ? good(pad(text, width))
          : dim(pad(text, width))
        : bad(pad(`${text}!`, width));
    };
    console.log(`  ${pad('from \\ to', width)}${pods.map((p) => pad(p.name, width)).join('')}`);
    for (const from of pods)
      console.log(
        `  ${pad(from.name, width)}${pods.map((to) => pcell(results.find((x) => x.from === from && x.to === to))).join('')}`,
      );
    const wrong = results.filter((r) => (r.seen !== undefined) !== expected(r.from, r.to));
    const allowedPairs = results.filter((r) => r.seen !== undefined).length;
    if (wrong.length === 0)
      console.log(
        good(`  enforced: ${allowedPairs} pair(s) allowed (${summary}), ${results.length - allowedPairs} denied`) +
          dim(` (${ms(t0)}, rules in each node's table inet strand, chains agent-pol-*)`),
      );
    else console.log(bad(`  ${wrong.length} pair(s) not as the policies say (marked !)`));
    allGood &&= wrong.length === 0;
    for (const [resource, obj] of objects)
      await cluster.api.delete(resource, obj.metadata.name, obj.metadata.namespace);
  }
  const policy = (name, spec) => [
    'networkpolicies',
    { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: 'default' }, spec },
  ];
  const clusterPolicy = (name, spec) => [
    'clusternetworkpolicies',
    { apiVersion: 'policy.networking.k8s.io/v1alpha2', kind: 'ClusterNetworkPolicy', metadata: { name }, spec },
  ];
  const role = (r) => ({ matchLabels: { role: r } });
  const webFromCache = policy('web-from-cache', {
    podSelector: role('web'),
    ingress: [{ from: [{ podSelector: role('cache') }], ports: [{ protocol: 'TCP', port: 8080 }] }],
  });

  // NetworkPolicy: a default-deny in the pods' namespace, then one policy that lets "cache" pods reach
  // "web" pods on the test port (NetworkPolicy says nothing about ICMP: TCP only).
  await policyStep(
    'NetworkPolicy: default-deny ingress in namespace default, then allow role=cache → role=web on TCP 8080',
    [policy('default-deny', { podSelector: {}, policyTypes: ['Ingress'] }), webFromCache],
    (from, to) => to.role === 'web' && from.role === 'cache',
    'cache → web',
  );

  // ClusterNetworkPolicy (the CRD is installed in the simulated cluster, as the kind recipe does): an
  // Admin Deny decides before NetworkPolicy, so a NetworkPolicy allowing everything cannot reopen it.
  await policyStep(
    'ClusterNetworkPolicy Admin: Deny role=cache → role=web; a NetworkPolicy allowing all ingress to web cannot reopen it',
    [
      clusterPolicy('deny-cache-to-web', {
        tier: 'Admin',
        priority: 10,
        subject: { pods: { namespaceSelector: {}, podSelector: role('web') } },
        ingress: [
          {
            name: 'deny-cache',
            action: 'Deny',
            from: [{ pods: { namespaceSelector: {}, podSelector: role('cache') } }],
          },
        ],
      }),
      policy('web-from-all', { podSelector: role('web'), ingress: [{}] }),
    ],
    (from, to) => !(to.role === 'web' && from.role === 'cache'),
    'all but cache → web',
  );

  // A Baseline default deny is decided after NetworkPolicy: a NetworkPolicy that allows reopens it.
  await policyStep(
    'ClusterNetworkPolicy Baseline: default deny ingress to every pod; the NetworkPolicy allowing cache → web reopens that',
    [
      clusterPolicy('default-deny', {
        tier: 'Baseline',
        priority: 100,
        subject: { namespaces: {} },
        ingress: [{ name: 'deny-all', action: 'Deny', from: [{ namespaces: {} }] }],
      }),
      webFromCache,
    ],
    (from, to) => to.role === 'web' && from.role === 'cache',
    'cache → web',
  );

  head(`Egress: pods to the outside stand-in ${OUTSIDE_IP} (it routes back only to node addresses)`);
  for (const node of cluster.nodes) {
    const pod = pods.find((p) => p.node === node);
    const seen = await tcpWhoami(pod.netns, OUTSIDE_IP);
    const ok = seen === node.underlayIp;
    allGood &&= ok;
    const verdict = ok
      ? good(`leaves as ${seen} (${node.name}'s address: masqueraded)`)
      : bad(
          seen === undefined ? 'no connection (not masqueraded?)' : `arrived from ${seen}, expected ${node.underlayIp}`,
        );
    console.log(`  ${pad(pod.name, 8)} ${pad(pod.ip, 12)} → ${OUTSIDE_IP}: ${verdict}`);
  }
} catch (err) {
  allGood = false;
  console.error(bad(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}`));
} finally {
  if (cluster) {
    const t0 = performance.now();
    const counts = { pods: cluster.pods.length, nodes: cluster.nodes.length };
    await cluster.destroy();
    head('Teardown');
    console.log(
      `  CNI DEL of ${counts.pods} pods, ${counts.nodes} agents stopped, API server stopped, namespaces and files removed (${ms(t0)})`,
    );
  }
}
console.log(
  `\n${allGood ? good('Everything connected.') : bad('Something did not connect (see above).')} ${dim(`Total ${((performance.now() - started) / 1000).toFixed(1)} s.`)}`,
);
process.exit(allGood ? 0 : 1);
