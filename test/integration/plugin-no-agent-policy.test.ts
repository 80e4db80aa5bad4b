// policyWhenNoAgent: dist/strand ADD run as a runtime runs it in a test "node" namespace. "allow" (the
// default) starts a pod when no agent answers; "fail" refuses it with code 11 (try again later) and
// leaves nothing behind, when no agent listens and when the agent does not answer in time; an agent
// that answers ok lets the same ADD through. A bad value is refused as a config error.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PodHandshakeServer } from '../../src/agent/pod-handshake.ts';
import { silentLogger } from '../../src/log.ts';
import { PluginFixture, randomSubnet4 } from '../support/plugin-fixture.ts';

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

const args = (id: string) => `IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=${id};K8S_POD_UID=u-1`;

describe('policyWhenNoAgent', () => {
  it('"allow" (the default) starts the pod without an agent', async () => {
    const pod = f.pod();
    const id = f.containerId();
    const r = await f.runAsync({ command: 'ADD', config: f.v4Config(randomSubnet4(), { agentSocket: socketPath }), netns: pod.path, containerId: id, ifname: 'eth0', args: args(id) });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('"fail" refuses the pod with code 11 while no agent listens or answers, leaving nothing, and lets it through once one answers', async () => {
    const conf = f.v4Config(randomSubnet4(), { agentSocket: socketPath, agentWaitMs: 300, policyWhenNoAgent: 'fail' });
    const pod = f.pod();
    const id = f.containerId();
    const add = () => f.runAsync({ command: 'ADD', config: conf, netns: pod.path, containerId: id, ifname: 'eth0', args: args(id) });
    const none = await add();
    expect(none.code).not.toBe(0);
    expect(none.json).toMatchObject({ code: 11 });
    expect(none.json.msg).toMatch(/no Strand agent answers for pod shop\/web-0 and policyWhenNoAgent is "fail"/);
    expect(f.link(f.hostVeth(id))).toBeUndefined();
    expect(f.reservedAddresses()).toEqual([]);

    agent = await PodHandshakeServer.start(socketPath, () => new Promise(() => {}), silentLogger);
    const silent = await add();
    expect(silent.json).toMatchObject({ code: 11 });
    expect(silent.json.msg).toMatch(/did not acknowledge pod shop\/web-0 in time/);
    expect(f.reservedAddresses()).toEqual([]);
    await agent.close();

    agent = await PodHandshakeServer.start(socketPath, async () => ({ ok: true }), silentLogger);
    const ok = await add();
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(f.reservedAddresses()).toHaveLength(1);
  });

  it('refuses a value other than "allow" or "fail"', async () => {
    const pod = f.pod();
    const id = f.containerId();
    const r = await f.runAsync({ command: 'ADD', config: f.v4Config(randomSubnet4(), { agentSocket: socketPath, policyWhenNoAgent: 'open' }), netns: pod.path, containerId: id, ifname: 'eth0', args: args(id) });
    expect(r.code).not.toBe(0);
    expect(r.json.msg).toMatch(/policyWhenNoAgent/);
  });
});
