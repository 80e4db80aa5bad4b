// Network namespaces. setns(2) switches only the calling thread, and everything here is synchronous
// on Node's main thread, so a switch lasts exactly as long as the callback and nothing else in the
// process (libuv's thread pool, other workers) is affected. Things opened inside stay bound to the
// namespace they were opened in: a netlink socket, a /proc/sys/net file. That is the pattern the
// reference plugins use (ns.Do in containernetworking/plugins pkg/ns): open inside, use after.
import { closeSync, openSync, statfsSync, statSync } from 'node:fs';
import { errno, libc } from './libc.ts';
import { fromSystemError, KernelError } from './errors.ts';

export const CLONE_NEWNET = 0x40000000;
/** statfs f_type of nsfs, the filesystem namespace files live on (/proc/<pid>/ns/*, bind mounts of them). */
const NSFS_MAGIC = 0x6e736673;
/** ioctl NS_GET_NSTYPE = _IO(0xb7, 0x3), <linux/nsfs.h>: which kind of namespace a file refers to. */
const NS_GET_NSTYPE = 0xb703;

/** The calling thread's own network namespace. /proc/self would name the main thread's, which is the
 * same thing for Node's main thread, but thread-self is right even when called from a worker. */
export const CURRENT_NETNS = '/proc/thread-self/ns/net';

/** What a namespace callback may return: anything but a promise, since an async callback would
 * resume after the namespace has been switched back. */
export type NotPromise =
  | string
  | number
  | boolean
  | bigint
  | symbol
  | null
  | undefined
  | void
  | (object & { then?: never });

function openNs(path: string, operation: string): number {
  try {
    return openSync(path, 'r');
  } catch (err) {
    throw fromSystemError(err, operation);
  }
}

function enter(fd: number, operation: string): void {
  if (libc().setns(fd, CLONE_NEWNET) !== 0) throw new KernelError({ errno: errno(), operation });
}

/**
 * Runs fn with the calling thread in the network namespace at path, and always switches back, also
 * when fn throws. Nesting works: each call returns to the namespace it started from.
 */
export function withNetns<T extends NotPromise>(path: string, fn: () => T): T {
  const original = openNs(CURRENT_NETNS, 'open the current network namespace');
  let target: number | undefined;
  try {
    target = openNs(path, `open network namespace ${path}`);
    enter(target, `enter network namespace ${path}`);
    try {
      const result = fn();
      if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
        throw new TypeError(
          'withNetns runs synchronous callbacks only: an async one would continue outside the namespace',
        );
      }
      return result;
    } finally {
      // If this fails the thread is stranded in the wrong namespace and every later kernel call would
      // act on the pod; nothing sensible can continue, so the error replaces whatever fn threw.
      enter(original, `return to the original network namespace from ${path}`);
    }
  } finally {
    if (target !== undefined) closeSync(target);
    closeSync(original);
  }
}

/** Opens a namespace file for passing as IFLA_NET_NS_FD; the caller closes it. */
export function openNetns(path: string): number {
  return openNs(path, `open network namespace ${path}`);
}

/** True when path is a network namespace (nsfs file of type CLONE_NEWNET). */
export function isNetns(path: string): boolean {
  return onNsfs(path) && nsfsFileIsNetns(path);
}

/** For a path already known to be on nsfs: whether the namespace it names is a network one. */
function nsfsFileIsNetns(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    return libc().ioctl(fd, NS_GET_NSTYPE) === CLONE_NEWNET;
  } finally {
    closeSync(fd);
  }
}

/**
 * isNetns for a file already open: the check on the very file held, so a path replaced after the open
 * cannot change the answer. The ioctl is asked only of an nsfs file (on a device it could mean
 * something else).
 */
export function isNetnsFd(fd: number): boolean {
  return onNsfs(`/proc/self/fd/${fd}`) && libc().ioctl(fd, NS_GET_NSTYPE) === CLONE_NEWNET;
}

/** True when path is a file of nsfs, the filesystem of namespace files (of any kind). */
export function onNsfs(path: string): boolean {
  try {
    return statfsSync(path).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Throws unless path is a network namespace; the message says what it is instead. The reference
 * plugins refuse a CNI_NETNS that is not one (pkg/ns GetNS) before doing anything.
 */
export function assertNetns(path: string): void {
  let type: number;
  try {
    type = statfsSync(path).type;
  } catch (err) {
    throw fromSystemError(err, `open network namespace ${path}`);
  }
  if (type !== NSFS_MAGIC || !nsfsFileIsNetns(path)) {
    throw new KernelError({ errno: 22 /* EINVAL */, operation: `use ${path} as a network namespace (it is not one)` });
  }
}

/** True when path is the calling thread's own network namespace (same nsfs inode). */
export function isCurrentNetns(path: string): boolean {
  const a = statSync(path);
  const b = statSync(CURRENT_NETNS);
  return a.dev === b.dev && a.ino === b.ino;
}

/** True when both paths name the same network namespace. */
export function sameNetns(a: string, b: string): boolean {
  const sa = statSync(a);
  const sb = statSync(b);
  return sa.dev === sb.dev && sa.ino === sb.ino;
}
