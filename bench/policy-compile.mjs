#!/usr/bin/env node
// The NetworkPolicy compiler at scale, in process (no kernel): the cluster of the agent start-up bench
// (100 nodes, 5,000 pods, 200 namespaces, 1,000 NetworkPolicies with pod, namespace and ipBlock peers
// and a named port: bench/lib.mjs benchPolicySpec), compiled for one node (its 50 pods) and for a node that holds every pod (the
// worst case for one node's rules).
//   - compile, render and diff CPU times (median of BENCH_RUNS, default 7), cold (every policy parsed)
//     and warm (the informer's unchanged objects, whose parse is memoised);
//   - the transaction for one policy change and for one pod label change (a remote peer's), in
//     operations and script bytes, against the full build's;
//   - baseline in the same run: the same cluster compiled with no policies.
// Target: one policy change compiled, rendered and diffed well under 100 ms.
import { benchPolicySpec, fmt, printTable, stats } from './lib.mjs';
import { compilePolicy, diffPolicy, fullBuildPolicy, renderPolicy } from '../src/policy/index.ts';
import { emptyTableState } from '../src/nft/objects.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const SIZES = { nodes: 100, pods: 5000, namespaces: 200, policies: 1000 };

function cluster() {
  const namespaces = [];
  for (let n = 0; n < SIZES.namespaces; n++)
    namespaces.push({
      metadata: { name: `ns-${n}`, labels: { 'kubernetes.io/metadata.name': `ns-${n}`, team: `team-${n % 20}` } },
    });
  const pods = [];
  for (let p = 0; p < SIZES.pods; p++) {
    const n = p % SIZES.nodes;
    const app = `app-${p % 250}`;
    pods.push({
      metadata: {
        name: `${app}-${p.toString(36)}`,
        namespace: `ns-${p % SIZES.namespaces}`,
        labels: { app, tier: p % 3 === 0 ? 'front' : 'back', 'pod-template-hash': `h${p % 97}` },
      },
      spec: {
        nodeName: `node-${n}`,
        containers: [
          {
            name: 'main',
            ports: [
              { name: 'http', containerPort: 8080, protocol: 'TCP' },
              { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
            ],
          },
        ],
      },
      status: { phase: 'Running', podIPs: [{ ip: `10.244.${n}.${Math.floor(p / SIZES.nodes) + 2}` }] },
    });
  }
  const policies = [];
  for (let i = 0; i < SIZES.policies; i++) policies.push(policyObject(i, 8080));
  return { namespaces, pods, policies };
}

function policyObject(i, port) {
  return { metadata: { name: `policy-${i}`, namespace: `ns-${i % SIZES.namespaces}` }, spec: benchPolicySpec(i, port) };
}

const clone = (x) => structuredClone(x);
// CPU time of this process (user + system), not wall time: the figures then hold on a shared machine.
const ms = (f) => {
  const t = process.cpuUsage();
  const v = f();
  const d = process.cpuUsage(t);
  return [(d.user + d.system) / 1e3, v];
};

function measure(label, c, nodeName, allLocal = false) {
  const input = (cc) => ({
    nodeName,
    nodeAddresses: ['198.18.1.1'],
    namespaces: cc.namespaces,
    pods: allLocal ? cc.pods.map((p) => ({ ...p, spec: { ...p.spec, nodeName } })) : cc.pods,
    policies: cc.policies,
  });
  const cold = [];
  const warm = [];
  const render = [];
  const change = [];
  let model;
  let table;
  for (let r = 0; r < RUNS; r++) {
    const fresh = { ...c, policies: c.policies.map(clone) };
    const inp = input(fresh);
    const [t1, m] = ms(() => compilePolicy(inp));
    cold.push(t1);
    const [t2] = ms(() => compilePolicy(inp));
    warm.push(t2);
    const [t3, d] = ms(() => renderPolicy(m));
    render.push(t3);
    model = m;
    table = d;
  }
  // One policy change: a policy that selects this node's pods gets another port.
  const selected = new Set(
    model.pods.flatMap((p) => [...(p.ingress?.isolatedBy ?? [])].map((x) => `${x.namespace}/${x.name}`)),
  );
  const idx = c.policies.findIndex((p) => selected.has(`${p.metadata.namespace}/${p.metadata.name}`));
  const changedPolicies = [...c.policies];
  changedPolicies[idx] = policyObject(idx, 8081);
  let policyTx;
  for (let r = 0; r < RUNS; r++) {
    const [t, tx] = ms(() =>
      diffPolicy(table, renderPolicy(compilePolicy(input({ ...c, policies: changedPolicies })))),
    );
    change.push(t);
    policyTx = tx;
  }
  // One pod label change: a pod on another node, in a namespace of the team a policy selecting this
  // node's pods names, gets app=a and so joins that policy's second peer (team-N namespaces, app In [a, b]).
  const team = c.policies[idx].spec.ingress[0].from[1].namespaceSelector.matchLabels.team;
  const teamNs = new Set(c.namespaces.filter((n) => n.metadata.labels.team === team).map((n) => n.metadata.name));
  const pi = c.pods.findIndex((p) => p.spec.nodeName !== nodeName && teamNs.has(p.metadata.namespace));
  const pods = [...c.pods];
  pods[pi] = { ...pods[pi], metadata: { ...pods[pi].metadata, labels: { ...pods[pi].metadata.labels, app: 'a' } } };
  const labelTx = diffPolicy(table, renderPolicy(compilePolicy(input({ ...c, pods }))));
  const full = fullBuildPolicy(table, emptyTableState());
  const size = (tx) => `${tx.operations.length} ops, ${tx.render().length} B`;
  return {
    row: {
      node: label,
      'local pods': model.pods.length,
      'isolated pods': model.pods.filter((p) => p.ingress || p.egress).length,
      'compile cold ms': fmt(stats(cold).median),
      'compile warm ms': fmt(stats(warm).median),
      'render ms': fmt(stats(render).median),
      'policy change ms': fmt(stats(change).median),
      'full build': size(full),
      'policy change tx': size(policyTx),
      'label change tx': size(labelTx),
    },
    coldMedian: stats(cold).median,
  };
}

const t = Date.now();
const c = cluster();
console.log(
  `cluster: ${SIZES.nodes} nodes, ${SIZES.pods} pods, ${SIZES.namespaces} namespaces, ${SIZES.policies} NetworkPolicies (built in ${Date.now() - t} ms), ${RUNS} runs`,
);
const base = { ...c, policies: [] };
const baseline = [];
for (let r = 0; r < RUNS; r++)
  baseline.push(
    ms(() =>
      compilePolicy({
        nodeName: 'node-0',
        nodeAddresses: [],
        namespaces: base.namespaces,
        pods: base.pods,
        policies: [],
      }),
    )[0],
  );
const one = measure('node-0 (its own pods)', c, 'node-0');
const all = measure('every pod local', c, 'node-0', true);
printTable('NetworkPolicy compiler', [one.row, all.row]);
const b = stats(baseline).median;
console.log(
  `\nbaseline (no policies, same cluster): compile ${fmt(b)} ms; with 1,000 policies ${fmt(one.coldMedian / b)}x (one node), ${fmt(all.coldMedian / b)}x (every pod local)`,
);
