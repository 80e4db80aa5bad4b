// Adoption after an agent restart (part of the policy step): before the first apply of this agent,
// the addresses of local pods that only the previous agent's verdict maps still know.
import type { Logger } from '../../log.ts';
import type { TableState } from '../../nft/objects.ts';
import type { Nft } from '../../nft/transport.ts';
import { podChainName, verdictMapName } from '../../policy/index.ts';
import { describeError } from '../../k8s/client.ts';
import { type ClusterCache } from '../../k8s/cluster-cache.ts';
import { podKey, type PodStartNotices } from '../pod-notices.ts';

export interface AdoptionOptions {
  nodeName: string;
  cache: Pick<ClusterCache, 'pods'>;
  nft: Nft;
  notices: PodStartNotices;
  log: Logger;
}

/**
 * Before the first apply of this agent: the addresses of local pods the API shows without any yet
 * (kubelet reports them a moment after ADD) and no notice names (it went to the previous agent),
 * read back from the verdict maps the previous agent left (an isolated pod's address jumps to its
 * chain, named by the pod). Without them the adoption would drop those pods' rules until kubelet
 * reports their addresses: an agent restart must not open an isolated pod.
 */
export async function recoverAddresses(opts: AdoptionOptions): Promise<void> {
  const c = opts.cache;
  const waiting = c.pods
    .list()
    .filter(
      (p) =>
        p.spec.nodeName === opts.nodeName &&
        !p.spec.hostNetwork &&
        p.status.podIPs.length === 0 &&
        !opts.notices.has(podKey(p.metadata.namespace ?? '', p.metadata.name)),
    );
  if (waiting.length === 0) return;
  const maps = (['ingress', 'egress'] as const).flatMap((d) => [verdictMapName(d, 4), verdictMapName(d, 6)]);
  let listed: TableState;
  try {
    listed = await opts.nft.list({ sets: maps });
  } catch (err) {
    opts.log.warn(
      { err: describeError(err) },
      `could not read the policy verdict maps the previous agent left: ${describeError(err)}`,
    );
    return;
  }
  const byChain = new Map<string, string[]>();
  for (const name of maps) {
    for (const e of listed.maps.get(name)?.elements ?? []) {
      const chain = /^(?:jump|goto) (\S+)$/.exec(e.value?.[0] ?? '')?.[1];
      const ip = e.key[0];
      if (!chain || !ip) continue;
      byChain.set(chain, [...(byChain.get(chain) ?? []), ip]);
    }
  }
  for (const p of waiting) {
    const namespace = p.metadata.namespace ?? '';
    const chains = (['ingress', 'egress'] as const).map((d) => podChainName({ namespace, name: p.metadata.name }, d));
    const ips = [...new Set(chains.flatMap((chain) => byChain.get(chain) ?? []))];
    if (ips.length === 0) continue;
    opts.notices.record({ namespace, name: p.metadata.name, ...(p.metadata.uid ? { uid: p.metadata.uid } : {}), ips });
    const pod = podKey(namespace, p.metadata.name);
    opts.log.info(
      { pod, ips },
      'addresses of a pod the API shows without any yet, kept from the rules the previous agent left',
    );
  }
}
