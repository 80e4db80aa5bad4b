// strand-ipam and the reference host-local (Debian's containernetworking-plugins) on one data
// directory: each reads, releases and skips what the other wrote, round robin continues across
// them, file names agree byte for byte, and their flocks exclude each other.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseIp } from '../../src/ipam/range.ts';
import {
  REFERENCE_CNI_DIR,
  runPlugin,
  runPluginAsync,
  STRAND_IPAM,
  type CniCall,
  type CniOutcome,
} from '../support/cni.ts';

const HOST_LOCAL = `${REFERENCE_CNI_DIR}/host-local`;
const NET = 'interop';
let dataDir: string;
let storeDir: string;

/** Debian's reference plugins, installed on first use when the machine lacks them (scripts/setup.sh does it in CI). */
function ensureReferencePlugins(): void {
  if (existsSync(HOST_LOCAL)) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore' });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'containernetworking-plugins'], {
    env,
    stdio: 'ignore',
  });
}

beforeAll(() => ensureReferencePlugins(), 300_000);
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'strand-ipam-interop-'));
  storeDir = join(dataDir, NET);
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

type Plugin = 'strand' | 'host-local';
const binary = (p: Plugin): string => (p === 'strand' ? STRAND_IPAM : HOST_LOCAL);

/** The same network configuration for both plugins; only ipam.type differs. Debian's host-local speaks up to 1.0.0. */
function config(p: Plugin, ipam: Record<string, unknown>): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: NET,
    type: 'bridge',
    ipam: { type: p === 'strand' ? 'strand-ipam' : 'host-local', dataDir, ...ipam },
  };
}

function request(
  p: Plugin,
  command: CniCall['command'],
  ipam: Record<string, unknown>,
  containerId: string,
  args?: string,
): CniCall {
  const c: CniCall = { command, containerId, ifname: 'eth0', netns: '/var/run/netns/none', config: config(p, ipam) };
  if (args !== undefined) c.args = args;
  return c;
}

function run(
  p: Plugin,
  command: CniCall['command'],
  ipam: Record<string, unknown>,
  containerId: string,
  args?: string,
): CniOutcome {
  return runPlugin(binary(p), request(p, command, ipam, containerId, args));
}

function ok(r: CniOutcome): CniOutcome {
  expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
  return r;
}

/** ADD and return the addresses it answered, space separated. */
const add = (p: Plugin, ipam: Record<string, unknown>, id: string, args?: string): string =>
  ok(run(p, 'ADD', ipam, id, args))
    .json.ips.map((i: { address: string }) => i.address)
    .join(' ');

const addressFiles = (): string[] =>
  readdirSync(storeDir)
    .filter((n) => parseIp(n) !== undefined)
    .sort();

const v4 = { subnet: '10.50.0.0/24' };

describe('a data dir written by host-local, used by strand-ipam', () => {
  it('strand-ipam continues round robin after host-local, skips its addresses, checks and releases them', () => {
    expect(add('host-local', v4, 'hl-1')).toBe('10.50.0.2/24');
    expect(add('host-local', v4, 'hl-2')).toBe('10.50.0.3/24');
    ok(run('host-local', 'DEL', v4, 'hl-1'));
    // .2 is free again, but round robin continues after host-local's last_reserved_ip (.3).
    expect(add('strand', v4, 'st-1')).toBe('10.50.0.4/24');
    // CHECK finds host-local's reservation; DEL releases it.
    ok(run('strand', 'CHECK', v4, 'hl-2'));
    ok(run('strand', 'DEL', v4, 'hl-2'));
    expect(addressFiles()).toEqual(['10.50.0.4']);
    expect(readFileSync(join(storeDir, 'last_reserved_ip.0'), 'utf8')).toBe('10.50.0.4');
  });

  it('strand-ipam never hands out an address host-local holds', () => {
    const small = { subnet: '10.51.0.0/29' }; // .2-.6
    for (const id of ['h1', 'h2', 'h3']) add('host-local', small, id);
    ok(run('host-local', 'DEL', small, 'h1')); // .2 free
    // Two more fit (.5, .6, then wrap to .2); the next finds the range full of host-local's addresses.
    expect(['s1', 's2', 's3'].map((id) => add('strand', small, id))).toEqual([
      '10.51.0.5/29',
      '10.51.0.6/29',
      '10.51.0.2/29',
    ]);
    const full = run('strand', 'ADD', small, 's4');
    expect(full.json).toMatchObject({
      code: 100,
      msg: 'failed to allocate for range 0: no IP addresses available in range set: 10.51.0.1-10.51.0.6',
    });
  });

  it('strand-ipam releases a legacy reservation that holds only the container ID', () => {
    mkdirSync(storeDir, { recursive: true });
    writeFileSync(join(storeDir, '10.50.0.9'), 'legacy-ctr');
    ok(run('strand', 'CHECK', v4, 'legacy-ctr'));
    ok(run('strand', 'DEL', v4, 'legacy-ctr'));
    expect(addressFiles()).toEqual([]);
  });
});

describe('a data dir written by strand-ipam, used by host-local', () => {
  it('host-local continues after strand-ipam, skips, checks and releases its reservations', () => {
    expect(add('strand', v4, 's-1')).toBe('10.50.0.2/24');
    expect(add('strand', v4, 's-2')).toBe('10.50.0.3/24');
    ok(run('strand', 'DEL', v4, 's-1'));
    expect(add('host-local', v4, 'h-1')).toBe('10.50.0.4/24');
    ok(run('host-local', 'CHECK', v4, 's-2'));
    ok(run('host-local', 'DEL', v4, 's-2'));
    expect(addressFiles()).toEqual(['10.50.0.4']);
    // And back: strand continues after host-local's reservation.
    expect(add('strand', v4, 's-3')).toBe('10.50.0.5/24');
    expect(readFileSync(join(storeDir, '10.50.0.4'), 'utf8')).toBe('h-1\r\neth0');
    expect(readFileSync(join(storeDir, '10.50.0.5'), 'utf8')).toBe('s-3\r\neth0');
  });

  it('dual-stack: both name IPv6 files identically (a requested address held by one is refused by the other)', () => {
    const dual = { ranges: [[{ subnet: '10.52.0.0/24' }], [{ subnet: 'fd00::/16' }]] };
    // Addresses whose text depends on RFC 5952 details: which zero run is compressed, single zero groups.
    const tricky = ['fd00:50::1:0:0:5', 'fd00:0:0:1::6', 'fd00:50:0:1:1:1:1:1', 'fd00:0:0:a::7'];
    tricky.forEach((ip, i) => {
      const [owner, other] = (i % 2 === 0 ? ['strand', 'host-local'] : ['host-local', 'strand']) as [Plugin, Plugin];
      const got = add(owner, dual, `own-${i}`, `IP=${ip}`);
      // A refused ADD still moved the IPv4 set's last_reserved_ip on (the reference rolls back the
      // reservation, not the round-robin position), so only the IPv6 address is predictable here.
      expect(got).toMatch(new RegExp(`^10\\.52\\.0\\.\\d+/24 ${ip}/16$`));
      const refused = run(other, 'ADD', dual, `steal-${i}`, `IP=${ip}`);
      expect(refused.code, `${other} was given ${ip} held by ${owner}`).not.toBe(0);
      expect(refused.json.msg).toContain(`requested IP address ${ip} is not available`);
    });
    expect(addressFiles().filter((n) => n.includes(':'))).toEqual([...tricky].sort());
    // Round robin in the IPv6 set continues after the last requested address, whoever wrote it.
    expect(readFileSync(join(storeDir, 'last_reserved_ip.1'), 'utf8')).toBe('fd00:0:0:a::7');
    expect(add('strand', dual, 'next-s')).toMatch(/ fd00:0:0:a::8\/16$/);
    expect(add('host-local', dual, 'next-h')).toMatch(/ fd00:0:0:a::9\/16$/);
    // A request written in another form still lands on Go's name for the address.
    expect(add('strand', dual, 'upper', 'IP=FD00:0:0:B:0:0:0:7')).toMatch(/ fd00:0:0:b::7\/16$/);
    expect(run('host-local', 'ADD', dual, 'steal-upper', 'IP=fd00:0:0:b::7').json.msg).toContain(
      'requested IP address fd00:0:0:b::7 is not available',
    );
    ok(run('strand', 'DEL', dual, 'upper'));
  });
});

describe('both plugins at once on one directory', () => {
  it('their flocks exclude each other: 15 + 15 parallel ADDs get 30 distinct addresses', async () => {
    const calls = Array.from({ length: 30 }, (_, i) => {
      const p: Plugin = i % 2 === 0 ? 'strand' : 'host-local';
      return runPluginAsync(binary(p), request(p, 'ADD', v4, `mix-${i}`));
    });
    const results = await Promise.all(calls);
    for (const r of results) ok(r);
    const addresses = results.map((r) => r.json.ips[0].address as string);
    expect(new Set(addresses).size).toBe(30);
    const files = addressFiles();
    expect(files).toHaveLength(30);
    const owners = files.map((f) => readFileSync(join(storeDir, f), 'utf8')).sort();
    expect(owners).toEqual(Array.from({ length: 30 }, (_, i) => `mix-${i}\r\neth0`).sort());
  });
});
