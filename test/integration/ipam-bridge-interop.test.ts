// The reference bridge plugin with "ipam": {"type": "strand-ipam"}: bridge finds strand-ipam on
// CNI_PATH, execs it for ADD, CHECK and DEL, and the pod reaches its gateway with the address
// strand-ipam gave it. The bridge runs inside a test "host" namespace so that its bridge and its
// ip_forward sysctl stay out of the real host; both namespaces go away in afterEach, pass or fail.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CNI_BIN, REFERENCE_CNI_DIR, type CniOutcome } from '../support/cni.ts';
import { testName } from '../support/names.ts';
import { TestNetns } from '../support/netns.ts';
import { ipJson, trySh } from '../support/sh.ts';

const BRIDGE = `${REFERENCE_CNI_DIR}/bridge`;

/** Debian's reference plugins and ping, installed on first use when the machine lacks them. */
function ensureTools(): void {
  const need: string[] = [];
  if (!existsSync(BRIDGE)) need.push('containernetworking-plugins');
  if (spawnSync('ping', ['-V']).error) need.push('iputils-ping');
  if (need.length === 0) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore' });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...need], { env, stdio: 'ignore' });
}

let host: TestNetns | undefined;
let pod: TestNetns | undefined;
let bridgeName: string;
let dataDir: string;

beforeAll(() => ensureTools(), 300_000);
beforeEach(() => {
  host = TestNetns.create('host');
  pod = TestNetns.create('pod');
  bridgeName = testName('br');
  dataDir = mkdtempSync(join(tmpdir(), 'strand-ipam-bridge-'));
});
afterEach(() => {
  if (host) trySh('ip', ['-n', host.name, 'link', 'del', bridgeName]);
  pod?.destroy();
  host?.destroy();
  host = undefined;
  pod = undefined;
  rmSync(dataDir, { recursive: true, force: true });
});

/** Runs the reference bridge inside the test host namespace, as a runtime would run it on a node. */
function bridge(
  command: 'ADD' | 'CHECK' | 'DEL',
  config: Record<string, unknown>,
  containerId: string,
  ifname = 'eth0',
): CniOutcome {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: (pod as TestNetns).path,
    CNI_IFNAME: ifname,
    CNI_PATH: `${CNI_BIN}:${REFERENCE_CNI_DIR}`,
  };
  const r = spawnSync('ip', ['netns', 'exec', (host as TestNetns).name, BRIDGE], {
    env,
    input: JSON.stringify(config),
    encoding: 'utf8',
  });
  let json: unknown;
  try {
    json = r.stdout.trim() === '' ? undefined : JSON.parse(r.stdout);
  } catch {
    json = undefined;
  }
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json };
}

describe('reference bridge with strand-ipam', () => {
  it('ADD gives the pod an address from strand-ipam and it pings its gateway; CHECK and DEL go through strand-ipam', () => {
    const config = {
      cniVersion: '1.0.0',
      name: 'sttbridgenet',
      type: 'bridge',
      bridge: bridgeName,
      isGateway: true,
      ipam: { type: 'strand-ipam', subnet: '10.60.0.0/24', dataDir, routes: [{ dst: '0.0.0.0/0' }] },
    };
    const added = bridge('ADD', config, 'bridge-ctr');
    expect(added.code, added.stdout + added.stderr).toBe(0);
    expect(added.json.ips).toEqual([{ address: '10.60.0.2/24', gateway: '10.60.0.1', interface: 2 }]);
    expect(added.json.interfaces[0].name).toBe(bridgeName);

    // strand-ipam's reservation, in host-local's format.
    const store = join(dataDir, 'sttbridgenet');
    expect(readdirSync(store).sort()).toEqual(['10.60.0.2', 'last_reserved_ip.0', 'lock']);

    // The address and the default route are in the pod, and the gateway on the bridge answers.
    const addrs = ipJson<{ addr_info: { family: string; local: string; prefixlen: number }[] }[]>(
      ['addr', 'show', 'dev', 'eth0'],
      pod?.name,
    );
    expect(addrs[0]?.addr_info.filter((a) => a.family === 'inet')).toMatchObject([
      { local: '10.60.0.2', prefixlen: 24 },
    ]);
    const routes = ipJson<{ dst: string; gateway?: string }[]>(['route', 'show', 'default'], pod?.name);
    expect(routes).toMatchObject([{ dst: 'default', gateway: '10.60.0.1' }]);
    const ping = (pod as TestNetns).tryExec('ping', ['-c', '1', '-W', '2', '10.60.0.1']);
    expect(ping.status, ping.stdout + ping.stderr).toBe(0);

    // CHECK: bridge runs strand-ipam's CHECK with the ADD result as prevResult.
    const checked = bridge('CHECK', { ...config, prevResult: added.json }, 'bridge-ctr');
    expect(checked.code, checked.stdout + checked.stderr).toBe(0);

    // DEL removes the interface and releases the address; a second DEL succeeds too.
    for (let i = 0; i < 2; i++) {
      const deleted = bridge('DEL', { ...config, prevResult: added.json }, 'bridge-ctr');
      expect(deleted.code, deleted.stdout + deleted.stderr).toBe(0);
    }
    expect(readdirSync(store).sort()).toEqual(['last_reserved_ip.0', 'lock']);
    expect(trySh('ip', ['-n', (pod as TestNetns).name, 'link', 'show', 'eth0']).status).not.toBe(0);
  });

  it('a strand-ipam exhaustion error reaches the runtime through bridge; the DEL after it succeeds', () => {
    const config = {
      cniVersion: '1.0.0',
      name: 'sttbridgenet',
      type: 'bridge',
      bridge: bridgeName,
      isGateway: true,
      ipam: { type: 'strand-ipam', subnet: '10.61.0.0/30', dataDir },
    };
    const first = bridge('ADD', config, 'first');
    expect(first.code, first.stdout + first.stderr).toBe(0);
    // A second attachment (another interface in the pod) finds the /30 full; bridge passes the
    // message on (as its own code 999).
    const second = bridge('ADD', config, 'second', 'eth1');
    expect(second.code, second.stdout + second.stderr).not.toBe(0);
    expect(second.json.msg).toContain('no IP addresses available in range set: 10.61.0.1-10.61.0.2');
    // Only the first reservation exists.
    expect(readdirSync(join(dataDir, 'sttbridgenet')).filter((n) => /^\d/.test(n))).toEqual(['10.61.0.2']);
    // The runtime follows a failed ADD with DEL (CNI 1.1 §3): it succeeds though strand-ipam holds
    // nothing for the attachment, and removes the veth this bridge version leaves behind.
    const cleanup = bridge('DEL', config, 'second', 'eth1');
    expect(cleanup.code, cleanup.stdout + cleanup.stderr).toBe(0);
    expect(trySh('ip', ['-n', (pod as TestNetns).name, 'link', 'show', 'eth1']).status).not.toBe(0);
    expect(readdirSync(join(dataDir, 'sttbridgenet')).filter((n) => /^\d/.test(n))).toEqual(['10.61.0.2']);
  });
});
