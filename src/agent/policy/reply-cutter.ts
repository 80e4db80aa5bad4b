// The flow cutter's second look (flow-cutter.ts): a denied flow's conntrack entry is deleted, but a
// reply the pod sent just before the cut, still in flight, makes a new entry in the other direction
// (the pod as the original source: its egress allows it). The peer's next packet then matches that
// entry as a reply, `ct state established` accepts it, and the denied flow goes on. So shortly after a
// cut, the exact reverse tuples of the entries deleted are looked up (by tuple, not by a dump) and
// deleted too: only the reversed 5-tuple of a deleted flow, never another flow of the pod.
import { Conntrack, sameTuple, type ConntrackEntry, type ConntrackTuple } from '../../kernel/conntrack.ts';
import type { Logger } from '../../log.ts';
import { describeError } from '../../k8s/client.ts';

/** After a cut, the reverse tuples are looked for this long after it (ms): a reply in flight lands
 * within the first; the later ones catch one a loaded node delayed. */
export const RECUT_AFTER_MS = [250, 1_000, 3_000] as const;

export interface ReplyCutterOptions {
  log: Logger;
  onDeleted?: (n: number) => void;
  onError?: () => void;
  open?: () => Pick<Conntrack, 'get' | 'delete' | 'close'>;
}

/** The tuple a reply the pod sent after the cut starts: the deleted entry's reply tuple. */
export function reverseKey(t: ConntrackTuple): string {
  return `${t.proto} ${t.src} ${t.sport ?? ''} ${t.dst} ${t.dport ?? ''}`;
}

/**
 * Deletes the entries whose original tuple is the reply tuple of one of `cut`; the count. Each is
 * looked up by that exact tuple (the kernel's hash lookup: no dump of the table, whose walk of every
 * bucket costs milliseconds however few entries it holds) and deleted by its id, so an entry found
 * the other way round (an allowed flow made again in the cut one's direction, whose reply tuple this
 * is) is left alone, and a newer entry of the same tuple is never hit.
 */
export function cutRecreatedReplies(opts: ReplyCutterOptions, cut: readonly ConntrackEntry[]): number {
  if (cut.length === 0) return 0;
  const wanted = new Map<string, ConntrackEntry>();
  for (const e of cut) wanted.set(`${e.family} ${e.zone ?? ''} ${reverseKey(e.reply)}`, e);
  let deleted = 0;
  let ct: Pick<Conntrack, 'get' | 'delete' | 'close'> | undefined;
  try {
    ct = (opts.open ?? (() => Conntrack.open()))();
    for (const e of wanted.values()) {
      try {
        const found = ct.get(e.family, e.reply, e.zone);
        if (!found || !sameTuple(found.orig, e.reply)) continue;
        if (ct.delete(found)) deleted++;
      } catch (err) {
        opts.onError?.();
        opts.log.warn({ err: describeError(err) }, 'could not delete the re-made entry of a cut flow');
      }
    }
  } catch (err) {
    opts.onError?.();
    opts.log.warn(
      { err: describeError(err) },
      `could not look for re-made entries of cut flows: ${describeError(err)}`,
    );
  } finally {
    ct?.close();
  }
  if (deleted > 0) {
    opts.onDeleted?.(deleted);
    opts.log.info({ deleted }, 'deleted the entries replies in flight re-made for flows the policy change denies');
  }
  return deleted;
}

/** Looks again RECUT_AFTER_MS after a cut (timers that never keep the process alive). */
export function scheduleReplyCuts(opts: ReplyCutterOptions, cut: readonly ConntrackEntry[]): void {
  if (cut.length === 0) return;
  for (const ms of RECUT_AFTER_MS) setTimeout(() => cutRecreatedReplies(opts, cut), ms).unref();
}
