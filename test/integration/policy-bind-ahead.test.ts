// The pod-start bind computed before the notice (src/agent/policy/bind-ahead.ts) against the kernel:
// the enforcer programs a test network namespace over nf_tables netlink (the agent's transport); pods
// scheduled to its node before their ADD are bound from the transactions computed ahead, with the
// notices' addresses put in, and what the kernel then holds, read back by the nft process (the
// independent judge), is the render of compiling everything: IPv4, and dual-stack.
import { afterAll, describe, expect, it } from 'vitest';
import type { PodInfo } from '../../src/k8s/objects.ts';
import { createNetlinkTransport } from '../../src/nft/netlink/transport.ts';
import { createNftRunner } from '../../src/nft/runner.ts';
import { Transaction } from '../../src/nft/transaction.ts';
import { compilePolicy, policyDrift, renderPolicy } from '../../src/policy/index.ts';
import { aheadCluster, aheadOf, aheadPod, bindsByPath, schedule, start } from '../support/ahead-cluster.ts';
import { testEnforcer } from '../support/fake-enforcer.ts';
import { TestNetns } from '../support/netns.ts';

const ns = TestNetns.create('ahead');
const nl = createNetlinkTransport({ netns: ns.name });
const judge = createNftRunner({ netns: ns.name });

afterAll(() => {
  nl.close();
  ns.destroy();
});

describe('pod-start binds computed ahead, in the kernel', () => {
  it('binds IPv4 and dual-stack pods from the transactions computed ahead; the kernel holds the whole compile', async () => {
    const cache = aheadCluster();
    const { enforcer, notices } = testEnforcer(cache, { nodeName: 'n0', nodeAddress: '192.168.0.1' }, nl);
    try {
      const waiting = [0, 1, 2, 3, 4, 5].map((k) => aheadPod(3000 + k, 'n0', [], `a${k % 3}`));
      await schedule(cache, enforcer, waiting);
      for (let k = 0; k < waiting.length; k++) {
        const p = waiting[k] as PodInfo;
        await aheadOf(enforcer, p);
        // The first three IPv4, then dual-stack (the first of those binds at its notice: computed for v4).
        const ips = k < 3 ? [`10.9.0.${k + 1}`] : [`10.9.0.${k + 1}`, `fd00:9::${k + 1}`];
        // Something else committed over the same transport since the bind was encoded ahead: its
        // template is stale, and the diff with the addresses substituted is encoded at the notice.
        if (k === 1) await nl.run(new Transaction().add({ kind: 'chain', name: 'cni-test-other' }));
        expect(await start(enforcer, notices, p, ips)).toBe(true);
        const whole = compilePolicy(enforcer.compileInput());
        expect(enforcer.programming.compiled).toEqual(whole);
        expect(policyDrift(renderPolicy(whole), await judge.list()), `after pod ${k}`).toEqual([]);
      }
      expect(await bindsByPath(enforcer)).toEqual({ ahead: 5, notice: 1 });
      // Each bind ahead but the stale one was sent from its bytes encoded ahead, the addresses written in.
      expect(nl.stats.templated).toBe(4);
    } finally {
      enforcer.stop();
    }
  });
});
