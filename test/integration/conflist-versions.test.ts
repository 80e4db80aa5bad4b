// The conflist the agent writes, run the way a runtime runs it (test/support/libcni.ts: libcni's
// choice of version, ADD through the chain with prevResult, DEL in reverse) through the plugins in
// the CNI bin dir: Debian's reference portmap (containernetworking-plugins 1.1.1, which stops at CNI
// 1.0.0), and a chained plugin that speaks only 0.3.1. The list's versions come from asking those
// very files (install/conflist-versions.ts), so both chains must succeed; the list written before
// (cniVersion 1.1.0) is run too, to show that it fails with portmap as it did on real nodes.
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildConflist } from '../../src/agent/cni-conflist.ts';
import { CHAINED_PLUGINS } from '../../src/contracts/conflist.ts';
import { planConflist, PluginVersionCache } from '../../src/install/conflist-versions.ts';
import { writeNodeState } from '../../src/contracts/node-state.ts';
import { REFERENCE_CNI_DIR, STRAND_CNI, STRAND_IPAM, type CniOutcome } from '../support/cni.ts';
import {
  addChain,
  delChain,
  libcniPick,
  writeVersionedPlugin,
  type ChainCall,
  type Conflist,
} from '../support/libcni.ts';
import type { TestNetns } from '../support/netns.ts';
import { nthAddress4, PluginFixture, randomSubnet4 } from '../support/plugin-fixture.ts';

let f: PluginFixture;
let bin: string;
let subnet: string;

beforeEach(() => {
  // portmap writes iptables rules where it runs: the chain runs in a test "host" namespace.
  f = new PluginFixture({ hostNetns: true });
  bin = join(f.dir, 'cni-bin');
  mkdirSync(bin);
  symlinkSync(STRAND_CNI, join(bin, 'strand'));
  symlinkSync(STRAND_IPAM, join(bin, 'strand-ipam'));
  subnet = randomSubnet4();
  // What the agent writes before the conflist: the node's pod CIDR for "subnet": "usePodCidr".
  writeNodeState(f.stateDir, {
    version: 1,
    nodeName: 'n1',
    podCIDRs: [subnet],
    clusterCIDRs: [subnet],
    mtu: 1500,
    backend: 'host-gw',
    updatedAt: new Date().toISOString(),
  });
});
afterEach(() => f.teardown());

/** The list the agent writes for this bin dir (the agent's own functions, on the fixture's paths). */
async function agentConflist(): Promise<Conflist> {
  const plan = await planConflist({ binDirs: [bin], chained: CHAINED_PLUGINS, cache: new PluginVersionCache() });
  const inputs = {
    bridge: f.bridge,
    stateDir: f.stateDir,
    ipamDataDir: f.dataDir,
    cniLogFile: f.logFile,
    podStartWaitMs: 2000,
  };
  return buildConflist(inputs, plan) as unknown as Conflist;
}

function chain(
  list: Conflist,
  version: string,
  pod: TestNetns,
  containerId: string,
  runtimeConfig: Record<string, unknown> = {},
): ChainCall {
  return {
    list,
    version,
    binary: (type) => join(bin, type),
    run: (plugin, call) => f.run(call, plugin),
    netns: pod.path,
    containerId,
    runtimeConfig,
  };
}

function expectOk(r: CniOutcome | undefined, what: string): void {
  expect(r?.code, `${what}: ${r?.stdout} ${r?.stderr}`).toBe(0);
}

describe("the agent's conflist through the plugins of the bin dir, as libcni runs it", () => {
  it("Debian's portmap (1.1.1): the list says 1.0.0, ADD forwards the host port, DEL removes it; the 1.1.0 list fails", async () => {
    symlinkSync(join(REFERENCE_CNI_DIR, 'portmap'), join(bin, 'portmap'));
    const list = await agentConflist();
    expect(list.plugins.map((p) => p.type)).toEqual(['strand', 'portmap']);
    expect(list.cniVersion).toBe('1.0.0');
    expect(list.cniVersions).toEqual(['0.3.1', '0.4.0', '1.0.0']);
    // libcni 1.2+ (containerd 2) and an older libcni (containerd 1.7) both run it at 1.0.0.
    const version = libcniPick(list);
    expect(version).toBe('1.0.0');
    expect(libcniPick(list, '1.0.0', false)).toBe('1.0.0');

    const pod = f.pod();
    const id = f.containerId();
    const mappings = [{ hostPort: 18081, containerPort: 8080, protocol: 'tcp' }];
    const c = chain(list, version, pod, id, { portMappings: mappings });
    const added = addChain(c);
    for (const call of added.calls) expectOk(call.outcome, `ADD ${call.type}`);
    expect(added.calls.map((x) => x.type)).toEqual(['strand', 'portmap']);
    expect(added.outcome.json.cniVersion).toBe('1.0.0');
    const podIp = nthAddress4(subnet, 2);
    expect(added.outcome.json.ips[0].address).toBe(`${podIp}/${subnet.split('/')[1]}`);
    const host = f.host as TestNetns;
    const nat = () => host.exec('iptables', ['-t', 'nat', '-S']);
    expect(nat()).toContain(`--to-destination ${podIp}:8080`);

    const deleted = delChain(c, added.outcome.json);
    for (const call of deleted) expectOk(call.outcome, `DEL ${call.type}`);
    expect(deleted.map((x) => x.type)).toEqual(['portmap', 'strand']);
    expect(nat()).not.toContain('18081');
    expect(existsSync(join(f.dataDir, 'strand', podIp))).toBe(false);

    // The list as it was before: a runtime picks 1.1.0 and Debian's portmap refuses it.
    const old = { ...list, cniVersion: '1.1.0', cniVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] };
    expect(libcniPick(old)).toBe('1.1.0');
    const pod2 = f.pod();
    const c2 = chain(old, '1.1.0', pod2, f.containerId(), { portMappings: mappings });
    const refused = addChain(c2);
    expect(refused.calls.map((x) => x.type)).toEqual(['strand', 'portmap']);
    expect(refused.outcome.code).not.toBe(0);
    expect(refused.outcome.stdout).toContain('incompatible CNI versions');
    // The runtime deletes a failed ADD; strand's part goes, portmap's DEL fails the same way.
    const cleaned = delChain(c2, refused.calls[0]?.outcome.json);
    expect(cleaned.find((x) => x.type === 'strand')?.outcome.code).toBe(0);
    expect(existsSync(join(f.dataDir, 'strand', nthAddress4(subnet, 3)))).toBe(false);
  });

  it('a chained plugin that speaks only 0.3.1: the list says 0.3.1, ADD and DEL run at 0.3.1 with prevResult', async () => {
    const plugin = writeVersionedPlugin(bin, 'portmap', ['0.1.0', '0.2.0', '0.3.0', '0.3.1']);
    const list = await agentConflist();
    expect(list.plugins.map((p) => p.type)).toEqual(['strand', 'portmap']);
    expect(list.cniVersion).toBe('0.3.1');
    expect(list.cniVersions).toEqual(['0.3.1']);
    const version = libcniPick(list);
    expect(version).toBe('0.3.1');

    const pod = f.pod();
    const c = chain(list, version, pod, f.containerId());
    const added = addChain(c);
    for (const call of added.calls) expectOk(call.outcome, `ADD ${call.type}`);
    // A 0.3.1 result: ips with "version", interfaces by index.
    expect(added.outcome.json).toMatchObject({
      cniVersion: '0.3.1',
      ips: [{ version: '4', address: `${nthAddress4(subnet, 2)}/${subnet.split('/')[1]}` }],
    });
    const deleted = delChain(c, added.outcome.json);
    for (const call of deleted) expectOk(call.outcome, `DEL ${call.type}`);
    expect(readFileSync(`${plugin}.calls`, 'utf8').trim().split('\n')).toEqual([
      'VERSION 1.1.0',
      'ADD 0.3.1',
      'DEL 0.3.1',
    ]);
    expect(f.link(f.hostVeth(c.containerId, 'eth0', 'strand'))).toBeUndefined();

    // Control: at the version the list used to carry, this plugin fails the chain.
    const c2 = chain(list, '1.0.0', f.pod(), f.containerId());
    const refused = addChain(c2);
    expect(refused.outcome.code).toBe(1);
    expect(refused.outcome.stdout).toContain('incompatible CNI versions');
    expect(delChain(c2, refused.calls[0]?.outcome.json).find((x) => x.type === 'strand')?.outcome.code).toBe(0);
  });

  it('a missing chained plugin is left out of the list, with a reason naming it and what is lost', async () => {
    const plan = await planConflist({ binDirs: [bin], chained: CHAINED_PLUGINS });
    expect(plan.chained).toEqual([]);
    expect(plan.problems).toHaveLength(1);
    expect(plan.problems[0]).toContain(`CNI plugin portmap is not in ${bin}`);
    expect(plan.problems[0]).toContain('hostPort');
    const list = await agentConflist();
    expect(list.plugins.map((p) => p.type)).toEqual(['strand']);
    // strand alone: every version it offers.
    expect(list.cniVersions).toEqual(['0.3.1', '0.4.0', '1.0.0', '1.1.0']);
    expect(list.cniVersion).toBe('1.0.0');
    expect(libcniPick(list)).toBe('1.1.0');
    const pod = f.pod();
    const c = chain(list, libcniPick(list), pod, f.containerId());
    const added = addChain(c);
    expectOk(added.outcome, 'ADD strand');
    for (const call of delChain(c, added.outcome.json)) expectOk(call.outcome, `DEL ${call.type}`);
  });
});
