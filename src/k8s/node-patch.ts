// Strand's writes to its Node: the strand.dev/ annotations (a JSON merge patch) and the
// NetworkUnavailable condition.
//
// The Node's NetworkUnavailable condition. Cloud route controllers and some installers set it True
// at registration; the scheduler keeps pods off a node while it is True (the
// node.kubernetes.io/network-unavailable taint follows it). Like flannel and Calico, Strand sets it
// False once the node's pod network is set up, with a reason of its own. It is a strategic merge
// patch of nodes/<name>/status: conditions merge by type, so the other conditions stay as they are.
import type { KubeClient } from './client.ts';
import type { NodeInfo } from './objects.ts';

export const NETWORK_UNAVAILABLE = 'NetworkUnavailable';
export const STRAND_REASON = 'StrandIsUp';
export const STRAND_MESSAGE = 'Strand is running on this node';
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';

/** True when the Node already says what Strand would set. */
export function networkMarkedAvailable(node: NodeInfo): boolean {
  const c = node.status.conditions.find((x) => x.type === NETWORK_UNAVAILABLE);
  return c?.status === 'False' && c.reason === STRAND_REASON;
}

/** The patch body (pure). */
export function networkAvailablePatch(now: Date): Record<string, unknown> {
  const time = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    status: {
      conditions: [
        {
          type: NETWORK_UNAVAILABLE,
          status: 'False',
          reason: STRAND_REASON,
          message: STRAND_MESSAGE,
          lastTransitionTime: time,
          lastHeartbeatTime: time,
        },
      ],
    },
  };
}

/** Sets NetworkUnavailable=False (reason StrandIsUp) on the Node. */
export async function markNetworkAvailable(kube: KubeClient, nodeName: string, now = new Date()): Promise<void> {
  await kube.request('PATCH', `/api/v1/nodes/${encodeURIComponent(nodeName)}/status`, {
    body: networkAvailablePatch(now),
    contentType: STRATEGIC_MERGE_PATCH,
    timeoutMs: 30_000,
  });
}

/** Sets (merges) these annotations on the Node; the others stay as they are. */
export async function patchNodeAnnotations(
  kube: KubeClient,
  nodeName: string,
  annotations: Record<string, string>,
): Promise<void> {
  await kube.request('PATCH', `/api/v1/nodes/${encodeURIComponent(nodeName)}`, {
    body: { metadata: { annotations } },
    contentType: 'application/merge-patch+json',
    timeoutMs: 30_000,
  });
}
