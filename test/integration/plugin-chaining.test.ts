// dist/strand among the reference plugins, as a runtime runs a conflist: the reference portmap
// consumes Strand's result as its prevResult (and really forwards a host port to the pod), strand
// delegates IPAM to the reference host-local, and results come out in the shape of each version.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REFERENCE_CNI_DIR, type CniOutcome } from '../support/cni.ts';
import type { TestNetns } from '../support/netns.ts';
import { nthAddress4, ping, PluginFixture, randomSubnet4, randomSubnet6, sh } from '../support/plugin-fixture.ts';

const PORTMAP = `${REFERENCE_CNI_DIR}/portmap`;

let f: PluginFixture;
afterEach(() => f.teardown());

function expectOk(r: CniOutcome): void {
  expect(r.code, r.stdout + r.stderr).toBe(0);
}

describe('chained with the reference portmap', () => {
  let server: ChildProcess | undefined;
  beforeEach(() => {
    // portmap writes iptables rules where it runs: both plugins run in a test "host" namespace.
    f = new PluginFixture({ hostNetns: true });
  });
  afterEach(() => {
    server?.kill('SIGKILL');
    server = undefined;
  });

  /** A TCP server in the pod that answers every connection with `reply`; resolves once listening. */
  function serve(pod: TestNetns, port: number, reply: string): Promise<void> {
    const code = `require('net').createServer((s) => s.end(${JSON.stringify(reply)})).listen(${port}, () => console.log('listening'))`;
    server = spawn('ip', ['netns', 'exec', pod.name, process.execPath, '-e', code], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const child = server;
    return new Promise((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
      child.on('exit', (c) => reject(new Error(`server exited ${c}`)));
    });
  }

  /** Connects from a pod to address:port and returns what the server sent. */
  function fetch(pod: TestNetns, address: string, port: number): string {
    const code = `const s = require('net').connect(${port}, ${JSON.stringify(address)}); let d = ''; s.on('data', (x) => (d += x)); s.on('end', () => process.stdout.write(d)); s.setTimeout(3000, () => process.exit(2));`;
    return pod.exec(process.execPath, ['-e', code]);
  }

  it("portmap ADD takes strand's result as prevResult, forwards the host port to the pod, and DEL removes its rules", async () => {
    const subnet = randomSubnet4();
    const gw = nthAddress4(subnet, 1);
    const host = f.host as TestNetns;
    const conf = f.v4Config(subnet, { cniVersion: '1.0.0' });
    // A new namespace inherits the root's ip_forward: start from off to see isGateway turn it on.
    host.exec('sh', ['-c', 'echo 0 > /proc/sys/net/ipv4/ip_forward']);
    const [pod, client] = [f.pod(), f.pod()];
    const [id, clientId] = [f.containerId(), f.containerId()];
    const added = f.add(conf, pod, id);
    expectOk(added);
    expectOk(f.add(conf, client, clientId));
    const podIp = nthAddress4(subnet, 2);
    // isGateway turned forwarding on in the host namespace.
    expect(host.exec('cat', ['/proc/sys/net/ipv4/ip_forward']).trim()).toBe('1');

    const mappings = [{ hostPort: 18080, containerPort: 8080, protocol: 'tcp' }];
    const portmap = {
      cniVersion: '1.0.0',
      name: f.network,
      type: 'portmap',
      capabilities: { portMappings: true },
      runtimeConfig: { portMappings: mappings },
    };
    const chained = f.run(
      {
        command: 'ADD',
        config: { ...portmap, prevResult: added.json },
        netns: pod.path,
        containerId: id,
        ifname: 'eth0',
      },
      PORTMAP,
    );
    expectOk(chained);
    // portmap passes strand's result on unchanged (CNI 1.1 §5 chaining).
    expect(chained.json.cniVersion).toBe('1.0.0');
    expect(chained.json.interfaces).toEqual(added.json.interfaces);
    expect(chained.json.ips).toEqual(added.json.ips);
    expect(chained.json.routes).toEqual(added.json.routes);
    // It found the pod's address through strand's interfaces[2] (sandbox set): the DNAT is to it.
    const nat = () => host.exec('iptables', ['-t', 'nat', '-S']);
    expect(nat()).toContain(`--to-destination ${podIp}:8080`);

    // Real traffic: the other pod reaches the pod through the host port on the gateway address.
    await serve(pod, 8080, 'hello from the pod');
    expect(fetch(client, gw, 18080)).toBe('hello from the pod');

    const removed = f.run(
      {
        command: 'DEL',
        config: { ...portmap, prevResult: chained.json },
        netns: pod.path,
        containerId: id,
        ifname: 'eth0',
      },
      PORTMAP,
    );
    expectOk(removed);
    expect(nat()).not.toContain('18080');
    expectOk(f.del({ ...conf, prevResult: chained.json }, pod, id));
    expect(f.link(f.hostVeth(id))).toBeUndefined();
    expect(f.reservedAddresses()).toEqual([nthAddress4(subnet, 3)]);
  });
});

describe('IPAM delegated to the reference host-local', () => {
  beforeEach(() => {
    f = new PluginFixture();
  });

  it('ADD, CHECK and DEL go through host-local, whose reservation is in its own format', () => {
    const subnet = randomSubnet4();
    // The Debian reference plugins speak up to CNI 1.0.0.
    const conf = f.config({ type: 'host-local', subnet }, { cniVersion: '1.0.0' });
    const pod = f.pod();
    const id = f.containerId();
    const added = f.add(conf, pod, id);
    expectOk(added);
    const address = nthAddress4(subnet, 2);
    expect(added.json.ips).toEqual([{ address: `${address}/24`, gateway: nthAddress4(subnet, 1), interface: 2 }]);
    expect(
      f
        .addresses('eth0', pod.name)
        .filter((a) => a.family === 'inet')
        .map((a) => a.local),
    ).toEqual([address]);
    expect(readFileSync(join(f.storeDir, address), 'utf8')).toBe(`${id}\r\neth0`);
    const p = ping(pod, nthAddress4(subnet, 1));
    expect(p.status, p.output).toBe(0);

    expectOk(f.check(conf, added.json, pod, id));
    expectOk(f.del({ ...conf, prevResult: added.json }, pod, id));
    expect(f.reservedAddresses()).toEqual([]);
    // host-local's own CHECK now fails, and strand passes its error on.
    const pod2 = f.pod();
    const id2 = f.containerId();
    const again = f.add(conf, pod2, id2);
    expectOk(again);
    sh('rm', [join(f.storeDir, nthAddress4(subnet, 3))]);
    const checked = f.check(conf, again.json, pod2, id2);
    expect(checked.code).not.toBe(0);
    expect(checked.json.msg).toContain(`Failed to find address added by container ${id2}`);
  });
});

describe('results in the shape of the requested version', () => {
  beforeEach(() => {
    f = new PluginFixture();
  });

  for (const version of ['0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
    it(`cniVersion ${version}`, () => {
      const subnet = randomSubnet4();
      const conf = f.config({ ranges: [[{ subnet }], [{ subnet: randomSubnet6() }]] }, { cniVersion: version });
      const pod = f.pod();
      const id = f.containerId();
      const r = f.add(conf, pod, id);
      expectOk(r);
      expect(r.json.cniVersion).toBe(version);
      const pre1 = version.startsWith('0.');
      for (const ip of r.json.ips) {
        if (pre1) expect(ip.version).toBe(ip.address.includes(':') ? '6' : '4');
        else expect(ip).not.toHaveProperty('version');
        expect(ip.interface).toBe(2);
      }
      expect(r.json.ips).toHaveLength(2);
      for (const i of r.json.interfaces) {
        if (version === '1.1.0' && i.name !== f.bridge) expect(i.mtu).toBe(1500);
        else expect(i).not.toHaveProperty('mtu');
      }
      expect(r.json.interfaces.map((i: { name: string }) => i.name)).toEqual([f.bridge, f.hostVeth(id), 'eth0']);
      // CHECK exists from 0.4.0 on (reference skel: code 1 before).
      const checked = f.check(conf, r.json, pod, id);
      if (version === '0.3.1') expect(checked.json).toMatchObject({ code: 1 });
      else expectOk(checked);
      expectOk(f.del({ ...conf, prevResult: r.json }, pod, id));
    });
  }
});
