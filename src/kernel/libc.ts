// libc functions that Node does not expose, bound once through koffi (DESIGN.md: FFI with koffi).
//
// koffi is loaded on the first call, not at import: the CLI, `strand --version` and CNI VERSION import
// modules that import this one but never touch the kernel, and loading koffi costs several ms.
// `require('koffi')` is what esbuild turns into a lazily initialised module inside the one bundle (the
// SEA); under vitest or plain Node ESM there is no `require`, so one is made with createRequire.
import { createRequire } from 'node:module';

type Koffi = typeof import('koffi');

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

/** The libc calls this project makes. Every one returns -1 and sets errno on failure. */
export interface Libc {
  flock(fd: number, operation: number): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array, addrlen: number): number;
  connect(fd: number, addr: Uint8Array, addrlen: number): number;
  getsockname(fd: number, addr: Uint8Array, addrlen: Uint32Array): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, len: number): number;
  send(fd: number, buf: Uint8Array, len: number, flags: number): number;
  recv(fd: number, buf: Uint8Array, len: number, flags: number): number;
  close(fd: number): number;
  setns(fd: number, nstype: number): number;
  ioctl(fd: number, request: number): number;
  strerror(errnum: number): string;
}

let koffiModule: Koffi | undefined;
let bound: Libc | undefined;

/** koffi itself, loaded on first use. */
export function loadKoffi(): Koffi {
  if (!koffiModule) {
    koffiModule = (typeof require === 'function' ? require('koffi') : createRequire(import.meta.url)('koffi')) as Koffi;
  }
  return koffiModule;
}

/** The bound libc functions; the first call loads koffi and binds them all (about 0.3 ms). */
export function libc(): Libc {
  if (bound) return bound;
  const koffi = loadKoffi();
  const lib = koffi.load('libc.so.6');
  // Buffers and typed arrays passed as `void *` are handed to C as pointers to their own memory, so
  // recv() and getsockname() write straight into them (koffi doc "Output buffers").
  bound = {
    flock: lib.func('int flock(int fd, int operation)'),
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    bind: lib.func('int bind(int fd, const void *addr, uint32_t addrlen)'),
    connect: lib.func('int connect(int fd, const void *addr, uint32_t addrlen)'),
    getsockname: lib.func('int getsockname(int fd, void *addr, void *addrlen)'),
    setsockopt: lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
    send: lib.func('intptr_t send(int fd, const void *buf, size_t len, int flags)'),
    recv: lib.func('intptr_t recv(int fd, void *buf, size_t len, int flags)'),
    close: lib.func('int close(int fd)'),
    setns: lib.func('int setns(int fd, int nstype)'),
    ioctl: lib.func('int ioctl(int fd, unsigned long request, ...)'),
    strerror: lib.func('const char *strerror(int errnum)'),
  } as Libc;
  return bound;
}

/** The errno of the last failed libc call on this thread. Read it right after the call. */
export function errno(): number {
  return loadKoffi().errno();
}

/** flock(2); returns 0 or -errno. */
export function flock(fd: number, operation: number): number {
  const rc = libc().flock(fd, operation);
  return rc === 0 ? 0 : -errno();
}
