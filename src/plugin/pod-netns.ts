// What CNI_NETNS names. A runtime can pass a path that no longer names the pod's namespace: a
// recycled /proc/<pid>/ns/net now naming the host's, a bind mount of the host's, or a bug. The
// plugin must never act on its own namespace through it: ADD and CHECK refuse it (code 4, as the
// reference skel does), and DEL treats it as a namespace that is gone, since deleting CNI_IFNAME
// there would delete a host interface (issue 16 item 5; the reference bridge plugin has that flaw).
import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import { CniError, ErrorCode } from '../cni/errors.ts';
import { assertNetns, CURRENT_NETNS, isCurrentNetns, isNetnsFd, onNsfs } from '../kernel/index.ts';

/** CNI_NETNS must be a network namespace, and not the plugin's own (reference skel, code 4 here). */
export function checkPodNetns(netns: string): void {
  try {
    assertNetns(netns);
  } catch (err) {
    throw new CniError(ErrorCode.InvalidEnvironment, `invalid CNI_NETNS: ${(err as Error).message}`);
  }
  if (isCurrentNetns(netns)) {
    const msg = `invalid CNI_NETNS ${netns}: it is the plugin's own network namespace`;
    throw new CniError(ErrorCode.InvalidEnvironment, msg);
  }
}

/** A pod namespace held open, so that every later use reaches the namespace that was checked. */
export interface PinnedNetns {
  /** /proc/self/fd/<fd>: names the namespace opened, whatever the given path names meanwhile. */
  readonly path: string;
  close(): void;
}

/** Why DEL has no pod namespace to clean: it is gone (or never was one), or it is the plugin's own. */
export type DelNetns = { kind: 'pod'; netns: PinnedNetns } | { kind: 'gone' } | { kind: 'own' };

/**
 * CNI_NETNS for DEL: opened once and compared by device and inode with the calling thread's own
 * namespace through that one open file, so a path recycled between the check and the use cannot
 * lead DEL into the host's namespace. Never throws: DEL is best effort (CNI 1.1 §2).
 */
export function openDelNetns(netns: string): DelNetns {
  let fd: number;
  try {
    // Asked of the path before the open: opening a FIFO or a device there could block or act.
    if (!onNsfs(netns)) return { kind: 'gone' };
    fd = openSync(netns, 'r');
  } catch {
    return { kind: 'gone' };
  }
  const pinned: PinnedNetns = { path: `/proc/self/fd/${fd}`, close: () => closeSync(fd) };
  try {
    // Checked on the open file: the path may have been replaced after the statfs.
    if (!isNetnsFd(fd)) {
      pinned.close();
      return { kind: 'gone' };
    }
    const mine = statSync(CURRENT_NETNS);
    const given = fstatSync(fd);
    if (given.dev === mine.dev && given.ino === mine.ino) {
      pinned.close();
      return { kind: 'own' };
    }
  } catch {
    pinned.close();
    return { kind: 'gone' };
  }
  return { kind: 'pod', netns: pinned };
}
