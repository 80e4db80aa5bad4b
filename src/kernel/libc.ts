// libc functions that Node and Bun do not expose (DESIGN.md: FFI in process), bound once, on the first
// kernel call: the CLI, `strand --version` and CNI VERSION import modules that import this one but
// never touch the kernel. The binding is the runtime's: koffi under Node (libc-koffi.ts, imported
// below), Bun's own FFI in the CNI executable (libc-bun.ts, which scripts/build-cni.mjs puts in place
// of libc-koffi.ts).
import type { Libc, LibcBinding } from './libc-api.ts';
import { bindLibc } from './libc-koffi.ts';

export type { Libc, SockFilter } from './libc-api.ts';

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

let bound: LibcBinding | undefined;

/** The bound libc functions; the first call binds them all. */
export function libc(): Libc {
  bound ??= bindLibc();
  return bound.libc;
}

/** send(2) on a worker thread where the runtime has it (libc-api.ts), else undefined. */
export function sendOffThread(): LibcBinding['sendOffThread'] {
  bound ??= bindLibc();
  return bound.sendOffThread;
}

/** SO_ATTACH_FILTER where the runtime has it (libc-api.ts), else undefined. */
export function attachFilter(): LibcBinding['attachFilter'] {
  bound ??= bindLibc();
  return bound.attachFilter;
}

/** The errno of the last failed libc call on this thread. Read it right after the call. */
export function errno(): number {
  bound ??= bindLibc();
  return bound.errno();
}

/** flock(2); returns 0 or -errno. */
export function flock(fd: number, operation: number): number {
  const rc = libc().flock(fd, operation);
  return rc === 0 ? 0 : -errno();
}
