// dist/cni/strand DEL when CNI_NETNS names the plugin's own network namespace (issue 16 item 5): a
// runtime that passes a recycled /proc/<pid>/ns/net, or a bug. A DEL must answer as for a namespace
// that is gone (release the address, remove the host veth of the attachment by its derived name)
// and never delete CNI_IFNAME from the host. Every way of naming the host's namespace is tried: the
// plugin's /proc/self, another host process's /proc/<pid>, and a bind mount under /run/netns.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testName } from '../support/names.ts';
import { PluginFixture, randomSubnet4, sh, trySh } from '../support/plugin-fixture.ts';

let f: PluginFixture;
let conf: Record<string, unknown>;
/** A bind mount of the host's network namespace at /run/netns/<name>, removed in teardown. */
let hostAlias: string;
beforeEach(() => {
  f = new PluginFixture();
  conf = f.v4Config(randomSubnet4());
  hostAlias = testName('hns');
  // The test process runs in the root namespace, as the plugin does: this mounts that namespace.
  sh('ip', ['netns', 'attach', hostAlias, String(process.pid)]);
});
afterEach(() => {
  // Unmounts the alias only: the root namespace lives on through its processes.
  trySh('ip', ['netns', 'del', hostAlias]);
  f.teardown();
});

/** A throwaway host interface of a test-prefixed name, as the report used (a bridge). */
// ifb rather than dummy: this kernel has no dummy driver.
function hostInterface(kind: 'bridge' | 'ifb'): string {
  const name = testName('hif');
  sh('ip', ['link', 'add', name, 'type', kind]);
  f.trackLink(name);
  return name;
}

const hostNamespaces: [string, () => string][] = [
  ["the plugin's own /proc/self/ns/net", () => '/proc/self/ns/net'],
  ['/proc/<pid>/ns/net of another process in the host namespace', () => `/proc/${process.pid}/ns/net`],
  ['a bind mount of the host namespace under /run/netns', () => `/run/netns/${hostAlias}`],
];

describe('strand DEL with CNI_NETNS naming the host namespace', () => {
  it.each(hostNamespaces)(
    '%s: the host interface named by CNI_IFNAME survives; the attachment is released',
    (_, netns) => {
      const ifname = hostInterface('bridge');
      // An attachment whose CNI_IFNAME is the host interface's name: its host veth and address exist.
      const pod = f.pod();
      const containerId = f.containerId();
      const added = f.add(conf, pod, containerId, ifname);
      expect(added.code, added.stdout + added.stderr).toBe(0);
      expect(f.reservedAddresses()).toHaveLength(1);
      expect(f.link(f.hostVeth(containerId, ifname))).toBeDefined();

      const r = f.del(conf, netns(), containerId, ifname);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(f.link(ifname)?.linkinfo?.info_kind).toBe('bridge');
      expect(f.reservedAddresses()).toEqual([]);
      expect(f.link(f.hostVeth(containerId, ifname))).toBeUndefined();
      expect(f.link(f.bridge)?.linkinfo?.info_kind).toBe('bridge');
    },
  );

  it.each(hostNamespaces)('%s, before any ADD: succeeds and the host interface survives', (_, netns) => {
    const ifname = hostInterface('ifb');
    const r = f.del(conf, netns(), f.containerId(), ifname);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // Only the named link is compared: other tests add and remove host links at the same time.
    expect(f.link(ifname)?.linkinfo?.info_kind).toBe('ifb');
  });

  it('CHECK and ADD refuse the bind-mounted host namespace with code 4 and leave the interface', () => {
    const ifname = hostInterface('ifb');
    const netns = `/run/netns/${hostAlias}`;
    const add = f.add(conf, netns, f.containerId(), ifname);
    expect(add.code, add.stdout + add.stderr).not.toBe(0);
    expect(add.json).toMatchObject({ code: 4 });
    const check = f.check(
      conf,
      { cniVersion: '1.1.0', interfaces: [{ name: ifname, sandbox: netns }] },
      netns,
      f.containerId(),
      ifname,
    );
    expect(check.code, check.stdout + check.stderr).not.toBe(0);
    expect(check.json).toMatchObject({ code: 4 });
    expect(f.link(ifname)?.linkinfo?.info_kind).toBe('ifb');
    expect(f.reservedAddresses()).toEqual([]);
  });
});
