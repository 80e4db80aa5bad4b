// dist/strand CHECK against the real kernel: it passes right after ADD (empty stdout), and fails
// with an error JSON naming what drifted after a hand removes the container interface, its
// default route, or its address.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CniOutcome } from '../support/cni.ts';
import type { TestNetns } from '../support/netns.ts';
import { nthAddress4, PluginFixture, randomSubnet4, sh } from '../support/plugin-fixture.ts';

let f: PluginFixture;
let subnet: string;
let conf: Record<string, unknown>;
let pod: TestNetns;
let containerId: string;
let added: CniOutcome;

beforeEach(() => {
  f = new PluginFixture();
  subnet = randomSubnet4();
  conf = f.v4Config(subnet);
  pod = f.pod();
  containerId = f.containerId();
  added = f.add(conf, pod, containerId);
  expect(added.code, added.stdout + added.stderr).toBe(0);
});
afterEach(() => f.teardown());

function expectCheckFails(messagePart: RegExp | string): CniOutcome {
  const r = f.check(conf, added.json, pod, containerId);
  expect(r.code, r.stdout + r.stderr).not.toBe(0);
  // 103: Strand's own "CHECK found the attachment different from what ADD made".
  expect(r.json).toMatchObject({ cniVersion: '1.1.0', code: 103 });
  expect(r.json.msg).toMatch(messagePart);
  return r;
}

describe('strand CHECK', () => {
  it('passes right after ADD, with empty stdout, and again later', () => {
    for (let i = 0; i < 2; i++) {
      const r = f.check(conf, added.json, pod, containerId);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toBe('');
    }
  });

  it('fails, naming the interface, after the container interface is removed by hand', () => {
    sh('ip', ['-n', pod.name, 'link', 'del', 'eth0']);
    expectCheckFails(/interface in container eth0 not found/);
  });

  it('fails, naming the route, after the default route is removed by hand', () => {
    sh('ip', ['-n', pod.name, 'route', 'del', 'default']);
    expectCheckFails(`route 0.0.0.0/0 via ${nthAddress4(subnet, 1)} is missing`);
  });

  it('fails, naming the address, after the address is removed by hand', () => {
    sh('ip', ['-n', pod.name, 'addr', 'del', `${nthAddress4(subnet, 2)}/24`, 'dev', 'eth0']);
    expectCheckFails(`address ${nthAddress4(subnet, 2)}/24 is missing from eth0`);
  });

  it('fails, naming the bridge, after the bridge is made promiscuous by hand', () => {
    sh('ip', ['link', 'set', f.bridge, 'promisc', 'on']);
    expectCheckFails(`bridge ${f.bridge} promiscuous mode is on`);
  });

  it('fails without a prevResult', () => {
    const r = f.run({ command: 'CHECK', config: conf, netns: pod.path, containerId, ifname: 'eth0' });
    expect(r.code).not.toBe(0);
    expect(r.json.msg).toMatch(/prevResult/);
  });
});
