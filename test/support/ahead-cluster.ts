// A small cluster as the policy enforcer's informer caches hold it (5 nodes, 300 pods, 10 namespaces,
// 30 NetworkPolicies with pod, namespace and named-port peers), and pods scheduled to a node before
// their ADD (no address yet): the pod-start bind's tests (computed ahead or at the notice), against
// the nft fake and against the kernel.
import type { NamespaceInfo, NetworkPolicyInfo, PodInfo } from '../../src/k8s/objects.ts';
import { policyCaches, Store } from './cache-store.ts';
import type { PodStartNotices } from '../../src/agent/pod-notices.ts';
import type { PodStartRequest } from '../../src/agent/policy/gate.ts';

const NS = 10;

/** Pod i (namespace ns<i mod 10>) on `node` with `ips` (none: scheduled, waiting for its ADD). */
export function aheadPod(i: number, node: string, ips: string[], app = `a${i % 7}`): PodInfo {
  return {
    metadata: {
      name: `p${i}`,
      namespace: `ns${i % NS}`,
      uid: `u${i}`,
      labels: { app, tier: i % 3 ? 'back' : 'front' },
    },
    spec: { nodeName: node, containers: [{ ports: [{ name: 'metrics', containerPort: 9090, protocol: 'TCP' }] }] },
    status: { phase: ips.length ? 'Running' : 'Pending', podIPs: ips.map((ip) => ({ ip })) },
  } as unknown as PodInfo;
}

export function aheadCluster() {
  const cache = policyCaches();
  for (let n = 0; n < NS; n++)
    cache.namespaces.put({ metadata: { name: `ns${n}`, labels: { team: `t${n % 3}` } } } as unknown as NamespaceInfo);
  for (let i = 0; i < 300; i++) cache.pods.put(aheadPod(i, `n${i % 5}`, [`10.1.${i >> 8}.${i & 255}`]));
  for (let i = 0; i < 30; i++) {
    cache.networkPolicies.put({
      metadata: { name: `np${i}`, namespace: `ns${i % NS}` },
      spec: {
        podSelector: { matchLabels: { app: `a${i % 7}` } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          {
            from: [
              { podSelector: { matchLabels: { tier: 'front' } } },
              { namespaceSelector: { matchLabels: { team: `t${i % 3}` } } },
            ],
            ports: [{ protocol: 'TCP', port: 'metrics' }],
          },
        ],
        egress: [
          {
            to: [{ podSelector: { matchLabels: { app: `a${(i + 1) % 7}` } } }],
            ports: [{ protocol: 'UDP', port: 53 }],
          },
        ],
      },
    } as unknown as NetworkPolicyInfo);
  }
  return cache;
}

/** The enforcer's pod-start binds by path (strand_policy_pod_start_binds_total). */
export async function bindsByPath(enforcer: {
  metrics: { podStartBinds: { get(): Promise<{ values: { labels: { path?: string | number }; value: number }[] }> } };
}): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await enforcer.metrics.podStartBinds.get()).values) out[String(v.labels.path)] = v.value;
  return out;
}

/** Waits (up to 10 s) until the enforcer has the bind of `pod` computed ahead. */
export async function aheadOf(enforcer: { aheadPods: string[] }, pod: PodInfo): Promise<void> {
  const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
  for (let waited = 0; !enforcer.aheadPods.includes(key); waited += 10) {
    if (waited > 10_000) throw new Error(`no bind computed ahead for ${key} within 10 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Enforcing {
  request(seenAt?: number): void;
  settle(): Promise<void>;
  gate: { podStarted(n: PodStartRequest, timeoutMs: number): Promise<{ ok: boolean }> };
}

/** Puts `pods` in the cache (scheduled, before their ADD) and waits for the enforcer's pass. */
export async function schedule(cache: { pods: Store<PodInfo> }, enforcer: Enforcing, pods: PodInfo[]): Promise<void> {
  for (const p of pods) cache.pods.put(p);
  enforcer.request(Date.now());
  await enforcer.settle();
}

/** The plugin's pod-start notice of `pod` with `ips`: recorded, answered by the gate (ok or not), and
 * the run it asked for settled. */
export async function start(
  enforcer: Enforcing,
  notices: PodStartNotices,
  pod: PodInfo,
  ips: string[],
): Promise<boolean> {
  const n = { namespace: pod.metadata.namespace, name: pod.metadata.name, uid: pod.metadata.uid, ips };
  notices.record(n);
  const { ok } = await enforcer.gate.podStarted(n, 10_000);
  await enforcer.settle();
  return ok;
}
