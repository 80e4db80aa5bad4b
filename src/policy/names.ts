// Names of the policy's nftables objects (a module of its own so model.ts can re-export them without
// an import cycle). All start with POLICY_PREFIX, which the applier owns alone in `inet strand`;
// hashes keep them within nft's bare-word names (lower-case words, at most 64 characters).
import { createHash } from 'node:crypto';

/** Every object the policy code keeps in `inet strand` starts with this (the applier owns them all). */
export const POLICY_PREFIX = 'agent-pol-';

/** A stable 16-hex-digit id for a meaning (callers build the value with keys in a fixed order). */
export function stableId(meaning: unknown): string {
  return createHash('sha256').update(JSON.stringify(meaning)).digest('hex').slice(0, 16);
}
