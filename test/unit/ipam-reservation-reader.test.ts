// The incremental read of an IPAM store (ReservationReader, src/ipam/reservation-reader.ts): what it returns is
// always what readReservations (every file read) returns, and an unchanged file is not read again.
// The store is written through IpamStore, the plugin's own write path.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseIp, type IpAddr } from '../../src/ipam/range.ts';
import { ReservationReader } from '../../src/ipam/reservation-reader.ts';
import { readReservations, withStore, type Reservation } from '../../src/ipam/store.ts';

const NET = 'reader-net';
let dataDir: string;
let dir: string;

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'strand-ipam-reader-'));
  dir = join(dataDir, NET);
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

const ip = (s: string): IpAddr => parseIp(s) as IpAddr;
/** Far enough ahead that every file and the directory count as settled. */
const later = () => Date.now() + 60_000;

function reserve(addr: string, containerID: string, ifname = 'eth0'): Promise<boolean> {
  return withStore(dataDir, NET, (s) => s.reserve(ip(addr), { containerID, ifname }, 0));
}

function release(containerID: string, ifname = 'eth0'): Promise<string[]> {
  return withStore(dataDir, NET, (s) => s.releaseAttachment({ containerID, ifname }).map((r) => r.name));
}

const view = (rs: readonly Reservation[]) => rs.map((r) => `${r.name}=${r.containerID}/${r.ifname ?? '-'}`).sort();

/** Reads with `reader` and checks the answer against a full read of the store. */
function readChecked(
  reader: ReservationReader,
  now?: number,
): { reservations: readonly Reservation[]; version: number } {
  const got = reader.read(now);
  expect(view(got.reservations)).toEqual(view(readReservations(dir)));
  return got;
}

describe('ReservationReader', () => {
  it('reads a store that does not exist yet as empty, then the addresses reserved in it', async () => {
    const reader = new ReservationReader(dir);
    expect(readChecked(reader).reservations).toEqual([]);
    expect(await reserve('10.9.0.2', 'ctr-a')).toBe(true);
    expect(view(readChecked(reader).reservations)).toEqual(['10.9.0.2=ctr-a/eth0']);
  });

  it('keeps an unchanged file and list as they were: the same objects, the same version', async () => {
    await reserve('10.9.0.2', 'ctr-a');
    await reserve('10.9.0.3', 'ctr-b');
    const reader = new ReservationReader(dir);
    const first = readChecked(reader, later());
    const again = readChecked(reader, later());
    expect(again.version).toBe(first.version);
    expect(again.reservations).toBe(first.reservations);

    // A reservation added: the list moves, the file that did not change keeps its object.
    await reserve('10.9.0.4', 'ctr-c');
    const added = readChecked(reader, later());
    expect(added.version).toBeGreaterThan(first.version);
    expect(view(added.reservations)).toEqual(['10.9.0.2=ctr-a/eth0', '10.9.0.3=ctr-b/eth0', '10.9.0.4=ctr-c/eth0']);
    const byName = (rs: readonly Reservation[], name: string) => rs.find((r) => r.name === name);
    expect(byName(added.reservations, '10.9.0.2')).toBe(byName(first.reservations, '10.9.0.2'));
    expect(byName(added.reservations, '10.9.0.3')).toBe(byName(first.reservations, '10.9.0.3'));
  });

  it('drops a released address', async () => {
    await reserve('10.9.0.2', 'ctr-a');
    await reserve('10.9.0.3', 'ctr-b');
    const reader = new ReservationReader(dir);
    const first = readChecked(reader, later());
    expect(await release('ctr-a')).toEqual(['10.9.0.2']);
    const after = readChecked(reader, later());
    expect(after.version).toBeGreaterThan(first.version);
    expect(view(after.reservations)).toEqual(['10.9.0.3=ctr-b/eth0']);
  });

  it('sees an address released and reserved again by another container between two reads', async () => {
    await reserve('10.9.0.2', 'ctr-a');
    const reader = new ReservationReader(dir);
    // Read long after the file was written (settled): only a new inode or new times make it read again.
    const first = readChecked(reader, later());
    // Past the kernel's timestamp tick, as a file settled for real is (the inode may be reused).
    await new Promise((r) => setTimeout(r, 30));
    await release('ctr-a');
    expect(await reserve('10.9.0.2', 'ctr-b', 'net1')).toBe(true);
    const after = readChecked(reader, later());
    expect(after.version).toBeGreaterThan(first.version);
    expect(view(after.reservations)).toEqual(['10.9.0.2=ctr-b/net1']);

    // The same within one clock tick, read at the real time (nothing settled): read again each time.
    const reader2 = new ReservationReader(dir);
    readChecked(reader2);
    await release('ctr-b', 'net1');
    await reserve('10.9.0.2', 'ctr-c');
    expect(view(readChecked(reader2).reservations)).toEqual(['10.9.0.2=ctr-c/eth0']);
    await release('ctr-c');
    await reserve('10.9.0.2', 'ctr-d');
    expect(view(readChecked(reader2).reservations)).toEqual(['10.9.0.2=ctr-d/eth0']);
  });

  it('reads a damaged or half-written file as readReservations does, and again once it is whole', async () => {
    await reserve('10.9.0.2', 'ctr-a');
    await reserve('10.9.0.3', 'ctr-b');
    const reader = new ReservationReader(dir);
    readChecked(reader);
    // A writer that creates the file and then writes it (host-local: O_CREAT|O_EXCL, then write):
    // read while empty, then whole; and a file overwritten in place with garbage.
    writeFileSync(join(dir, '10.9.0.4'), '');
    writeFileSync(join(dir, '10.9.0.3'), 'garbage without a line break');
    expect(view(readChecked(reader).reservations)).toEqual([
      '10.9.0.2=ctr-a/eth0',
      '10.9.0.3=garbage without a line break/-',
      '10.9.0.4=/-',
    ]);
    writeFileSync(join(dir, '10.9.0.4'), 'ctr-c\r\neth0');
    expect(view(readChecked(reader).reservations)).toEqual([
      '10.9.0.2=ctr-a/eth0',
      '10.9.0.3=garbage without a line break/-',
      '10.9.0.4=ctr-c/eth0',
    ]);
    // Names that are not addresses, and an address name that is not a file, are skipped.
    writeFileSync(join(dir, 'not-an-address'), 'x');
    mkdirSync(join(dir, '10.9.0.5'));
    const settled = readChecked(reader, later());
    expect(settled.reservations.map((r) => r.name).sort()).toEqual(['10.9.0.2', '10.9.0.3', '10.9.0.4']);
    // A file that disappears between the listing and its read is skipped too (removed here first).
    rmSync(join(dir, '10.9.0.4'));
    expect(
      readChecked(reader, later())
        .reservations.map((r) => r.name)
        .sort(),
    ).toEqual(['10.9.0.2', '10.9.0.3']);
  });
});
