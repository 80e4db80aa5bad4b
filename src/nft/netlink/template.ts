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
import type { MessageBuilder } from '../../kernel/netlink-codec.ts';
import { NLM_F } from '../../kernel/netlink-const.ts';
import { parseIp, tryParseIp } from '../../net/ip.ts';
import { batchMarker, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END } from '../netlink-msgs.ts';
import type { StandinPair } from '../transport.ts';
import type { BatchSocket, PreparedBatch } from './batch.ts';

/** A batch's messages back to back (no BATCH_BEGIN/END, sequence numbers 0), and where each starts. */
export interface EncodedBody {
  body: Buffer;
  offsets: readonly number[];
  /** The operation each message belongs to (BatchEncoder's index). */
  indexes: readonly number[];
}

/** Where a stand-in address of pair `pair` sits in the body. */
interface Window {
  at: number;
  pair: number;
}

/** The messages as one body; each builder is finished (spent) here. */
export function encodedBody(messages: ReadonlyArray<{ message: MessageBuilder; index: number }>): EncodedBody {
  const parts: Buffer[] = [];
  const offsets: number[] = [];
  const indexes: number[] = [];
  let at = 0;
  for (const { message, index } of messages) {
    const bytes = message.finish(0);
    parts.push(bytes);
    offsets.push(at);
    indexes.push(index);
    at += bytes.length;
  }
  return { body: Buffer.concat(parts, at), offsets, indexes };
}

/** A body whose address windows are known: `fill` writes real addresses into a copy of it. */
export class AddressTemplate {
  readonly encoded: EncodedBody;
  private readonly pairs: readonly StandinPair[];
  private readonly windows: readonly Window[];

  private constructor(encoded: EncodedBody, pairs: readonly StandinPair[], windows: readonly Window[]) {
    this.encoded = encoded;
    this.pairs = pairs;
    this.windows = windows;
  }

  /**
   * The template of `a` when `a` and `b` (the same transaction encoded with each pair's `a` and then its
   * `b`) differ only in whole stand-in addresses; undefined otherwise.
   */
  static of(a: EncodedBody, b: EncodedBody, pairs: readonly StandinPair[]): AddressTemplate | undefined {
    if (a.body.length !== b.body.length || a.offsets.length !== b.offsets.length) return undefined;
    if (a.offsets.some((o, i) => o !== b.offsets[i]) || a.indexes.some((x, i) => x !== b.indexes[i])) return undefined;
    const bytes = pairs.map((p) => ({ a: parseIp(p.a).bytes, b: parseIp(p.b).bytes }));
    if (bytes.some((p) => p.a.length !== p.b.length)) return undefined;
    const windows: Window[] = [];
    let covered = 0;
    for (let i = 0; i < a.body.length; i++) {
      if (a.body[i] === b.body[i] || i < covered) continue;
      // A differing byte: the window of a stand-in that ends at or after it and covers it.
      const found = findWindow(a.body, b.body, i, bytes);
      if (!found) return undefined;
      windows.push(found);
      covered = found.at + (bytes[found.pair] as { a: Uint8Array }).a.length;
    }
    return new AddressTemplate(a, pairs, windows);
  }

  /** How many addresses it writes. */
  get addresses(): number {
    return this.windows.length;
  }

  /** A copy of the body with each stand-in replaced by `real.get(pair.a)`; undefined when an address is
   * missing or of another family than its stand-in. */
  fill(real: ReadonlyMap<string, string>): Buffer | undefined {
    const values: Uint8Array[] = [];
    for (const p of this.pairs) {
      const ip = real.get(p.a);
      if (ip === undefined) return undefined;
      const parsed = tryParseIp(ip);
      if (!parsed || parsed.family !== parseIp(p.a).family) return undefined;
      values.push(parsed.bytes);
    }
    const body = Buffer.from(this.encoded.body);
    for (const w of this.windows) body.set(values[w.pair] as Uint8Array, w.at);
    return body;
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

/**
 * A filled body framed for commitBatch: numbered with the socket's sequence numbers (the last message
 * asking for the acknowledgement), between BATCH_BEGIN and BATCH_END.
 */
export function framedBody(nl: BatchSocket, encoded: EncodedBody, body: Buffer): PreparedBatch {
  const beginSeq = nl.nextSeq();
  const indexBySeq = new Map<number, number>();
  let lastSeq = 0;
  const { offsets, indexes } = encoded;
  for (let i = 0; i < offsets.length; i++) {
    const at = offsets[i] as number;
    lastSeq = nl.nextSeq();
    indexBySeq.set(lastSeq, indexes[i] as number);
    body.writeUInt32LE(lastSeq >>> 0, at + 8);
    if (i === offsets.length - 1) body.writeUInt16LE(body.readUInt16LE(at + 6) | NLM_F.ACK, at + 6);
  }
  const parts = [
    batchMarker(NFNL_MSG_BATCH_BEGIN).finish(beginSeq),
    body,
    batchMarker(NFNL_MSG_BATCH_END).finish(nl.nextSeq()),
  ];
  return { parts, messages: offsets.length, beginSeq, lastSeq, indexBySeq };
}
