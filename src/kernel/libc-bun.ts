// The libc binding inside the CNI executable (dist/cni/strand, compiled by Bun): Bun's built-in FFI
// (`bun:ffi`) binds the calls straight from the libc already in the process. scripts/build-cni.mjs
// puts this module in place of libc-koffi.ts, so the executable carries no koffi: koffi's load (its
// 1.1 MiB native module, libstdc++ with it, node:util and node:module for its wrapper) was 8–10 ms of
// CPU on every ADD and DEL, this binding about 1.5 ms (docs/architecture.md, "The pod path").
// Runs only under Bun; under Node (vitest, the agent) libc-koffi.ts is the binding.
import type { Libc, LibcBinding } from './libc-api.ts';

/** The part of `bun:ffi` used here (https://bun.com/docs/runtime/ffi). */
interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown> };
  read: { i32(ptr: number, byteOffset: number): number };
}

export function bindLibc(): LibcBinding {
  const ffi = require('bun:ffi') as BunFfi;
  // A typed array passed as `ptr` is handed to C as a pointer to its own bytes (its byteOffset
  // included), so recv() and getsockname() write straight into it. ssize_t results come back as
  // numbers (`i64_fast`: a number whenever it fits in 53 bits, as a datagram size always does).
  const { symbols } = ffi.dlopen('libc.so.6', {
    flock: { args: ['i32', 'i32'], returns: 'i32' },
    socket: { args: ['i32', 'i32', 'i32'], returns: 'i32' },
    bind: { args: ['i32', 'ptr', 'u32'], returns: 'i32' },
    connect: { args: ['i32', 'ptr', 'u32'], returns: 'i32' },
    getsockname: { args: ['i32', 'ptr', 'ptr'], returns: 'i32' },
    setsockopt: { args: ['i32', 'i32', 'i32', 'ptr', 'u32'], returns: 'i32' },
    send: { args: ['i32', 'ptr', 'u64', 'i32'], returns: 'i64_fast' },
    recv: { args: ['i32', 'ptr', 'u64', 'i32'], returns: 'i64_fast' },
    close: { args: ['i32'], returns: 'i32' },
    setns: { args: ['i32', 'i32'], returns: 'i32' },
    // Variadic in C; called with the request only (NS_GET_NSTYPE takes no argument).
    ioctl: { args: ['i32', 'u64'], returns: 'i32' },
    strerror: { args: ['i32'], returns: 'cstring' },
    __errno_location: { args: [], returns: 'ptr' },
  });
  // errno is this thread's; its address does not change. It is read as the failed call returns, before
  // any other code could make a libc call that sets it again (koffi does the same in its trampoline).
  const errnoAt = (symbols.__errno_location as () => number)();
  let lastErrno = 0;
  const call = (name: string) => {
    const fn = symbols[name] as (...args: unknown[]) => number;
    return (...args: unknown[]): number => {
      const r = fn(...args);
      if (r < 0) lastErrno = ffi.read.i32(errnoAt, 0);
      return r;
    };
  };
  const strerror = symbols.strerror as (errnum: number) => unknown;
  const libc: Libc = {
    flock: call('flock'),
    socket: call('socket'),
    bind: call('bind'),
    connect: call('connect'),
    getsockname: call('getsockname'),
    setsockopt: call('setsockopt'),
    send: call('send'),
    recv: call('recv'),
    close: call('close'),
    setns: call('setns'),
    ioctl: call('ioctl'),
    strerror: (errnum) => String(strerror(errnum)),
  };
  return { libc, errno: () => lastErrno };
}
