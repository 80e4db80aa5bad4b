// The compiler: the caches (namespaces, pods, policies) and this node's name and addresses to this
// node's desired policy for its local pods (types.ts, CompiledPolicy). Pure and deterministic. The
// cluster view is built once (cluster.ts), each tier of the pipeline compiles its own policies
// against it (pipeline.ts), and the peers their rules name are resolved once for all of them.
import { clusterView } from './cluster.ts';
import { PeerRegistry } from './peers.ts';
import { TIERS } from './pipeline.ts';
import type { CompiledPolicy, CompileInput, LocalPod, PolicyError } from './types.ts';

export function compilePolicy(input: CompileInput): CompiledPolicy {
  const view = clusterView(input);
  const registry = new PeerRegistry();
  const errors: PolicyError[] = [];
  const results = TIERS.map((tier) => {
    const result = tier.compile(input, view, registry);
    errors.push(...result.errors);
    return { tier, result };
  });
  const pods: LocalPod[] = view.localPods.map(({ pod, ips }) => {
    const local: LocalPod = { namespace: pod.namespace, name: pod.name, ips };
    for (const { tier, result } of results) {
      const directions = result.pods.get(pod);
      if (directions) tier.attach(local, directions);
    }
    return local;
  });
  const { peers, namedPorts } = registry.resolve(view);
  const { nodeName } = input;
  return { nodeName, nodeAddresses: view.nodeAddresses, pods, peers, namedPorts, errors, warnings: view.warnings };
}
