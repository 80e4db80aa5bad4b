// The policy half of `strand explain`: the NetworkPolicy compiler's own model and evaluator
// (src/policy) on the agent's caches. Each direction is judged where Kubernetes says it is enforced
// (netpol-semantics R1): the source's egress by the model of the source's node, the destination's
// ingress by the model of the destination's node. The compiler is pure, so this agent can compile the
// model any node's agent compiles from the same caches.
import { nextTurn } from '../util/sliced.ts';
import { IncrementalCompiler } from '../policy/incremental/compiler.ts';
import {
  evaluatePolicy,
  type CompileInput,
  type CompiledPolicy,
  type DirectionVerdict,
  type RuleRef,
} from '../policy/index.ts';
import type { DirectionView, PolicyView, Protocol, RuleRefView } from './explain.ts';
import type { ClusterNetworkPolicyInfo, NamespaceInfo, NetworkPolicyInfo, NodeInfo, PodInfo } from '../k8s/objects.ts';
import { nodeAddresses } from './node-addresses.ts';

export interface PolicyCaches {
  nodes: readonly NodeInfo[];
  pods: readonly PodInfo[];
  namespaces: readonly NamespaceInfo[];
  policies: readonly NetworkPolicyInfo[];
  clusterNetworkPolicies?: readonly ClusterNetworkPolicyInfo[];
}

/** Slices of a compile for explain (the loop given back between them; a node's model at 50,000 pods is ~0.5 s). */
const COMPILE_SLICE_MS = 10;

/** compilePolicy(input), in slices: the agent's /healthz and pod starts go on while it compiles. */
function compiled(input: CompileInput): Promise<CompiledPolicy> {
  return new IncrementalCompiler().compileAsync(input, () => nextTurn(), COMPILE_SLICE_MS);
}

function modelFor(c: PolicyCaches, nodeName: string): Promise<CompiledPolicy> {
  return compiled({
    nodeName,
    nodeAddresses: nodeAddresses(c.nodes.find((n) => n.metadata.name === nodeName)),
    namespaces: c.namespaces,
    pods: c.pods,
    policies: c.policies,
    clusterNetworkPolicies: c.clusterNetworkPolicies ?? [],
    nodes: c.nodes,
  });
}

const ruleView = (r: RuleRef): RuleRefView => ({
  namespace: r.namespace,
  name: r.name,
  direction: r.direction,
  index: r.index,
  ...(r.ruleName !== undefined ? { ruleName: r.ruleName } : {}),
});

function view(d: DirectionVerdict, node: string | undefined): DirectionView {
  const v: DirectionView = {
    allowed: d.allowed,
    reason: d.reason,
    isolatedBy: d.isolatedBy.map((p) => ({ namespace: p.namespace, name: p.name })),
    rules: d.rules.map(ruleView),
  };
  if (node !== undefined) v.node = node;
  if (d.steps) {
    v.steps = d.steps.map((s) => ({
      tier: s.tier,
      action: s.action,
      ...(s.priority !== undefined ? { priority: s.priority } : {}),
      ...(s.rule ? { rule: ruleView(s.rule) } : {}),
    }));
  }
  return v;
}

const NOT_A_POD: DirectionView = { allowed: true, reason: 'not-a-pod', isolatedBy: [], rules: [] };

/**
 * The verdict of the policies on the first packet (`port` 0: no port given, so only rules open to
 * every port allow). `enforced`: whether this agent programs what it compiles. `own`: the input
 * this agent's enforcer compiles (with the pods it learnt of from the plugin), used for its own node
 * so that its verdicts are those of the rules in its kernel.
 */
export async function explainPolicy(
  c: PolicyCaches,
  packet: { src: string; dst: string; protocol: Protocol; port: number },
  srcNode: string | undefined,
  dstNode: string | undefined,
  enforced: boolean,
  own?: CompileInput,
): Promise<PolicyView> {
  const p = { src: packet.src, dst: packet.dst, protocol: packet.protocol, dport: packet.port };
  // Compiled when first asked for (a node's model, awaited at once: nothing left to reject unheard).
  const models = new Map<string, Promise<CompiledPolicy>>();
  const model = (n: string) => {
    let m = models.get(n);
    if (!m) models.set(n, (m = own?.nodeName === n ? compiled(own) : modelFor(c, n)));
    return m;
  };
  const egress = srcNode !== undefined ? view(evaluatePolicy(await model(srcNode), p).egress, srcNode) : NOT_A_POD;
  const ingress = dstNode !== undefined ? view(evaluatePolicy(await model(dstNode), p).ingress, dstNode) : NOT_A_POD;
  return { available: true, enforced, allowed: egress.allowed && ingress.allowed, egress, ingress };
}
