// dist/strand STATUS and VERSION as a runtime calls them: STATUS is 0 when an ADD could succeed and
// 50 when it could not (pool exhausted, the bridge name taken by a link that is not a bridge);
// VERSION echoes the caller's cniVersion.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STRAND_CNI, type CniOutcome } from '../support/cni.ts';
import { testName } from '../support/names.ts';
import { nthAddress4, PluginFixture, randomSubnet4, sh } from '../support/plugin-fixture.ts';

let f: PluginFixture;
beforeEach(() => {
  f = new PluginFixture();
});
afterEach(() => f.teardown());

function expectOk(r: CniOutcome): void {
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toBe('');
}

describe('strand STATUS', () => {
  it('is 0 before any pod and with free addresses, 50 while the pool is exhausted, 0 again after DEL', () => {
    const subnet = randomSubnet4(30);
    const conf = f.v4Config(subnet);
    expectOk(f.status(conf));
    // STATUS creates nothing.
    expect(f.link(f.bridge)).toBeUndefined();

    const pod = f.pod();
    const id = f.containerId();
    expect(f.add(conf, pod, id).code).toBe(0);
    const exhausted = f.status(conf);
    expect(exhausted.code).not.toBe(0);
    expect(exhausted.json).toMatchObject({ cniVersion: '1.1.0', code: 50 });
    expect(exhausted.json.msg).toContain(
      `no IP addresses available in range set: ${nthAddress4(subnet, 1)}-${nthAddress4(subnet, 2)}`,
    );

    expectOk(f.del(conf, pod, id));
    expectOk(f.status(conf));
  });

  it('is 0 with pods on a /24', () => {
    const conf = f.v4Config(randomSubnet4());
    expect(f.add(conf, f.pod(), f.containerId()).code).toBe(0);
    expectOk(f.status(conf));
  });

  it('is 50 when `bridge` names an existing link that is not a bridge', () => {
    // An ifb device stands in for a dummy: this kernel has no dummy driver.
    const notBridge = testName('dum');
    sh('ip', ['link', 'add', notBridge, 'type', 'ifb']);
    f.trackLink(notBridge);
    const r = f.status(f.v4Config(randomSubnet4(), { bridge: notBridge }));
    expect(r.code).not.toBe(0);
    expect(r.json).toMatchObject({ cniVersion: '1.1.0', code: 50 });
    expect(r.json.msg).toContain(`"${notBridge}" exists but is not a bridge`);
  });

  it('is refused for a config older than 1.1.0 (code 1), as GC is', () => {
    const conf = f.v4Config(randomSubnet4(), { cniVersion: '1.0.0' });
    expect(f.status(conf).json).toMatchObject({ code: 1 });
    expect(f.gc(conf, []).json).toMatchObject({ code: 1 });
  });
});

describe('strand VERSION', () => {
  for (const version of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
    it(`answers with the given cniVersion ${version}`, () => {
      const r = f.run({ command: 'VERSION', config: { cniVersion: version } }, STRAND_CNI);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.json).toEqual({ cniVersion: version, supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    });
  }
});
