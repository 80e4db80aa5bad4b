// A transaction encoded ahead, with its addresses left open (issue 17: the pod-start bind). The agent
// computes a pod's bind before the pod has an address, with a stand-in address per family; encoding it
// then, and at the notice only writing the real addresses into the bytes, takes the mapping and
// encoding of its operations (~0.5-1 ms on a busy node) off the notice's path.
//
// Where the addresses sit is found, not assumed: the same transaction is encoded twice, with two
// different stand-ins, and the bytes must differ only in windows that hold the first stand-in in one
// encoding and the second in the other. Anything else (an element ordered by its value, an interval's
// end computed from the address, a length that changed) and there is no template: the caller encodes
// at the notice as before.
import { parseIp, tryParseIp } from '../../net/ip.ts';
import type { StandinPair } from '../transport.ts';
import type { EncodedBatch } from './batch.ts';
import { GrowingSink } from './sink.ts';

/** Where a stand-in address of pair `pair` sits in the batch's bytes. */
interface Window {
  at: number;
  pair: number;
}

/** An encoded batch whose address windows are known: `fill` writes real addresses into a copy. */
export class AddressTemplate {
  /** The batch's layout (its bytes are `bytes`; its sink is not kept). */
  private readonly batch: Omit<EncodedBatch, 'sink'>;
  private readonly bytes: Buffer;
  private readonly pairs: readonly StandinPair[];
  private readonly windows: readonly Window[];

  private constructor(
    batch: Omit<EncodedBatch, 'sink'>,
    bytes: Buffer,
    pairs: readonly StandinPair[],
    windows: readonly Window[],
  ) {
    this.batch = batch;
    this.bytes = bytes;
    this.pairs = pairs;
    this.windows = windows;
  }

  /**
   * The template of `a` when `a` and `b` (the same transaction encoded with each pair's `a` and then its
   * `b`, not yet numbered) differ only in whole stand-in addresses; undefined otherwise.
   */
  static of(a: EncodedBatch, b: EncodedBatch, pairs: readonly StandinPair[]): AddressTemplate | undefined {
    const ab = a.sink.bytes();
    const bb = b.sink.bytes();
    if (ab.length !== bb.length || a.length !== b.length || a.endAt !== b.endAt) return undefined;
    if (a.offsets.some((o, i) => o !== b.offsets[i]) || a.indexes.some((x, i) => x !== b.indexes[i])) return undefined;
    const bytes = pairs.map((p) => ({ a: parseIp(p.a).bytes, b: parseIp(p.b).bytes }));
    if (bytes.some((p) => p.a.length !== p.b.length)) return undefined;
    const windows: Window[] = [];
    let covered = 0;
    for (let i = 0; i < ab.length; i++) {
      if (ab[i] === bb[i] || i < covered) continue;
      // A differing byte: the window of a stand-in that covers it.
      const found = findWindow(ab, bb, i, bytes);
      if (!found) return undefined;
      windows.push(found);
      covered = found.at + (bytes[found.pair] as { a: Uint8Array }).a.length;
    }
    const { length, offsets, indexes, endAt } = a;
    return new AddressTemplate({ length, offsets, indexes, endAt }, Buffer.from(ab), pairs, windows);
  }

  /** How many addresses it writes. */
  get addresses(): number {
    return this.windows.length;
  }

  /** A copy of the batch with each stand-in replaced by `real.get(pair.a)`, for sendEncoded; undefined
   * when an address is missing or of another family than its stand-in. */
  fill(real: ReadonlyMap<string, string>): EncodedBatch | undefined {
    const values: Uint8Array[] = [];
    for (const p of this.pairs) {
      const ip = real.get(p.a);
      if (ip === undefined) return undefined;
      const parsed = tryParseIp(ip);
      if (!parsed || parsed.family !== parseIp(p.a).family) return undefined;
      values.push(parsed.bytes);
    }
    const sink = new GrowingSink(this.bytes.length);
    this.bytes.copy(sink.buf);
    sink.used = this.bytes.length;
    for (const w of this.windows) sink.buf.set(values[w.pair] as Uint8Array, w.at);
    const { length, offsets, indexes, endAt } = this.batch;
    return { sink, length, offsets, indexes, endAt };
  }
}

/** The stand-in window covering the differing byte `i`: pair p's `a` bytes in `a` and its `b` bytes in
 * `b` at the same place. */
function findWindow(
  a: Buffer,
  b: Buffer,
  i: number,
  bytes: ReadonlyArray<{ a: Uint8Array; b: Uint8Array }>,
): Window | undefined {
  for (let pair = 0; pair < bytes.length; pair++) {
    const p = bytes[pair] as { a: Uint8Array; b: Uint8Array };
    const len = p.a.length;
    for (let at = Math.max(0, i - len + 1); at <= i && at + len <= a.length; at++) {
      if (holds(a, at, p.a) && holds(b, at, p.b)) return { at, pair };
    }
  }
  return undefined;
}

function holds(buf: Buffer, at: number, bytes: Uint8Array): boolean {
  for (let k = 0; k < bytes.length; k++) if (buf[at + k] !== bytes[k]) return false;
  return true;
}
