// The flow cutter's second look (flow-cutter.ts): a denied flow's conntrack entry is deleted, but a
// reply the pod sent just before the cut, still in flight, makes a new entry in the other direction
// (the pod as the original source: its egress allows it). The peer's next packet then matches that
// entry as a reply, `ct state established` accepts it, and the denied flow goes on. So shortly after a
// cut, the exact reverse tuples of the entries deleted are looked for and deleted too: only the
// reversed 5-tuple of a deleted flow, never another flow of the pod.
import { Conntrack, type ConntrackEntry, type ConntrackTuple } from '../../kernel/conntrack.ts';
import type { Logger } from '../../log.ts';
import { describeError } from '../../k8s/client.ts';

/** After a cut, the reverse tuples are looked for this long after it (ms): a reply in flight lands
 * within the first; the later ones catch one a loaded node delayed. */
export const RECUT_AFTER_MS = [250, 1_000, 3_000] as const;

export interface ReplyCutterOptions {
  log: Logger;
  onDeleted?: (n: number) => void;
  onError?: () => void;
  open?: () => Pick<Conntrack, 'list' | 'delete' | 'close'>;
}

/** The tuple a reply the pod sent after the cut starts: the deleted entry's reply tuple. */
export function reverseKey(t: ConntrackTuple): string {
  return `${t.proto} ${t.src} ${t.sport ?? ''} ${t.dst} ${t.dport ?? ''}`;
}

/** Deletes the entries whose original tuple is the reply tuple of one of `cut` (by family); the count. */
export function cutRecreatedReplies(opts: ReplyCutterOptions, cut: readonly ConntrackEntry[]): number {
  if (cut.length === 0) return 0;
  const wanted = new Map<4 | 6, Set<string>>();
  for (const e of cut) {
    const set = wanted.get(e.family) ?? new Set<string>();
    set.add(reverseKey(e.reply));
    wanted.set(e.family, set);
  }
  let deleted = 0;
  let ct: Pick<Conntrack, 'list' | 'delete' | 'close'> | undefined;
  try {
    ct = (opts.open ?? (() => Conntrack.open()))();
    for (const [family, keys] of wanted) {
      for (const e of ct.list(family)) {
        if (!keys.has(reverseKey(e.orig))) continue;
        try {
          if (ct.delete(e)) deleted++;
        } catch (err) {
          opts.onError?.();
          opts.log.warn({ err: describeError(err) }, 'could not delete the re-made entry of a cut flow');
        }
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
