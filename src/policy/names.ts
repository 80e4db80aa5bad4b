// Names of the policy's nftables objects (a module of its own so model.ts can re-export them without
// an import cycle). All start with POLICY_PREFIX, which the applier owns alone in `inet strand`;
// hashes keep them within nft's bare-word names (lower-case words, at most 64 characters).
import { createHash } from 'node:crypto';

/** Every object the policy code keeps in `inet strand` starts with this (the applier owns them all). */
export const POLICY_PREFIX = 'agent-pol-';

/** Ids computed, by their meaning's text: a render names the same pods' chains and the same port
 * sets again on every change and pod start, and a hash object per name was a tenth of a render. */
const ids = new Map<string, string>();
const MAX_IDS = 100_000;

/** A stable 16-hex-digit id for a meaning (callers build the value with keys in a fixed order). */
export function stableId(meaning: unknown): string {
  const text = JSON.stringify(meaning);
  let id = ids.get(text);
  if (id === undefined) {
    id = createHash('sha256').update(text).digest('hex').slice(0, 16);
    // Bounded: names of pods long gone are dropped with the rest, and made again when asked for.
    if (ids.size >= MAX_IDS) ids.clear();
    ids.set(text, id);
  }
  return id;
}
