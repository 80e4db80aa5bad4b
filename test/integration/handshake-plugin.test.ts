// dist/strand ADD and STATUS with `agentSocket` set, run as a runtime runs them inside a test "node"
// namespace, against a PodHandshakeServer in this test process standing in for the agent: the agent
// hears of the pod with its identity, veth and addresses; a refusing agent fails the ADD with code
// 11 and nothing is left behind; no agent, or a silent one, does not stop a pod; a not-ready agent
// makes STATUS 50; with policyWhenNoAgent "fail", no agent or a silent one fails the ADD. The plugin
// runs as a separate process, so every call here is asynchronous: the in-process server must keep
// answering while the plugin runs.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PodHandshakeServer } from '../../src/agent/pod-handshake.ts';
import type { PodStartAnswer, PodStartNotice } from '../../src/contracts/agent-socket.ts';
import { silentLogger } from '../../src/log.ts';
import type { CniOutcome } from '../support/cni.ts';
import { testName } from '../support/names.ts';
import type { TestNetns } from '../support/netns.ts';
import { nthAddress4, PluginFixture, randomSubnet4, randomSubnet6 } from '../support/plugin-fixture.ts';

let f: PluginFixture;
let agent: PodHandshakeServer | undefined;
let socketPath: string;

beforeEach(() => {
  f = new PluginFixture({ hostNetns: true });
  socketPath = join(f.dir, 'state', 'agent.sock');
});
afterEach(async () => {
  await agent?.close();
  agent = undefined;
  f.teardown();
});

async function startAgent(
  handler: (n: PodStartNotice) => Promise<PodStartAnswer>,
  status?: () => { ready: boolean; reasons: string[] },
): Promise<void> {
  agent = await PodHandshakeServer.start(socketPath, handler, silentLogger, status);
}

function kubeArgs(containerId: string, name = 'web-0'): string {
  return `IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=${containerId};K8S_POD_UID=0b5f3c1e-uid`;
}

function add(config: unknown, pod: TestNetns, containerId: string, args = kubeArgs(containerId)): Promise<CniOutcome> {
  return f.runAsync({ command: 'ADD', config, netns: pod.path, containerId, ifname: 'eth0', args });
}

function expectOk(r: CniOutcome): void {
  expect(r.code, r.stdout + r.stderr).toBe(0);
}

describe('strand ADD tells the agent', () => {
  it('the agent receives namespace, name, uid, container, netns, host veth and the addresses', async () => {
    const notices: PodStartNotice[] = [];
    await startAgent(async (n) => {
      notices.push(n);
      return { ok: true };
    });
    const v4 = randomSubnet4();
    const v6 = randomSubnet6();
    const conf = f.config({ ranges: [[{ subnet: v4 }], [{ subnet: v6 }]] }, { agentSocket: socketPath });
    const pod = f.pod();
    const id = f.containerId();
    const r = await add(conf, pod, id);
    expectOk(r);
    expect(notices).toEqual([
      {
        namespace: 'shop',
        name: 'web-0',
        uid: '0b5f3c1e-uid',
        containerId: id,
        ifname: 'eth0',
        netns: pod.path,
        hostVeth: f.hostVeth(id),
        ips: r.json.ips.map((ip: { address: string }) => ip.address.split('/')[0]),
      },
    ]);
    expect(notices[0]?.ips[0]).toBe(nthAddress4(v4, 2));
    expect(notices[0]?.ips).toHaveLength(2);
    // The notice goes once IPAM has the addresses; by the end of the ADD the veth is on the bridge.
    expect(f.link(f.hostVeth(id))?.master).toBe(f.bridge);
  });

  it("the pod's interface carries no packet until the agent answers: the host end is down while it waits, up after", async () => {
    let podName = '';
    let whileWaiting: string[] | undefined;
    await startAgent(async (n) => {
      // The notice comes as soon as IPAM answered, maybe before the veth exists: the answer waits
      // for the plugin to have wired the pod (its address inside), then looks at the host end.
      for (let i = 0; i < 200 && !(f.link(n.hostVeth) && f.link('eth0', podName)); i++)
        await new Promise((r) => setTimeout(r, 10));
      whileWaiting = f.link(n.hostVeth)?.flags;
      return { ok: true };
    });
    const conf = f.config({ ranges: [[{ subnet: randomSubnet4() }]] }, { agentSocket: socketPath });
    const id = f.containerId();
    const pod = f.pod();
    podName = pod.name;
    expectOk(await add(conf, pod, id));
    // Down: the pod cannot be reached (nor send) before its policy rules are in the kernel.
    expect(whileWaiting).toBeDefined();
    expect(whileWaiting).not.toContain('UP');
    expect(f.link(f.hostVeth(id))?.flags).toContain('UP');
  });

  it('the notice goes before the pod is wired; an ADD that fails after it takes it back and leaves nothing', async () => {
    // The bridge name is taken by a link that is not a bridge: the ADD fails after IPAM, so after the
    // notice. An ifb device stands in for a dummy (this kernel has no dummy driver).
    const taken = testName('dum');
    execFileSync('ip', ['-n', (f.host as TestNetns).name, 'link', 'add', taken, 'type', 'ifb']);
    f.trackLink(taken);
    const notices: PodStartNotice[] = [];
    let answered!: () => void;
    const answeredToGone = new Promise<void>((r) => {
      answered = r;
    });
    await startAgent(async (n) => {
      notices.push(n);
      // Answers once the plugin has hung up (the ADD failed meanwhile).
      for (let i = 0; i < 200 && f.reservedAddresses().length > 0; i++) await new Promise((r) => setTimeout(r, 10));
      setTimeout(answered, 50);
      return { ok: true };
    });
    const conf = f.v4Config(randomSubnet4(), { agentSocket: socketPath, bridge: taken });
    const pod = f.pod();
    const id = f.containerId();
    const r = await add(conf, pod, id);
    expect(r.code).not.toBe(0);
    expect(r.json).toMatchObject({ code: 7 });
    expect(r.json.msg).toContain('is not a bridge');
    // The notice, then its retraction: the pod has no addresses after all.
    for (let i = 0; i < 200 && notices.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(notices.map((n) => [n.containerId, n.ips.length])).toEqual([
      [id, 1],
      [id, 0],
    ]);
    expect(f.link(f.hostVeth(id))).toBeUndefined();
    expect(f.link('eth0', pod.name)).toBeUndefined();
    expect(f.reservedAddresses()).toEqual([]);
    // The agent's answer to a plugin that hung up breaks nothing: the next ADD is answered.
    await answeredToGone;
    const ok = f.v4Config(randomSubnet4(), { agentSocket: socketPath });
    expectOk(await add(ok, f.pod(), f.containerId()));
    expect(notices).toHaveLength(3);
  });

  it('without CNI_ARGS the notice still goes, without the pod identity', async () => {
    const notices: PodStartNotice[] = [];
    await startAgent(async (n) => {
      notices.push(n);
      return { ok: true };
    });
    const id = f.containerId();
    expectOk(await add(f.v4Config(randomSubnet4(), { agentSocket: socketPath }), f.pod(), id, ''));
    expect(notices).toHaveLength(1);
    expect(notices[0]).not.toHaveProperty('namespace');
    expect(notices[0]).not.toHaveProperty('name');
    expect(notices[0]?.containerId).toBe(id);
  });

  it('a refusing agent fails the ADD with code 11 and its message; no veth, no address, no interface stay', async () => {
    await startAgent(async (n) => ({
      ok: false,
      message: `policy for ${n.namespace}/${n.name} is not programmed yet`,
    }));
    const conf = f.v4Config(randomSubnet4(), { agentSocket: socketPath });
    const pod = f.pod();
    const id = f.containerId();
    const r = await add(conf, pod, id);
    expect(r.code).not.toBe(0);
    expect(r.json).toMatchObject({ code: 11 });
    expect(r.json.msg).toContain('policy for shop/web-0 is not programmed yet');
    expect(f.link(f.hostVeth(id))).toBeUndefined();
    expect(f.link('eth0', pod.name)).toBeUndefined();
    expect(f.reservedAddresses()).toEqual([]);
    // The runtime tries again later; once the agent agrees, the same ADD succeeds.
    await agent?.close();
    await startAgent(async () => ({ ok: true }));
    expectOk(await add(conf, pod, id));
    expect(f.reservedAddresses()).toHaveLength(1);
  });

  it('no agent listening: the ADD succeeds at once (no socket file, or a stale one)', async () => {
    const conf = f.v4Config(randomSubnet4(), { agentSocket: socketPath, agentWaitMs: 10_000 });
    const t0 = performance.now();
    expectOk(await add(conf, f.pod(), f.containerId()));
    expect(performance.now() - t0).toBeLessThan(5_000);

    // A socket file left by a dead agent: connection refused, also at once.
    await startAgent(async () => ({ ok: true }));
    const stale = agent as PodHandshakeServer;
    // Simulate a crash: stop listening but leave the file (close() would remove it).
    (stale as unknown as { server: import('node:net').Server }).server.close();
    agent = undefined;
    const t1 = performance.now();
    expectOk(await add(conf, f.pod(), f.containerId()));
    expect(performance.now() - t1).toBeLessThan(5_000);
    await stale.close();
  });

  it('an agent that does not answer in time: the ADD succeeds after agentWaitMs with a warning in the log', async () => {
    await startAgent(() => new Promise(() => {}));
    const conf = f.v4Config(randomSubnet4(), { agentSocket: socketPath, agentWaitMs: 400, logLevel: 'debug' });
    const t0 = performance.now();
    const r = await add(conf, f.pod(), f.containerId());
    const ms = performance.now() - t0;
    expectOk(r);
    expect(ms).toBeGreaterThanOrEqual(400);
    const log = readFileSync(f.logFile, 'utf8');
    expect(log).toMatch(/"level":40[^\n]*did not acknowledge the pod in time/);
  });

  it('agentSocket: false never contacts an agent', async () => {
    let calls = 0;
    await startAgent(async () => {
      calls++;
      return { ok: false, message: 'would refuse' };
    });
    expectOk(await add(f.v4Config(randomSubnet4(), { agentSocket: false }), f.pod(), f.containerId()));
    expect(calls).toBe(0);
  });
});

describe('strand STATUS asks the agent', () => {
  function status(conf: unknown): Promise<CniOutcome> {
    return f.runAsync({ command: 'STATUS', config: conf });
  }

  it('not ready: code 50 with the reasons; ready: 0; no agent: 0', async () => {
    const conf = f.v4Config(randomSubnet4(), { agentSocket: socketPath });
    expectOk(await status(conf));

    let readiness = { ready: false, reasons: ['node has no pod CIDR yet', 'policy not synced'] };
    await startAgent(
      async () => ({ ok: true }),
      () => readiness,
    );
    const r = await status(conf);
    expect(r.code).not.toBe(0);
    expect(r.json).toMatchObject({ code: 50 });
    expect(r.json.msg).toContain('node has no pod CIDR yet; policy not synced');

    readiness = { ready: true, reasons: [] };
    expectOk(await status(conf));
  });
});

describe('cost of telling the agent, as the plugin process sees it', () => {
  it('ADD wall time and the in-process time of notifyAgent: agentSocket false, no agent, an agent that answers', async () => {
    const subnet = randomSubnet4(22);
    const rounds = 7;
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const cases = {
      off: { agentSocket: false },
      none: { agentSocket: join(f.dir, 'nobody.sock') },
      agent: { agentSocket: socketPath },
    };
    const wall: Record<string, number[]> = { off: [], none: [], agent: [] };
    await startAgent(async () => ({ ok: true }));
    // One ADD first, so the bridge exists for every measured run.
    expectOk(await add(f.v4Config(subnet, { agentSocket: false }), f.pod(), f.containerId()));
    // Interleaved, so that a busy moment on the machine hits every case alike.
    for (let i = 0; i < rounds; i++) {
      for (const [name, extra] of Object.entries(cases)) {
        const conf = f.v4Config(subnet, { ...extra, logLevel: 'debug' });
        const pod = f.pod();
        const id = f.containerId();
        const t0 = performance.now();
        expectOk(await add(conf, pod, id));
        wall[name]?.push(performance.now() - t0);
      }
    }
    // What the plugin itself measured around notifyAgent (the announcement logs it at debug level).
    const logged = readFileSync(f.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"ms":'))
      .map((l) => JSON.parse(l) as { ms: number; msg: string });
    const inProcess = (msg: string) => median(logged.filter((l) => l.msg.startsWith(msg)).map((l) => l.ms));
    const noAgentMs = inProcess('no agent to notify');
    const agentMs = inProcess('the agent acknowledged');
    console.log(
      `ADD wall time, median of ${rounds} (process start and ip netns exec included): agentSocket false ${median(wall.off ?? []).toFixed(1)} ms, ` +
        `no agent ${median(wall.none ?? []).toFixed(1)} ms, agent answering ${median(wall.agent ?? []).toFixed(1)} ms; ` +
        `notifyAgent inside the plugin: no agent ${noAgentMs} ms, agent answering ${agentMs} ms`,
    );
    // Behaviour, not speed: neither case waited for the plugin's agentWaitMs.
    expect(noAgentMs).toBeLessThan(1_000);
    expect(agentMs).toBeLessThan(1_000);
  });
});

// policyWhenNoAgent: "allow" (the default, above: no agent does not stop a pod) or "fail".
describe('policyWhenNoAgent "fail"', () => {
  it('refuses the pod with code 11 while no agent listens or answers, leaving nothing, and lets it through once one answers', async () => {
    const conf = f.v4Config(randomSubnet4(), { agentSocket: socketPath, agentWaitMs: 300, policyWhenNoAgent: 'fail' });
    const pod = f.pod();
    const id = f.containerId();
    const none = await add(conf, pod, id);
    expect(none.code).not.toBe(0);
    expect(none.json).toMatchObject({ code: 11 });
    expect(none.json.msg).toMatch(/no Strand agent answers for pod shop\/web-0 and policyWhenNoAgent is "fail"/);
    expect(f.link(f.hostVeth(id))).toBeUndefined();
    expect(f.reservedAddresses()).toEqual([]);

    await startAgent(() => new Promise(() => {}));
    const silent = await add(conf, pod, id);
    expect(silent.json).toMatchObject({ code: 11 });
    expect(silent.json.msg).toMatch(/did not acknowledge pod shop\/web-0 in time/);
    expect(f.reservedAddresses()).toEqual([]);
    await agent?.close();

    await startAgent(async () => ({ ok: true }));
    expectOk(await add(conf, pod, id));
    expect(f.reservedAddresses()).toHaveLength(1);
  });

  it('is refused as a config error when neither "allow" nor "fail"', async () => {
    const r = await add(
      f.v4Config(randomSubnet4(), { agentSocket: socketPath, policyWhenNoAgent: 'open' }),
      f.pod(),
      f.containerId(),
    );
    expect(r.code).not.toBe(0);
    expect(r.json.msg).toMatch(/policyWhenNoAgent/);
  });
});
