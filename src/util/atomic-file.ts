// Files shared between processes are replaced atomically: write a temporary file in the same
// directory, fsync it, rename it over the target, fsync the directory. A reader sees the old or the
// new content, never a half-written file, even when the writer is killed (DESIGN.md).
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';

/** Temporary files start with this, so a sweep can tell them from real content. */
export const TEMP_PREFIX = '.strand-tmp-';

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function tempPathFor(path: string): string {
  return join(
    dirname(path),
    `${TEMP_PREFIX}${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}`,
  );
}

export interface WriteOptions {
  mode?: number;
  mkdir?: boolean;
  /**
   * fsync the file and its directory (default true): the new content survives a power failure, not
   * only a killed process. Atomicity against kill -9 comes from rename/link alone.
   */
  durable?: boolean;
}

/** Writes `data` to a new temporary file beside `path` (fsynced when durable); returns its path. */
export function writeTempFile(path: string, data: string | Uint8Array, mode = 0o644, durable = true): string {
  const tmp = tempPathFor(path);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (durable) fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  return tmp;
}

export function writeFileAtomic(path: string, data: string | Uint8Array, opts: WriteOptions = {}): void {
  const durable = opts.durable ?? true;
  if (opts.mkdir) mkdirSync(dirname(path), { recursive: true });
  const tmp = writeTempFile(path, data, opts.mode, durable);
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  if (durable) fsyncDir(dirname(path));
}

/**
 * writeFileAtomic without blocking the caller's thread: the writes and fsyncs run on libuv's threads.
 * The agent's files (node state, CNI configuration) are written this way: an fsync on a busy disk
 * took 100 ms here, and the event loop it held answers /healthz and the pods' notices.
 */
export async function writeFileAtomicAsync(
  path: string,
  data: string | Uint8Array,
  opts: WriteOptions = {},
): Promise<void> {
  const durable = opts.durable ?? true;
  if (opts.mkdir) await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  const file = await open(tmp, 'wx', opts.mode ?? 0o644);
  try {
    await file.writeFile(data);
    if (durable) await file.sync();
  } catch (err) {
    await file.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await file.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  if (!durable) return;
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
