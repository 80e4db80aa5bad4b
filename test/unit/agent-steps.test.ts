// The agent built against the nft fake and the test API server, with no kernel (the netlink opener
// refuses, so node set-up waits): proof that its pieces are injected. And its parts on their own: the
// one store of pod-start notices (one expiry rule), the one builder of the compiler's input (a bad
// podIP said once), the pod-start gate, and stop() answering every waiting notice (issue 16 item 3).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import type { Clock, Timer } from '../../src/agent/clock.ts';
import { loadAgentConfig } from '../../src/agent/config.ts';
import { loadKubeConfig } from '../../src/k8s/client.ts';
import { slimPod, type PodInfo } from '../../src/k8s/objects.ts';
import { Loop } from '../../src/agent/loop.ts';
import { NOTICE_TTL_MS, PodStartNotices } from '../../src/agent/pod-notices.ts';
import { PolicyInput } from '../../src/agent/policy/input.ts';
import type { NetlinkSocket } from '../../src/kernel/index.ts';
import type { Logger } from '../../src/log.ts';
import { silentLogger } from '../../src/log.ts';
import { FakeNft } from '../../src/nft/fake.ts';
import { podChainName } from '../../src/policy/index.ts';
import { TestApiServer } from '../kit/k8s-api-server.ts';

/** A clock the test moves by hand. */
class ManualClock implements Clock {
  t = 1_000_000;
  private timers: { at: number; fn: () => void; live: boolean }[] = [];
  now(): number {
    return this.t;
  }
  after(ms: number, fn: () => void): Timer {
    const timer = { at: this.t + ms, fn, live: true };
    this.timers.push(timer);
    return { cancel: () => (timer.live = false) };
  }
  advance(ms: number): void {
    this.t += ms;
    for (const timer of this.timers.filter((x) => x.live && x.at <= this.t)) {
      timer.live = false;
      timer.fn();
    }
  }
}

function capturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'debug' },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  return { log, lines };
}

const pod = (name: string, ips: string[], labels: Record<string, string> = { app: name }): PodInfo => ({
  metadata: { name, namespace: 'default', uid: `uid-${name}`, labels },
  spec: { nodeName: 'n1', hostNetwork: false, containers: [] },
  status: { phase: 'Running', podIPs: ips.map((ip) => ({ ip })) },
});

describe('the pod-start notices (one store, one expiry rule)', () => {
  it('keeps a notice NOTICE_TTL_MS, then only while the API shows its pod without addresses or IPAM holds them', () => {
    const clock = new ManualClock();
    const api = new Map<string, PodInfo>();
    const notices = new PodStartNotices(clock, { apiPod: (ns, name) => api.get(`${ns}/${name}`) });
    notices.record({ namespace: 'default', name: 'a', ips: ['10.1.0.5'], containerId: 'c-a' });
    notices.record({ namespace: 'default', name: 'b', ips: ['10.1.0.6'], containerId: 'c-b' });
    notices.record({ namespace: 'default', name: 'c', ips: ['10.1.0.7'], containerId: 'c-c' });
    notices.record({ ips: ['10.1.0.8'], containerId: 'c-d' });
    api.set('default/a', pod('a', []));
    api.set('default/b', pod('b', ['10.1.0.6']));
    notices.noteHeld(['container/c-d']);
    expect(notices.list().map(([k]) => k)).toEqual(['default/a', 'default/b', 'default/c', 'container/c-d']);
    clock.advance(NOTICE_TTL_MS + 1);
    // a: the API has no addresses for it yet; b: the API has them; c: gone and not held; d: held.
    expect(notices.list().map(([k]) => k)).toEqual(['default/a', 'container/c-d']);
    // The same pod noticed again (a new container) replaces its notice.
    notices.record({ namespace: 'default', name: 'a', ips: ['10.1.0.9'], containerId: 'c-a2' });
    expect(notices.list().find(([k]) => k === 'default/a')?.[1].ips).toEqual(['10.1.0.9']);
  });
});

describe('the compiler input builder', () => {
  it("says a malformed podIP once per pod and value, and keeps the notices' addresses", () => {
    const clock = new ManualClock();
    const { log, lines } = capturingLogger();
    // As the informer makes them: slimPod notes a pod's bad addresses, which the builder reads.
    const slim = (p: PodInfo): PodInfo => {
      const s = slimPod(p);
      if (!s.ok) throw new Error(s.reason);
      return s.value;
    };
    const pods = [slim(pod('bad', ['999.1.1.1', '10.1.0.3'])), slim(pod('good', ['10.1.0.4']))];
    const cache = {
      pods: { list: () => pods, get: (name: string) => pods.find((p) => p.metadata.name === name) },
      namespaces: { list: () => [] },
      networkPolicies: { list: () => [] },
      clusterNetworkPolicies: { list: () => [] },
      nodes: { list: () => [] },
    };
    const notices = new PodStartNotices(clock, { apiPod: () => undefined });
    notices.record({ namespace: 'default', name: 'new', ips: ['10.1.0.9'] });
    const input = new PolicyInput({
      nodeName: 'n1',
      cache: cache as never,
      notices,
      nodeAddresses: () => ['198.18.0.1'],
      clock,
      log,
    });
    for (let i = 0; i < 3; i++) input.build();
    const said = lines.filter((l) => l.podIP === '999.1.1.1');
    expect(said).toHaveLength(1);
    expect(said[0]).toMatchObject({ pod: 'default/bad', level: 40 });
    expect(String(said[0]?.msg)).toContain('999.1.1.1');
    const built = input.build();
    expect(built.extraPodIps?.get('default/new')).toEqual(['10.1.0.9']);
    expect(built.nodeAddresses).toEqual(['198.18.0.1']);
    // Another bad value of the same pod is said too.
    pods[0] = slim(pod('bad', ['300.0.0.1']));
    input.build();
    expect(lines.filter((l) => l.pod === 'default/bad')).toHaveLength(2);
  });
});

describe('the loop', () => {
  it("stop() disarms its debounce so settle() ends (the enforcer's SIGTERM hang)", async () => {
    const clock = new ManualClock();
    let runs = 0;
    const loop = new Loop({ clock, debounceMs: 5, retryMs: 1_000, run: async () => (runs++, true) });
    loop.request();
    loop.stop();
    await loop.settle();
    clock.advance(10);
    expect(runs).toBe(0);
  });

  it('runs once for requests within the debounce and retries a failed run', async () => {
    const clock = new ManualClock();
    let runs = 0;
    let fail = true;
    const loop = new Loop({ clock, debounceMs: 5, retryMs: 1_000, run: async () => (runs++, !fail) });
    loop.request();
    loop.request();
    clock.advance(5);
    await loop.settle();
    expect(runs).toBe(1);
    fail = false;
    clock.advance(1_000);
    clock.advance(5);
    await loop.settle();
    expect(runs).toBe(2);
  });
});

describe('the agent against the nft fake and the test API server', () => {
  let api: TestApiServer;
  let dir: string;
  let agent: Agent | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strand-agent-unit-'));
    api = await TestApiServer.start();
    api.create('nodes', { metadata: { name: 'n1' }, spec: { podCIDR: '10.1.0.0/24' } });
    api.create('namespaces', { metadata: { name: 'default' } });
    api.create('pods', {
      metadata: { name: 'web', namespace: 'default', labels: { app: 'web' } },
      spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'x' }] },
      status: { podIP: '10.1.0.5', podIPs: [{ ip: '10.1.0.5' }] },
    });
    api.create('networkpolicies', {
      metadata: { name: 'deny', namespace: 'default' },
      spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'] },
    });
    api.writeKubeconfig(join(dir, 'kubeconfig'));
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(nft: FakeNft, podStartWaitMs = 5_000): Promise<Agent> {
    const flags = {
      'node-name': 'n1',
      'state-dir': join(dir, 'state'),
      'cni-conf-dir': join(dir, 'conf'),
      'cni-bin-dir': join(dir, 'bin'),
      'ipam-data-dir': join(dir, 'ipam'),
      'health-addr': '127.0.0.1:0',
      'pod-start-wait-ms': String(podStartWaitMs),
    };
    const config = await loadAgentConfig({ flags, env: {} });
    const openNetlink = (): NetlinkSocket => {
      throw new Error('no kernel in this test');
    };
    agent = await Agent.start({
      config,
      kubeConfig: loadKubeConfig(join(dir, 'kubeconfig'), {}),
      log: silentLogger,
      nft,
      openNetlink,
    });
    return agent;
  }

  async function eventually(check: () => boolean, ms = 5_000): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end) throw new Error('not met in time');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it("programs the pod's NetworkPolicy rules through the injected nft client, with no kernel", async () => {
    const nft = new FakeNft();
    const a = await start(nft);
    const chain = podChainName({ namespace: 'default', name: 'web' }, 'ingress');
    await eventually(() => nft.state?.chains.has(chain) === true);
    expect(a.readiness().reasons.join()).toContain('node state not written yet');
    expect(a.policy.problem).toBeUndefined();
  });

  it('runs only the steps that read what changed (issue 18)', async () => {
    const nft = new FakeNft();
    const a = await start(nft);
    const chain = podChainName({ namespace: 'default', name: 'web' }, 'ingress');
    await eventually(() => nft.state?.chains.has(chain) === true);
    // Node set-up fails here (no kernel) and a failed pass is retried with every step it had due:
    // without a pod CIDR, set-up waits before it needs the kernel, and the pass succeeds.
    api.upsert('nodes', { metadata: { name: 'n1' } });
    await eventually(() => a.readiness().reasons.join().includes('to get a pod CIDR'));
    const runs = async (): Promise<Record<string, number>> =>
      Object.fromEntries((await a.metrics.stepRuns.get()).values.map((v) => [String(v.labels.step), v.value]));
    /** The runs each step made while `change` happened (and the debounce after it). */
    const during = async (change: () => void): Promise<Record<string, number>> => {
      await new Promise((r) => setTimeout(r, 300));
      const before = await runs();
      change();
      await new Promise((r) => setTimeout(r, 400));
      const after = await runs();
      return Object.fromEntries(
        Object.entries(after)
          .map(([k, v]) => [k, v - (before[k] ?? 0)] as const)
          .filter(([, v]) => v > 0),
      );
    };
    expect(Object.keys(await runs())).toContain('node-setup');
    // Another node's pod, a NetworkPolicy, a status update that changes nothing kept: no step.
    expect(
      await during(() =>
        api.create('pods', {
          metadata: { name: 'far', namespace: 'default' },
          spec: { nodeName: 'n2', containers: [] },
          status: { podIPs: [{ ip: '10.2.0.5' }] },
        }),
      ),
    ).toEqual({});
    expect(
      await during(() =>
        api.create('networkpolicies', {
          metadata: { name: 'other', namespace: 'default' },
          spec: { podSelector: {}, policyTypes: ['Egress'] },
        }),
      ),
    ).toEqual({});
    expect(
      await during(() =>
        api.upsert('pods', {
          metadata: { name: 'web', namespace: 'default', labels: { app: 'web' } },
          spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'x' }] },
          status: { podIP: '10.1.0.5', podIPs: [{ ip: '10.1.0.5' }], conditions: [{ type: 'Ready', status: 'True' }] },
        }),
      ),
    ).toEqual({});
    // A pod of this node: the steps that read this node's pods.
    expect(
      await during(() =>
        api.create('pods', {
          metadata: { name: 'near', namespace: 'default' },
          spec: { nodeName: 'n1', containers: [] },
          status: { podIPs: [{ ip: '10.1.0.6' }] },
        }),
      ),
    ).toEqual({ 'local-pods': 1, 'ipam-metrics': 1 });
    // Another Node: the cluster network only.
    expect(
      await during(() => api.create('nodes', { metadata: { name: 'n2' }, spec: { podCIDR: '10.2.0.0/24' } })),
    ).toEqual({ 'cluster-network': 1 });
  });

  it('runs, when a list comes in, only the steps that read it (issue 18)', async () => {
    // The NetworkPolicies' list fails twice (the informer retries after ~0.5 s, then ~1 s): it comes
    // in well after the others, and no step reads NetworkPolicies (the enforcer has its own loop).
    api.failRequests({ verb: 'list', resource: 'networkpolicies' }, 500, 2);
    const a = await start(new FakeNft());
    const unsynced = () => /not synced with the API server yet: ([^;]*)/.exec(a.readiness().reasons.join(';'))?.[1];
    await eventually(() => unsynced() === 'networkpolicies');
    await new Promise((r) => setTimeout(r, 200));
    const runs = async (): Promise<Record<string, number>> =>
      Object.fromEntries((await a.metrics.stepRuns.get()).values.map((v) => [String(v.labels.step), v.value]));
    const before = await runs();
    expect(before['node-setup']).toBeGreaterThan(0);
    expect(unsynced()).toBe('networkpolicies');
    await eventually(() => unsynced() === undefined, 10_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(api.counters.failuresInjected).toBe(2);
    expect(await runs()).toEqual(before);
  });

  it('refuses every waiting pod-start notice at once on stop(), and leaves the rules in the table', async () => {
    const nft = new FakeNft();
    const a = await start(nft, 30_000);
    const chain = podChainName({ namespace: 'default', name: 'web' }, 'ingress');
    await eventually(() => nft.state?.chains.has(chain) === true);
    // Node set-up cannot finish (no kernel): 20 notices wait for it.
    const answers = Array.from({ length: 20 }, (_, i) =>
      a.podReady({
        namespace: 'default',
        name: `p${i}`,
        uid: `u${i}`,
        containerId: `c${i}`,
        ifname: 'eth0',
        netns: '/proc/1/ns/net',
        hostVeth: `veth${i}`,
        ips: [`10.1.0.${10 + i}`],
      }),
    );
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await a.stop();
    const settled = await Promise.all(answers);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(settled.every((s) => !s.ok)).toBe(true);
    expect(nft.state?.chains.has(chain)).toBe(true);
  });

  it('stop() ends the policy step waiting on rules that cannot be applied', async () => {
    const nft = new FakeNft();
    const a = await start(nft, 30_000);
    const chain = podChainName({ namespace: 'default', name: 'web' }, 'ingress');
    await eventually(() => nft.state?.chains.has(chain) === true);
    // Every later transaction is refused: the gate's waiters cannot be answered ok.
    const run = nft.run.bind(nft);
    nft.run = async () => {
      throw new Error('refused');
    };
    a.policy.request(Date.now());
    const gate = a.policy.gate.podStarted({ namespace: 'default', name: 'web', ips: ['10.1.0.77'] }, 30_000);
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await a.stop();
    expect((await gate).ok).toBe(false);
    expect(Date.now() - started).toBeLessThan(2_000);
    nft.run = run;
  });
});
