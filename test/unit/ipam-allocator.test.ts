// The allocator and the on-disk store against real temp directories: host-local's file format,
// round robin across calls, requested addresses, exhaustion without leaks, release, the flock.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CniError, ErrorCode } from '../../src/cni/errors.ts';
import { allocate, rangeSetUsage, type Allocation } from '../../src/ipam/allocator.ts';
import {
  canonicalizeRangeSet,
  formatIp,
  parseIp,
  type IpAddr,
  type RangeInput,
  type RangeSet,
} from '../../src/ipam/range.ts';
import { IpamStore, readReservations, withStore } from '../../src/ipam/store.ts';
import { TEMP_PREFIX } from '../../src/util/atomic-file.ts';

const NET = 'alloc-net';
let dataDir: string;
let dir: string;

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'strand-ipam-alloc-'));
  dir = join(dataDir, NET);
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

const set = (...ranges: RangeInput[]): RangeSet => canonicalizeRangeSet(ranges);
const ip = (s: string): IpAddr => parseIp(s) as IpAddr;
const who = (containerID: string, ifname = 'eth0') => ({ containerID, ifname });
const text = (a: Allocation[]): string[] => a.map((x) => formatIp(x.ip));

function add(sets: RangeSet[], id: string, ifname = 'eth0', requested: IpAddr[] = []): Promise<string[]> {
  return withStore(dataDir, NET, (s) => text(allocate(s, sets, who(id, ifname), requested)));
}

async function addError(sets: RangeSet[], id: string, requested: IpAddr[] = []): Promise<CniError> {
  try {
    await add(sets, id, 'eth0', requested);
  } catch (err) {
    expect(err).toBeInstanceOf(CniError);
    return err as CniError;
  }
  throw new Error('expected the allocation to fail');
}

function del(id: string, ifname = 'eth0'): Promise<string[]> {
  return withStore(dataDir, NET, (s) => s.releaseAttachment(who(id, ifname)).map((r) => r.name));
}

/** The address files, sorted, without lock and last_reserved_ip.*. */
function addressFiles(): string[] {
  return readdirSync(dir)
    .filter((n) => parseIp(n) !== undefined)
    .sort();
}

describe('store format (host-local disk backend)', () => {
  it('one file per address, mode 0600, "<id>\\r\\n<ifname>", last_reserved_ip.<set>, a lock file', async () => {
    expect(await add([set({ subnet: '10.10.0.0/24' })], 'ctr-a', 'net0')).toEqual(['10.10.0.2']);
    expect(readFileSync(join(dir, '10.10.0.2'), 'utf8')).toBe('ctr-a\r\nnet0');
    expect(statSync(join(dir, '10.10.0.2')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'last_reserved_ip.0'), 'utf8')).toBe('10.10.0.2');
    expect(readdirSync(dir).sort()).toEqual(['10.10.0.2', 'last_reserved_ip.0', 'lock']);
  });

  it('names IPv6 files as Go prints the address', async () => {
    expect(await add([set({ subnet: 'fd00:10:0:1::/64', rangeStart: 'fd00:10:0:1::a' })], 'c6')).toEqual([
      'fd00:10:0:1::a',
    ]);
    expect(existsSync(join(dir, 'fd00:10:0:1::a'))).toBe(true);
    expect(readFileSync(join(dir, 'last_reserved_ip.0'), 'utf8')).toBe('fd00:10:0:1::a');
  });
});

describe('allocate', () => {
  it('round robin: A, B allocated, A released, C gets the next address, not A', async () => {
    const sets = [set({ subnet: '10.10.0.0/24' })];
    expect(await add(sets, 'A')).toEqual(['10.10.0.2']);
    expect(await add(sets, 'B')).toEqual(['10.10.0.3']);
    expect(await del('A')).toEqual(['10.10.0.2']);
    expect(await add(sets, 'C')).toEqual(['10.10.0.4']);
  });

  it('wraps around to freed addresses once the end of the range is reached', async () => {
    const sets = [set({ subnet: '10.10.0.0/29' })]; // .2-.6
    for (const id of ['a', 'b', 'c', 'd', 'e']) await add(sets, id);
    await del('b');
    expect(await add(sets, 'f')).toEqual(['10.10.0.3']);
  });

  it('skips addresses taken by others, whoever wrote them', async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '10.10.0.2'), 'other\r\neth0');
    writeFileSync(join(dir, '10.10.0.3'), 'legacy-only-id');
    expect(await add([set({ subnet: '10.10.0.0/24' })], 'x')).toEqual(['10.10.0.4']);
  });

  it('dual-stack: one address per range set, each set with its own last_reserved_ip', async () => {
    const sets = [set({ subnet: '10.10.0.0/24' }), set({ subnet: 'fd00:10::/64' })];
    expect(await add(sets, 'a')).toEqual(['10.10.0.2', 'fd00:10::2']);
    expect(await add(sets, 'b')).toEqual(['10.10.0.3', 'fd00:10::3']);
    expect(readFileSync(join(dir, 'last_reserved_ip.0'), 'utf8')).toBe('10.10.0.3');
    expect(readFileSync(join(dir, 'last_reserved_ip.1'), 'utf8')).toBe('fd00:10::3');
  });

  it('a set of several ranges moves on to the next range when one is full', async () => {
    const sets = [set({ subnet: '10.10.0.0/30' }, { subnet: '10.10.1.0/30' })];
    expect(await add(sets, 'a')).toEqual(['10.10.0.2']);
    expect(await add(sets, 'b')).toEqual(['10.10.1.2']);
  });

  it('returns the range with the address: prefix length and gateway for the result', async () => {
    const got = await withStore(dataDir, NET, (s) =>
      allocate(s, [set({ subnet: '10.10.0.0/22', gateway: '10.10.3.254' })], who('g')),
    );
    expect(got[0]!.range.subnet.prefix).toBe(22);
    expect(formatIp(got[0]!.range.gateway)).toBe('10.10.3.254');
    expect(got[0]!.rangeSetIndex).toBe(0);
  });

  it('exhaustion: code 100 with the reference message, and earlier sets are released (no leak)', async () => {
    const sets = [set({ subnet: '10.10.0.0/24' }), set({ subnet: '10.20.0.0/30' })];
    expect(await add(sets, 'first')).toEqual(['10.10.0.2', '10.20.0.2']);
    const err = await addError(sets, 'second');
    expect(err.code).toBe(ErrorCode.AddressesExhausted);
    expect(err.message).toBe(
      'failed to allocate for range 1: no IP addresses available in range set: 10.20.0.1-10.20.0.2',
    );
    expect(addressFiles()).toEqual(['10.10.0.2', '10.20.0.2']);
  });

  it('refuses a second allocation for the same (containerID, ifname) in a set, and keeps the first', async () => {
    const sets = [set({ subnet: '10.10.0.0/24' })];
    await add(sets, 'dup');
    const err = await addError(sets, 'dup');
    expect(err.message).toBe(
      'failed to allocate for range 0: 10.10.0.2 has been allocated to dup, duplicate allocation is not allowed',
    );
    expect(addressFiles()).toEqual(['10.10.0.2']);
    // The same container on another interface is another attachment.
    expect(await add(sets, 'dup', 'eth1')).toEqual(['10.10.0.3']);
  });

  it('requested addresses: granted in their set, others round robin', async () => {
    const sets = [set({ subnet: '10.10.0.0/24' }), set({ subnet: 'fd00:10::/64' })];
    expect(await add(sets, 'r', 'eth0', [ip('fd00:10::99')])).toEqual(['10.10.0.2', 'fd00:10::99']);
    expect(readFileSync(join(dir, 'last_reserved_ip.1'), 'utf8')).toBe('fd00:10::99');
  });

  it('requested address taken, the gateway, or in no set: errors, nothing leaked', async () => {
    const sets = [set({ subnet: '10.10.0.0/24' }), set({ subnet: '10.20.0.0/24' })];
    await add(sets, 'owner', 'eth0', [ip('10.20.0.50')]);
    const before = addressFiles();

    let err = await addError(sets, 'x', [ip('10.20.0.50')]);
    expect(err.message).toBe(
      'failed to allocate for range 1: requested IP address 10.20.0.50 is not available in range set 10.20.0.1-10.20.0.254',
    );
    err = await addError(sets, 'x', [ip('10.10.0.1')]);
    expect(err.message).toBe("failed to allocate for range 0: requested ip 10.10.0.1 is subnet's gateway");
    err = await addError(sets, 'x', [ip('192.168.7.7')]);
    expect(err.message).toBe('failed to allocate all requested IPs: 192.168.7.7');
    expect(addressFiles()).toEqual(before);
  });
});

describe('release', () => {
  it('releases by (containerID, ifname) only', async () => {
    const sets = [set({ subnet: '10.10.0.0/24' })];
    await add(sets, 'c', 'eth0');
    await add(sets, 'c', 'eth1');
    expect(await del('c', 'eth1')).toEqual(['10.10.0.3']);
    expect(addressFiles()).toEqual(['10.10.0.2']);
  });

  it('falls back to legacy files holding only the id, but only when no exact file matches', async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '10.10.0.7'), 'old-ctr\n');
    writeFileSync(join(dir, '10.10.0.8'), 'both\r\neth0');
    writeFileSync(join(dir, '10.10.0.9'), 'both');
    expect(await del('old-ctr')).toEqual(['10.10.0.7']);
    expect(await del('both')).toEqual(['10.10.0.8']);
    expect(addressFiles()).toEqual(['10.10.0.9']);
  });

  it('releasing what is not held succeeds and changes nothing (DEL is idempotent)', async () => {
    await add([set({ subnet: '10.10.0.0/24' })], 'a');
    expect(await del('nobody')).toEqual([]);
    expect(await del('a')).toEqual(['10.10.0.2']);
    expect(await del('a')).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(['last_reserved_ip.0', 'lock']);
  });

  it('holds() finds exact and legacy reservations', async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '10.10.0.7'), 'legacy');
    await add([set({ subnet: '10.10.0.0/24' })], 'new', 'eth3');
    await withStore(dataDir, NET, (s) => {
      expect(s.holds(who('new', 'eth3'))).toBe(true);
      expect(s.holds(who('new', 'eth0'))).toBe(false);
      expect(s.holds(who('legacy', 'eth0'))).toBe(true);
      expect(s.holds(who('none'))).toBe(false);
    });
  });
});

describe('lock and crash leftovers', () => {
  it('takes a real flock(2) on <dir>/lock, the one host-local uses', async () => {
    const store = await IpamStore.open(dataDir, NET);
    try {
      const busy = spawnSync('flock', ['-n', '-E', '75', join(dir, 'lock'), 'true']);
      expect(busy.status).toBe(75);
    } finally {
      store.close();
    }
    expect(spawnSync('flock', ['-n', join(dir, 'lock'), 'true']).status).toBe(0);
  });

  it('waits a bounded time for a held lock, then fails with code 11; succeeds once it is free', async () => {
    const holder = await IpamStore.open(dataDir, NET);
    const started = Date.now();
    let caught: unknown;
    try {
      await IpamStore.open(dataDir, NET, { lockTimeoutMs: 300 });
    } catch (err) {
      caught = err;
    }
    const waited = Date.now() - started;
    expect(caught).toBeInstanceOf(CniError);
    expect((caught as CniError).code).toBe(ErrorCode.TryAgainLater);
    expect((caught as CniError).message).toMatch(new RegExp(`waiting for the IPAM lock ${dir}/lock`));
    expect(waited).toBeGreaterThanOrEqual(290);
    expect(waited).toBeLessThan(3000);
    // Released while another waits: the waiter gets it.
    const waiter = IpamStore.open(dataDir, NET, { lockTimeoutMs: 5000 });
    setTimeout(() => holder.close(), 100);
    (await waiter).close();
  });

  it('sweeps temp files left by a killed writer when it takes the lock', async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${TEMP_PREFIX}10.10.0.5.1234.abc`), 'half');
    writeFileSync(join(dir, `${TEMP_PREFIX}last_reserved_ip.0.1234.def`), '10.10.');
    await add([set({ subnet: '10.10.0.0/24' })], 'a');
    expect(readdirSync(dir).filter((n) => n.startsWith(TEMP_PREFIX))).toEqual([]);
  });
});

describe('rangeSetUsage', () => {
  it('counts reservations per set against capacity, gateways and foreign files excluded', async () => {
    const sets = [set({ subnet: '10.10.0.0/29' }), set({ subnet: 'fd00:10::/120' })];
    await add(sets, 'a');
    await add(sets, 'b');
    writeFileSync(join(dir, '10.99.0.1'), 'elsewhere\r\neth0');
    const usage = rangeSetUsage(sets, readReservations(dir));
    expect(usage).toEqual([
      { index: 0, family: 4, ranges: '10.10.0.1-10.10.0.6', capacity: 5n, used: 2, free: 3n },
      { index: 1, family: 6, ranges: 'fd00:10::1-fd00:10::ff', capacity: 254n, used: 2, free: 252n },
    ]);
  });

  it('reads an absent store as empty', () => {
    expect(readReservations(join(dataDir, 'never-created'))).toEqual([]);
  });
});
