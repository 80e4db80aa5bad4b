// libc functions that Node does not expose, bound once through koffi (DESIGN.md: FFI with koffi).
// Loaded only by the code paths that need them, so VERSION and the CLI never pay for koffi.
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

const flockFn = libc.func('int flock(int fd, int operation)');

/** The errno of the last failed libc call on this thread. */
export function errno(): number {
  return koffi.errno();
}

/** flock(2); returns 0 or -errno. */
export function flock(fd: number, operation: number): number {
  const rc = flockFn(fd, operation) as number;
  return rc === 0 ? 0 : -koffi.errno();
}

export { koffi, libc };
