// The libc binding under Node (the agent, the command line, the tests): koffi (DESIGN.md: FFI with
// koffi). The CNI executable, compiled by Bun, binds the same calls with Bun's own FFI instead
// (libc-bun.ts; scripts/build-cni.mjs swaps the module), so it carries no koffi at all.
//
// koffi loads on the first call, not at import: the CLI, `strand --version` and CNI VERSION import
// modules that import this one but never touch the kernel, and loading koffi costs several ms.
// `require('koffi')` is what esbuild turns into a lazily initialised module inside the one bundle (the
// SEA); under vitest or plain Node ESM there is no `require`, so one is made with createRequire.
import { createRequire } from 'node:module';
import type { Libc, LibcBinding, SockFilter } from './libc-api.ts';

type Koffi = typeof import('koffi');

let koffiModule: Koffi | undefined;

/** koffi itself, loaded on first use (the agent binds a few more glibc calls with it). */
export function loadKoffi(): Koffi {
  if (!koffiModule) {
    koffiModule = (typeof require === 'function' ? require('koffi') : createRequire(import.meta.url)('koffi')) as Koffi;
  }
  return koffiModule;
}

let libcLib: ReturnType<Koffi['load']> | undefined;

/** glibc, loaded once through koffi: bindLibc's calls and the few more the agent binds (memory.ts). */
export function libcLibrary(): ReturnType<Koffi['load']> {
  libcLib ??= loadKoffi().load('libc.so.6');
  return libcLib;
}

/** Loads koffi and binds the calls (about 0.3 ms once koffi is loaded). */
export function bindLibc(): LibcBinding {
  const koffi = loadKoffi();
  const lib = libcLibrary();
  // Buffers and typed arrays passed as `void *` are handed to C as pointers to their own memory, so
  // recv() and getsockname() write straight into them (koffi doc "Output buffers").
  const send = lib.func('intptr_t send(int fd, const void *buf, size_t len, int flags)');
  const libc = {
    flock: lib.func('int flock(int fd, int operation)'),
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    bind: lib.func('int bind(int fd, const void *addr, uint32_t addrlen)'),
    connect: lib.func('int connect(int fd, const void *addr, uint32_t addrlen)'),
    getsockname: lib.func('int getsockname(int fd, void *addr, void *addrlen)'),
    setsockopt: lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
    send,
    recv: lib.func('intptr_t recv(int fd, void *buf, size_t len, int flags)'),
    close: lib.func('int close(int fd)'),
    setns: lib.func('int setns(int fd, int nstype)'),
    ioctl: lib.func('int ioctl(int fd, unsigned long request, ...)'),
    strerror: lib.func('const char *strerror(int errnum)'),
  } as Libc;
  // koffi keeps the errno of its last call itself.
  // koffi's async form runs the call on a worker thread of its own and calls back on this one.
  const sendOffThread = (fd: number, buf: Uint8Array, len: number, flags: number): Promise<number> =>
    new Promise((resolve, reject) => {
      send.async(fd, buf, len, flags, (err: unknown, n: unknown) => (err ? reject(err) : resolve(Number(n))));
    });
  // Bound on first use: struct sock_fprog { u16 len; struct sock_filter *filter; }, which koffi
  // builds from a plain object, the array behind the pointer included.
  type SetsockoptFilter = (fd: number, level: number, name: number, prog: unknown, len: number) => number;
  let setsockoptFilter: SetsockoptFilter | undefined;
  const attachFilter = (fd: number, program: readonly SockFilter[]): number => {
    if (!setsockoptFilter) {
      const filter = koffi.struct('strand_sock_filter', {
        code: 'uint16_t',
        jt: 'uint8_t',
        jf: 'uint8_t',
        k: 'uint32_t',
      });
      koffi.struct('strand_sock_fprog', { len: 'uint16_t', filter: koffi.pointer(filter) });
      setsockoptFilter = lib.func(
        'int setsockopt(int fd, int level, int name, const strand_sock_fprog *value, uint32_t len)',
      ) as unknown as SetsockoptFilter;
    }
    return setsockoptFilter(fd, SOL_SOCKET, SO_ATTACH_FILTER, { len: program.length, filter: program }, 16);
  };
  return { libc, errno: () => koffi.errno(), sendOffThread, attachFilter };
}

const SOL_SOCKET = 1;
const SO_ATTACH_FILTER = 26;
