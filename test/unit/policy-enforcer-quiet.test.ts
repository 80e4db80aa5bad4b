// The policy loop's debounce and a lone change (src/agent/policy/enforcer.ts POLICY_QUIET_MS): an
// event after a quiet stretch starts its pass at once (issue 17: a policy change enforced in 10 ms,
// 5 of which were the debounce), the events of a burst are gathered by the debounce. Structure, not
// timing: which timers the loop arms, on a clock the test moves.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { POLICY_DEBOUNCE_MS, POLICY_QUIET_MS, PolicyEnforcer } from '../../src/agent/policy/enforcer.ts';
import { PodStartNotices } from '../../src/agent/pod-notices.ts';
import type { Clock } from '../../src/agent/clock.ts';
import type { ClusterCache } from '../../src/k8s/cluster-cache.ts';
import { silentLogger } from '../../src/log.ts';
import { FakeNft } from '../../src/nft/fake.ts';

const list = <T>(xs: T[]) => ({ list: () => xs, get: () => undefined });

describe('the policy loop: a lone change at once, a burst debounced', () => {
  it('arms no debounce for an event after a quiet stretch, and the debounce for the events close behind it', async () => {
    let now = 1_000_000;
    const armed: number[] = [];
    const clock: Clock = {
      now: () => now,
      after: (ms, fn) => {
        armed.push(ms);
        const t = setTimeout(fn, ms);
        return { cancel: () => clearTimeout(t) };
      },
    };
    const cache = {
      pods: list([]),
      namespaces: list([]),
      networkPolicies: list([]),
      nodes: list([]),
      clusterNetworkPolicies: list([]),
      synced: true,
      unsynced: [],
    };
    const nft = new FakeNft();
    const enforcer = new PolicyEnforcer({
      nodeName: 'n0',
      nft,
      cache: cache as unknown as ClusterCache,
      kube: { request: () => Promise.reject(new Error('no API in this test')) },
      log: silentLogger,
      registry: new Registry(),
      notices: new PodStartNotices(clock, { apiPod: () => undefined }),
      nodeAddresses: () => ['192.168.0.1'],
      cutDeniedFlows: false,
      logDenied: false,
      clock,
    });
    try {
      // A resync (no event) waits for the debounce as before.
      enforcer.request();
      expect(armed).toEqual([POLICY_DEBOUNCE_MS]);
      await enforcer.settle();
      const applied = nft.applied.length;
      expect(applied).toBeGreaterThan(0);

      // A lone event: its pass starts without a timer.
      armed.length = 0;
      now += POLICY_QUIET_MS;
      enforcer.request(now);
      expect(armed).toEqual([]);
      await enforcer.settle();

      // Events close behind it: gathered by the debounce, one timer for all of them.
      now += 1;
      enforcer.request(now);
      now += 1;
      enforcer.request(now);
      expect(armed).toEqual([POLICY_DEBOUNCE_MS]);
      await enforcer.settle();
    } finally {
      enforcer.stop();
    }
  });
});
