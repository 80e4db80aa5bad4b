// A PolicyEnforcer over the nft fake (or a given transport) and a test's ClusterCache (the unit tests of the enforcer and of
// its pod-start bind): real timers, no API server, no conntrack cut, the stages it yields at recorded.
import { Registry } from 'prom-client';
import { PolicyEnforcer } from '../../src/agent/policy/enforcer.ts';
import { PodStartNotices } from '../../src/agent/pod-notices.ts';
import type { Clock } from '../../src/agent/clock.ts';
import type { ClusterCache } from '../../src/k8s/cluster-cache.ts';
import type { PodInfo } from '../../src/k8s/objects.ts';
import { silentLogger } from '../../src/log.ts';
import { FakeNft } from '../../src/nft/fake.ts';
import type { Nft } from '../../src/nft/transport.ts';

const timers: Clock = {
  now: () => Date.now(),
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

export interface FakeEnforcer {
  enforcer: PolicyEnforcer;
  nft: FakeNft;
  notices: PodStartNotices;
  /** The stages the enforcer yielded at, in order ('slice' left out unless asked for). */
  stages: string[];
}

export function fakeEnforcer(
  cache: { pods: { get(name: string, namespace?: string): PodInfo | undefined } },
  opts: { nodeName: string; nodeAddress: string; slices?: boolean; recordStages?: boolean },
): FakeEnforcer {
  const nft = new FakeNft();
  return { ...testEnforcer(cache, opts, nft), nft };
}

/** The same over another transport (the kernel's, in a test's network namespace). */
export function testEnforcer(
  cache: { pods: { get(name: string, namespace?: string): PodInfo | undefined } },
  opts: { nodeName: string; nodeAddress: string; slices?: boolean; recordStages?: boolean },
  nft: Nft,
): Omit<FakeEnforcer, 'nft'> {
  const notices = new PodStartNotices(timers, { apiPod: (ns, name) => cache.pods.get(name, ns) });
  const stages: string[] = [];
  const enforcer = new PolicyEnforcer({
    nodeName: opts.nodeName,
    nft,
    cache: cache as unknown as ClusterCache,
    kube: { request: () => Promise.reject(new Error('no API in this test')) },
    log: silentLogger,
    registry: new Registry(),
    notices,
    nodeAddresses: () => [opts.nodeAddress],
    cutDeniedFlows: false,
    logDenied: false,
    clock: timers,
    ...(opts.recordStages
      ? {
          yieldToLoop: async (stage: string) => {
            if (opts.slices || stage !== 'slice') stages.push(stage);
            await new Promise<void>((r) => setImmediate(r));
          },
        }
      : {}),
  });
  return { enforcer, notices, stages };
}
