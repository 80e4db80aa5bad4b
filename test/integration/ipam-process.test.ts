// dist/strand-ipam run as separate processes, as a container runtime runs it: concurrency through
// the flock, crash safety under kill -9, DEL idempotence, GC, usePodCidr, exhaustion and STATUS.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseIp } from '../../src/ipam/range.ts';
import { IpamStore } from '../../src/ipam/store.ts';
import { writeNodeState } from '../../src/contracts/node-state.ts';
import { TEMP_PREFIX } from '../../src/util/atomic-file.ts';
import { CNI_BIN, REFERENCE_CNI_DIR, runPlugin, runPluginAsync, STRAND_IPAM, type CniOutcome } from '../support/cni.ts';

const NET = 'ipamproc';
let root: string;
let dataDir: string;
let stateDir: string;
let storeDir: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'strand-ipam-proc-'));
  dataDir = join(root, 'data');
  stateDir = join(root, 'state');
  storeDir = join(dataDir, NET);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function config(ipam: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cniVersion: '1.1.0',
    name: NET,
    type: 'bridge',
    ipam: { type: 'strand-ipam', dataDir, stateDir, ...ipam },
    ...extra,
  };
}

const add = (conf: unknown, containerId: string, ifname = 'eth0'): CniOutcome =>
  runPlugin(STRAND_IPAM, { command: 'ADD', containerId, ifname, netns: '/var/run/netns/none', config: conf });
const del = (conf: unknown, containerId: string, ifname = 'eth0'): CniOutcome =>
  runPlugin(STRAND_IPAM, { command: 'DEL', containerId, ifname, config: conf });
const status = (conf: unknown): CniOutcome => runPlugin(STRAND_IPAM, { command: 'STATUS', config: conf });

/** Address files in the store, sorted. */
function addressFiles(): string[] {
  return readdirSync(storeDir)
    .filter((n) => parseIp(n) !== undefined)
    .sort();
}

/** Does process `pid` have `path` open (a link in /proc/<pid>/fd)? */
function hasOpen(pid: number, path: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === path;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function expectOk(r: CniOutcome): void {
  expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
}

describe('strand-ipam processes', () => {
  it('50 simultaneous ADDs from separate processes get 50 distinct addresses', async () => {
    const conf = config({ subnet: '10.40.0.0/24' });
    const ids = Array.from({ length: 50 }, (_, i) => `par-${i}`);
    const results = await Promise.all(
      ids.map((id) =>
        runPluginAsync(STRAND_IPAM, {
          command: 'ADD',
          containerId: id,
          ifname: 'eth0',
          netns: '/var/run/netns/none',
          config: conf,
        }),
      ),
    );
    for (const r of results) expectOk(r);
    const addresses = results.map((r) => r.json.ips[0].address as string);
    expect(new Set(addresses).size).toBe(50);
    for (const a of addresses) expect(a).toMatch(/^10\.40\.0\.\d+\/24$/);
    expect(addresses).not.toContain('10.40.0.1/24');
    // The store agrees with what the processes answered, one file per container.
    const files = addressFiles();
    expect(files).toHaveLength(50);
    const owners = files.map((f) => readFileSync(join(storeDir, f), 'utf8'));
    expect(new Set(owners)).toEqual(new Set(ids.map((id) => `${id}\r\neth0`)));
    // Round robin handed out .2-.51 with no gap: the lock serialised every reservation.
    expect(files).toEqual(Array.from({ length: 50 }, (_, i) => `10.40.0.${i + 2}`).sort());
  });

  it('kill -9 at random points during ADDs leaves no lock blocking the next caller and no half-written file', async () => {
    const conf = config({ subnet: '10.41.0.0/24' });
    const stdin = JSON.stringify(conf);
    const lockPath = join(storeDir, 'lock');
    // The test holds the store's lock while the plugins start, so that every one of them is past
    // its start-up and waiting for the lock when it is released: the kills then land while they
    // wait, reserve, write last_reserved_ip or print, not merely while Node starts.
    const holder = await IpamStore.open(dataDir, NET);
    const children = Array.from({ length: 30 }, (_, i) => {
      const id = `kill-${i}`;
      const child = spawn(STRAND_IPAM, [], {
        env: {
          PATH: process.env.PATH,
          CNI_COMMAND: 'ADD',
          CNI_CONTAINERID: id,
          CNI_IFNAME: 'eth0',
          CNI_NETNS: '/var/run/netns/none',
          CNI_PATH: `${CNI_BIN}:${REFERENCE_CNI_DIR}`,
        },
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stdin.on('error', () => {});
      child.stdin.end(stdin);
      const done = new Promise<{ id: string; killed: boolean; code: number | null; stdout: string }>((resolve) => {
        child.on('close', (code, signal) => resolve({ id, killed: signal === 'SIGKILL', code, stdout }));
      });
      return { id, child, done };
    });
    try {
      await waitFor(
        () => children.every(({ child }) => child.pid !== undefined && hasOpen(child.pid, lockPath)),
        60_000,
      );
    } finally {
      holder.close();
    }
    // Two in three are killed after a random delay, spread over the time all of them take.
    children.forEach(({ child }, i) => {
      if (i % 3 !== 0) setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 150));
    });
    const outcomes = await Promise.all(children.map((c) => c.done));
    expect(outcomes.filter((o) => o.killed).length).toBeGreaterThan(0);

    // The next caller is not blocked: a fresh ADD finishes promptly.
    const started = Date.now();
    const next = add(conf, 'after-the-kills');
    expectOk(next);
    expect(Date.now() - started).toBeLessThan(10_000);

    // No temp file survives the next ADD (it sweeps them under the lock), and every address file
    // is complete: "<id>\r\n<ifname>" for a container started here, at most one per container.
    expect(readdirSync(storeDir).filter((n) => n.startsWith(TEMP_PREFIX))).toEqual([]);
    const startedIds = new Set([...outcomes.map((o) => o.id), 'after-the-kills']);
    const holders = new Map<string, string>();
    for (const f of addressFiles()) {
      const content = readFileSync(join(storeDir, f), 'utf8');
      const m = /^([^\r\n]+)\r\neth0$/.exec(content);
      expect(m, `${f} holds ${JSON.stringify(content)}`).not.toBeNull();
      const id = (m as RegExpExecArray)[1] as string;
      expect(startedIds.has(id)).toBe(true);
      expect(holders.has(id), `${id} holds two addresses`).toBe(false);
      holders.set(id, f);
    }
    // Whoever finished got exactly the address it reported.
    for (const o of outcomes.filter((x) => x.code === 0)) {
      const reported = (JSON.parse(o.stdout).ips[0].address as string).split('/')[0];
      expect(holders.get(o.id)).toBe(reported);
    }
    expect(holders.get('after-the-kills')).toBe((next.json.ips[0].address as string).split('/')[0]);
    for (const name of readdirSync(storeDir).filter((n) => n.startsWith('last_reserved_ip.'))) {
      expect(parseIp(readFileSync(join(storeDir, name), 'utf8'))).toBeDefined();
    }
  });

  it('DEL twice, DEL of an unknown container: success with no output', () => {
    const conf = config({ subnet: '10.42.0.0/24' });
    expectOk(add(conf, 'twice'));
    for (const id of ['twice', 'twice', 'never-added']) {
      const r = del(conf, id);
      expectOk(r);
      expect(r.stdout).toBe('');
    }
    expect(addressFiles()).toEqual([]);
    // DEL without CNI_NETNS, for a network whose store does not exist yet.
    const other = { ...conf, name: 'ipamproc-other' };
    expectOk(del(other, 'nobody'));
  });

  it('CHECK after ADD succeeds with empty output; after DEL it fails with the reference message', () => {
    const conf = config({ subnet: '10.42.0.0/24' });
    expectOk(add(conf, 'chk'));
    const ok = runPlugin(STRAND_IPAM, {
      command: 'CHECK',
      containerId: 'chk',
      ifname: 'eth0',
      netns: '/var/run/netns/none',
      config: conf,
    });
    expectOk(ok);
    expect(ok.stdout).toBe('');
    expectOk(del(conf, 'chk'));
    const bad = runPlugin(STRAND_IPAM, {
      command: 'CHECK',
      containerId: 'chk',
      ifname: 'eth0',
      netns: '/var/run/netns/none',
      config: conf,
    });
    expect(bad.code).not.toBe(0);
    expect(bad.json.msg).toBe('host-local: Failed to find address added by container chk');
  });

  it('GC with a partial valid list releases the others and keeps the listed ones', () => {
    const conf = config({ subnet: '10.43.0.0/24' });
    for (const id of ['gc-a', 'gc-b', 'gc-c']) expectOk(add(conf, id));
    expectOk(add(conf, 'gc-a', 'net1'));
    const valid = [
      { containerID: 'gc-a', ifname: 'eth0' },
      { containerID: 'gc-c', ifname: 'eth0' },
    ];
    const r = runPlugin(STRAND_IPAM, {
      command: 'GC',
      config: { ...conf, 'cni.dev/valid-attachments': valid, 'cni.dev/attachments': valid },
    });
    expectOk(r);
    expect(r.stdout).toBe('');
    const owners = addressFiles().map((f) => readFileSync(join(storeDir, f), 'utf8'));
    expect(owners.sort()).toEqual(['gc-a\r\neth0', 'gc-c\r\neth0']);
    expect(existsSync(join(storeDir, 'lock'))).toBe(true);
    expect(existsSync(join(storeDir, 'last_reserved_ip.0'))).toBe(true);
  });

  it('usePodCidr: code 11 without the node state, the pod CIDRs (dual-stack) once the agent wrote it', () => {
    const conf = config({ subnet: 'usePodCidr' });
    const before = add(conf, 'pod1');
    expect(before.code).not.toBe(0);
    expect(before.json.code).toBe(11);
    expect(before.json.msg).toBe(
      `node state ${stateDir}/node.json not found: the strand agent has not written this node's pod CIDR yet`,
    );
    const st = status(conf);
    expect(st.json.code).toBe(50);

    writeNodeState(stateDir, {
      version: 1,
      nodeName: 'node-a',
      podCIDRs: ['10.244.7.0/24', 'fd00:244:7::/64'],
      clusterCIDRs: ['10.244.0.0/16', 'fd00:244::/56'],
      mtu: 1450,
      backend: 'vxlan',
      updatedAt: new Date().toISOString(),
    });
    const after = add(conf, 'pod1');
    expectOk(after);
    expect(after.json.ips).toEqual([
      { address: '10.244.7.2/24', gateway: '10.244.7.1' },
      { address: 'fd00:244:7::2/64', gateway: 'fd00:244:7::1' },
    ]);
    expectOk(status(conf));
  });

  it('exhaustion with a /30: the second ADD fails with code 100, STATUS says 50; after DEL both succeed', () => {
    const conf = config({ subnet: '10.44.0.0/30' });
    const first = add(conf, 'x1');
    expectOk(first);
    expect(first.json).toEqual({
      cniVersion: '1.1.0',
      ips: [{ address: '10.44.0.2/30', gateway: '10.44.0.1' }],
      dns: {},
    });
    const second = add(conf, 'x2');
    expect(second.code).not.toBe(0);
    expect(second.json).toEqual({
      cniVersion: '1.1.0',
      code: 100,
      msg: 'failed to allocate for range 0: no IP addresses available in range set: 10.44.0.1-10.44.0.2',
    });
    const st = status(conf);
    expect(st.code).not.toBe(0);
    expect(st.json.code).toBe(50);
    expect(st.json.msg).toBe('no IP addresses available in range set: 10.44.0.1-10.44.0.2');
    expectOk(del(conf, 'x1'));
    expectOk(status(conf));
    const third = add(conf, 'x2');
    expectOk(third);
    expect(third.json.ips[0].address).toBe('10.44.0.2/30');
  });

  it('answers in the requested cniVersion (0.3.1: ips carry version)', () => {
    const conf = { ...config({ subnet: '10.45.0.0/24' }), cniVersion: '0.3.1' };
    const r = add(conf, 'old');
    expectOk(r);
    expect(r.json).toEqual({
      cniVersion: '0.3.1',
      ips: [{ version: '4', address: '10.45.0.2/24', gateway: '10.45.0.1' }],
      dns: {},
    });
  });

  it('a configuration error is code 7 naming the field', () => {
    const r = add(config({ ranges: [[{ subnet: '10.46.0.0/24', rangeEnd: '10.47.0.9' }]] }), 'bad');
    expect(r.json.code).toBe(7);
    expect(r.json.msg).toBe('invalid range set 0 (ipam.ranges[0][0]): RangeEnd 10.47.0.9 not in network 10.46.0.0/24');
    const missing = add({ cniVersion: '1.1.0', name: NET, type: 'bridge' }, 'bad');
    expect(missing.json).toMatchObject({ code: 7, msg: "IPAM config missing 'ipam' key" });
  });
});
