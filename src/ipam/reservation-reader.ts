// The agent's incremental read of an IPAM store (store.ts's format): the reservations of a store
// that is looked at after every pod start, without reading every file each time. Read side only;
// the plugin's write path (store.ts) is what it relies on: address files link()ed in complete and
// unlink()ed out, never written in place.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseIp, type IpAddr } from './range.ts';
import { parseReservation, storeError, type Reservation } from './store.ts';

/** How long after its last change a file or directory is trusted to show the next change in its times. */
const SETTLE_MS = 1_000;

interface ReadFile {
  ino: number;
  ctimeMs: number;
  mtimeMs: number;
  size: number;
  /** Read when its ctime was more than SETTLE_MS old: a later change shows in the times. */
  settled: boolean;
  reservation: Reservation;
}

/**
 * The address files of one store, read again only where they changed: for a reader that looks at a
 * store over and over (the agent, after every pod start), where readReservations reads every file.
 * The directory's mtime says whether any name came or went (every reservation is link()ed in and
 * unlink()ed out, last_reserved_ip renamed over); a listing then stats each address file and reads
 * only a new name or one whose inode or times moved (an address released and reserved again by
 * another container is a new file under the same name). Times are kept by the kernel at a clock
 * tick's granularity and an inode number can be reused at once, so what changed within the last
 * second is read again on the next look rather than trusted. Never takes the store's lock, like
 * readReservations: a file is either absent or complete.
 */
export class ReservationReader {
  readonly dir: string;
  private files = new Map<string, ReadFile>();
  private dirMtime: number | undefined;
  private dirSettled = false;
  private list: readonly Reservation[] = [];
  private version = 0;

  constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * The store's reservations now. The same array (and the same objects for unchanged files) comes
   * back while nothing changed; `version` moves whenever the list did.
   */
  read(now = Date.now()): { reservations: readonly Reservation[]; version: number } {
    const mtime = statSync(this.dir, { throwIfNoEntry: false })?.mtimeMs;
    if (mtime !== undefined && this.dirSettled && mtime === this.dirMtime && this.allSettled()) {
      return { reservations: this.list, version: this.version };
    }
    this.dirMtime = mtime;
    this.dirSettled = mtime !== undefined && now - mtime > SETTLE_MS;
    let names: string[];
    try {
      names = mtime === undefined ? [] : readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storeError(err, `listing IPAM store ${this.dir}`);
      names = [];
    }
    const next = new Map<string, ReadFile>();
    let changed = false;
    for (const name of names) {
      const before = this.files.get(name);
      const ip = before?.reservation.ip ?? parseIp(name);
      if (!ip) continue;
      const file = this.readFile(name, ip, before, now);
      if (!file) continue;
      if (file.reservation !== before?.reservation) changed = true;
      next.set(name, file);
    }
    if (next.size !== this.files.size) changed = true;
    this.files = next;
    if (changed) {
      this.list = [...next.values()].map((f) => f.reservation);
      this.version++;
    }
    return { reservations: this.list, version: this.version };
  }

  private allSettled(): boolean {
    for (const f of this.files.values()) if (!f.settled) return false;
    return true;
  }

  /** `before` when the file is the one read then, a new record when not, undefined when unreadable. */
  private readFile(name: string, ip: IpAddr, before: ReadFile | undefined, now: number): ReadFile | undefined {
    const path = join(this.dir, name);
    const st = statSync(path, { throwIfNoEntry: false });
    // Removed meanwhile, or not a file: skipped, as readReservations does.
    if (!st?.isFile()) return undefined;
    if (
      before?.settled &&
      before.ino === st.ino &&
      before.ctimeMs === st.ctimeMs &&
      before.mtimeMs === st.mtimeMs &&
      before.size === st.size
    )
      return before;
    let content: string;
    try {
      content = readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
    const reservation = parseReservation(name, ip, content);
    const same =
      before !== undefined &&
      before.reservation.containerID === reservation.containerID &&
      before.reservation.ifname === reservation.ifname;
    return {
      ino: st.ino,
      ctimeMs: st.ctimeMs,
      mtimeMs: st.mtimeMs,
      size: st.size,
      settled: now - st.ctimeMs > SETTLE_MS,
      // An unchanged content keeps its object: the readers' memos by reservation stay valid.
      reservation: same ? before.reservation : reservation,
    };
  }
}
