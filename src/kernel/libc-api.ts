// What a libc binding gives the kernel layer (src/kernel/libc.ts): the calls this project makes and the
// errno of the last one that failed. Two bindings implement it, one per runtime: koffi under Node
// (libc-koffi.ts) and Bun's built-in FFI in the CNI executable (libc-bun.ts).

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

export interface LibcBinding {
  libc: Libc;
  /** The errno of the last failed call on this thread; read it right after the call. */
  errno(): number;
  /**
   * send(2) on a worker thread, resolving with its result: a netlink datagram the kernel works on
   * for long inside send (a large nf_tables batch) then holds no event loop. On -1 the errno is the
   * worker's, so a caller that needs it sends again in place. Absent where the runtime has no such
   * call (Bun's FFI in the CNI executable).
   */
  sendOffThread?(fd: number, buf: Uint8Array, len: number, flags: number): Promise<number>;
  /**
   * setsockopt(SO_ATTACH_FILTER) with a classic BPF program: struct sock_fprog holds a pointer, which
   * the plain setsockopt above cannot pass. Returns 0 or -1 (errno). Absent in the CNI executable.
   */
  attachFilter?(fd: number, program: readonly SockFilter[]): number;
}

/** One classic BPF instruction (struct sock_filter, <linux/filter.h>). */
export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}
