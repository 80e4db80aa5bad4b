// The on-disk store, byte-compatible with the reference host-local (plugins/ipam/host-local/backend/
// disk/backend.go, lock.go) so that both plugins can share one directory:
//   <dataDir>/<network>/<ip>                 one file per reserved address, named by Go's ip.String(),
//                                            mode 0600, content "<containerID>\r\n<ifname>"
//                                            (files of old host-local versions hold just the id)
//   <dataDir>/<network>/last_reserved_ip.<n> the address last reserved in range set n
//   <dataDir>/<network>/lock                 flock(2) LOCK_EX around every operation
//
// Crash safety: flock is released by the kernel when the holder dies, so a kill -9 never leaves a
// lock behind. A reservation is written to a temp file first and then link()ed to the address's
// name (EEXIST: taken), so an address file is either absent or complete; last_reserved_ip is
// replaced by rename. Temp files a killed process left are swept while the lock is held (no other
// writer can be in the middle of one then).
import {
  closeSync,
  constants,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Attachment } from '../cni/config.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import { flock, LOCK_EX, LOCK_NB } from '../kernel/libc.ts';
import { fsyncDir, TEMP_PREFIX, writeFileAtomic, writeTempFile } from '../util/atomic-file.ts';
import { formatIp, parseIp, type IpAddr } from './range.ts';

export const LAST_RESERVED_PREFIX = 'last_reserved_ip.';
export const LOCK_FILE = 'lock';
/** The separator between container ID and interface name (reference disk.LineBreak). */
export const LINE_BREAK = '\r\n';
/** How long an operation waits for the lock before answering "try again later" (code 11). */
export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
/**
 * No fsync of reservations, like host-local: they must survive a killed process (link and rename
 * see to that), not a power failure, after which every pod is created anew and GC releases what a
 * lost sandbox held. fsync was about 4 ms of every ADD and DEL here.
 */
const DURABLE = false;
const EWOULDBLOCK = 11;
const EINTR = 4;

/** One address file: who holds the address. `ifname` is undefined for a legacy file (id only). */
export interface Reservation {
  ip: IpAddr;
  /** The file name (the address as Go prints it). */
  name: string;
  containerID: string;
  ifname: string | undefined;
}

/** The file content host-local writes for an attachment. */
export function reservationContent(who: Attachment): string {
  return `${who.containerID.trim()}${LINE_BREAK}${who.ifname}`;
}

/** Parses an address file's content (trimmed, as the reference compares it). */
export function parseReservation(name: string, ip: IpAddr, content: string): Reservation {
  const text = content.trim();
  const cut = text.indexOf(LINE_BREAK);
  if (cut < 0) return { ip, name, containerID: text, ifname: undefined };
  return { ip, name, containerID: text.slice(0, cut), ifname: text.slice(cut + LINE_BREAK.length) };
}

/** Reference matching: an exact (id, ifname) file, or, in `legacy` mode, a file holding only the id. */
export function heldBy(r: Reservation, who: Attachment, mode: 'exact' | 'legacy'): boolean {
  if (mode === 'exact')
    return r.ifname !== undefined && r.containerID === who.containerID.trim() && r.ifname === who.ifname;
  return r.ifname === undefined && r.containerID === who.containerID.trim();
}

/** Every address file in `dir` (names that are not addresses, like lock or temp files, are skipped). */
export function readReservations(dir: string): Reservation[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw storeError(err, `listing IPAM store ${dir}`);
  }
  const out: Reservation[] = [];
  for (const name of names) {
    const ip = parseIp(name);
    if (!ip) continue;
    let content: string;
    try {
      content = readFileSync(join(dir, name), 'utf8');
    } catch {
      // Removed meanwhile, or a directory: the reference skips what it cannot read, too.
      continue;
    }
    out.push(parseReservation(name, ip, content));
  }
  return out;
}

export function storeDir(dataDir: string, network: string): string {
  return join(dataDir, network);
}

export function storeError(err: unknown, what: string): CniError {
  const e = err as NodeJS.ErrnoException;
  return new CniError(ErrorCode.Internal, `${what}: ${e.message ?? String(err)}`, undefined, { cause: err });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The store of one network, opened and locked. Everything that reads-then-writes happens between
 * open() and close(); close() releases the lock (closing the descriptor drops the flock).
 */
export class IpamStore {
  readonly dir: string;
  private lockFd: number | undefined;

  private constructor(dir: string, lockFd: number) {
    this.dir = dir;
    this.lockFd = lockFd;
  }

  /**
   * Creates `<dataDir>/<network>` if needed, takes its lock and sweeps stale temp files. Waits up to
   * `lockTimeoutMs` for the lock (polling with LOCK_NB, so the wait is bounded), then fails with
   * code 11: the runtime retries the verb later.
   */
  static async open(dataDir: string, network: string, opts: { lockTimeoutMs?: number } = {}): Promise<IpamStore> {
    const dir = storeDir(dataDir, network);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw storeError(err, `creating IPAM store ${dir}`);
    }
    const lockPath = join(dir, LOCK_FILE);
    let fd: number;
    try {
      // host-local (go-filemutex) opens the lock file O_RDONLY|O_CREAT; flock works on any mode.
      fd = openSync(lockPath, constants.O_RDONLY | constants.O_CREAT, 0o600);
    } catch (err) {
      throw storeError(err, `opening IPAM lock ${lockPath}`);
    }
    try {
      await lockWithTimeout(fd, lockPath, opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const store = new IpamStore(dir, fd);
    store.sweepTempFiles();
    return store;
  }

  /** Releases the lock. Safe to call twice. */
  close(): void {
    if (this.lockFd === undefined) return;
    closeSync(this.lockFd);
    this.lockFd = undefined;
  }

  private path(name: string): string {
    return join(this.dir, name);
  }

  /** Removes temp files of writers killed mid-write; only called with the lock held. */
  sweepTempFiles(): number {
    let removed = 0;
    for (const name of readdirSync(this.dir)) {
      if (!name.startsWith(TEMP_PREFIX)) continue;
      rmSync(this.path(name), { force: true });
      removed++;
    }
    return removed;
  }

  reservations(): Reservation[] {
    return readReservations(this.dir);
  }

  /** Names of every file in the store, to skip taken addresses without a system call each. */
  fileNames(): Set<string> {
    return new Set(readdirSync(this.dir));
  }

  /**
   * Reserves `ip` for `who`: false when the address is taken already. On success it becomes the
   * range set's last reserved address (reference Store.Reserve).
   */
  reserve(ip: IpAddr, who: Attachment, rangeSetIndex: number): boolean {
    const name = formatIp(ip);
    const target = this.path(name);
    let tmp: string;
    try {
      tmp = writeTempFile(target, reservationContent(who), 0o600, DURABLE);
    } catch (err) {
      throw storeError(err, `reserving ${name} in ${this.dir}`);
    }
    try {
      linkSync(tmp, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw storeError(err, `reserving ${name} in ${this.dir}`);
    } finally {
      rmSync(tmp, { force: true });
    }
    try {
      writeFileAtomic(this.path(`${LAST_RESERVED_PREFIX}${rangeSetIndex}`), name, { mode: 0o644, durable: DURABLE });
    } catch (err) {
      rmSync(target, { force: true });
      throw storeError(
        err,
        `recording ${name} as the last reserved address of range set ${rangeSetIndex} in ${this.dir}`,
      );
    }
    return true;
  }

  /** The address last reserved in a range set, if the file exists and holds one. */
  lastReserved(rangeSetIndex: number): IpAddr | undefined {
    try {
      return parseIp(readFileSync(this.path(`${LAST_RESERVED_PREFIX}${rangeSetIndex}`), 'utf8').trim());
    } catch {
      // Missing or unreadable: the reference logs and starts from the first range's start.
      return undefined;
    }
  }

  /** Deletes one address file; false if it was already gone. */
  remove(r: Pick<Reservation, 'name'>): boolean {
    try {
      unlinkSync(this.path(r.name));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw storeError(err, `releasing ${r.name} in ${this.dir}`);
    }
  }

  /**
   * Releases everything `who` holds (reference ReleaseByID): files naming (id, ifname) exactly, or,
   * if there are none, legacy files holding only the id. Nothing held is success (DEL is idempotent).
   */
  releaseAttachment(who: Attachment): Reservation[] {
    const all = this.reservations();
    let mine = all.filter((r) => heldBy(r, who, 'exact'));
    if (mine.length === 0) mine = all.filter((r) => heldBy(r, who, 'legacy'));
    const released = mine.filter((r) => this.remove(r));
    if (released.length > 0) this.sync();
    return released;
  }

  /** Does `who` hold any address (reference FindByID, legacy files included)? */
  holds(who: Attachment): boolean {
    const all = this.reservations();
    return all.some((r) => heldBy(r, who, 'exact')) || all.some((r) => heldBy(r, who, 'legacy'));
  }

  /** Makes the directory's changes (links, unlinks) durable, when reservations are kept durably. */
  sync(): void {
    if (DURABLE) fsyncDir(this.dir);
  }
}

async function lockWithTimeout(fd: number, lockPath: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  for (;;) {
    const rc = flock(fd, LOCK_EX | LOCK_NB);
    if (rc === 0) return;
    if (rc !== -EWOULDBLOCK && rc !== -EINTR) {
      throw new CniError(ErrorCode.Internal, `locking IPAM store ${lockPath}: flock failed with errno ${-rc}`);
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new CniError(
        ErrorCode.TryAgainLater,
        `timed out after ${Math.round(timeoutMs / 1000)} s waiting for the IPAM lock ${lockPath}`,
        'another IPAM plugin (strand-ipam or host-local) holds it; try again later',
      );
    }
    // Short, jittered, growing sleeps: the lock is normally held for a few milliseconds.
    await sleep(Math.min(left, delay + Math.random() * delay));
    delay = Math.min(delay * 2, 25);
  }
}

/** Opens and locks the store, runs `fn`, and always releases the lock. */
export async function withStore<T>(
  dataDir: string,
  network: string,
  fn: (store: IpamStore) => T,
  opts: { lockTimeoutMs?: number } = {},
): Promise<T> {
  const store = await IpamStore.open(dataDir, network, opts);
  try {
    return fn(store);
  } finally {
    store.close();
  }
}
