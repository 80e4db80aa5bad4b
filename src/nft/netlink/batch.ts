// Over 400 lines: one batch's whole encoding (every operation's message, the grouped elements, the slices) kept together with the error mapping that reads it back.
// One nf_tables transaction over netlink: the caller's operations become one batch (BATCH_BEGIN … END)
// in one datagram, which the kernel applies whole or not at all. When it refuses, the answer carries
// the sequence number of each failing message, which maps back to the operation the caller passed.
import { KernelError, type NetlinkSocket } from '../../kernel/index.ts';
import { parseError, splitMessages, type MessageBuilder, type NlError } from '../../kernel/netlink-codec.ts';
import type { Collector } from '../../kernel/netlink-socket.ts';
import { NLM_F, NLMSG } from '../../kernel/netlink-const.ts';
import { batchMarker, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END } from '../netlink-msgs.ts';
import { ANON_SET_NAME, FIELDS, sameBytes, type Construct } from './compile.ts';
import { encodeRange } from './values.ts';
import {
  delChain,
  delElements,
  delRule,
  delSet,
  delTable,
  encodeInto,
  flushChain,
  flushSet,
  newChain,
  newElements,
  newRule,
  newSet,
  newTable,
  type BaseChainSpec,
  type ElementSpec,
  type RulePlacement,
  type SetSpec,
  type TableRef,
} from './messages.ts';
import { GrowingSink } from './sink.ts';

export type NftOp =
  | ({ op: 'add-table'; exclusive?: boolean } & TableRef)
  | ({ op: 'delete-table' } & TableRef)
  | ({ op: 'add-chain'; name: string; base?: BaseChainSpec; exclusive?: boolean; comment?: string } & TableRef)
  | ({ op: 'delete-chain'; name: string } & TableRef)
  | ({ op: 'flush-chain'; chain: string } & TableRef)
  | ({
      op: 'add-rule';
      chain: string;
      rule: readonly Construct[];
      comment?: string;
      placement?: RulePlacement;
    } & TableRef)
  | ({ op: 'delete-rule'; chain: string; handle: bigint | number } & TableRef)
  | { op: 'add-set'; set: SetSpec; exclusive?: boolean }
  | ({ op: 'delete-set'; name: string } & TableRef)
  | ({ op: 'flush-set'; name: string } & TableRef)
  | { op: 'add-elements'; set: SetSpec; elements: readonly ElementSpec[]; exclusive?: boolean }
  | { op: 'delete-elements'; set: SetSpec; elements: readonly ElementSpec[] };

/** "add rule to chain inet strand c": what an error says was being done. */
export function describeOp(o: NftOp): string {
  const where = (r: TableRef) => `${r.family ?? 'inet'} ${r.table}`;
  switch (o.op) {
    case 'add-table':
      return `add table ${where(o)}`;
    case 'delete-table':
      return `delete table ${where(o)}`;
    case 'add-chain':
      return `add chain ${where(o)} ${o.name}`;
    case 'delete-chain':
      return `delete chain ${where(o)} ${o.name}`;
    case 'flush-chain':
      return `flush chain ${where(o)} ${o.chain}`;
    case 'add-rule':
      return `add rule to chain ${where(o)} ${o.chain}${o.comment !== undefined ? ` (comment "${o.comment}")` : ''}`;
    case 'delete-rule':
      return `delete rule handle ${o.handle} from chain ${where(o)} ${o.chain}`;
    case 'add-set':
      return `add set ${where(o.set)} ${o.set.name}`;
    case 'delete-set':
      return `delete set ${where(o)} ${o.name}`;
    case 'flush-set':
      return `flush set ${where(o)} ${o.name}`;
    case 'add-elements':
      return `add ${o.elements.length} element(s) to set ${where(o.set)} ${o.set.name}`;
    case 'delete-elements':
      return `delete ${o.elements.length} element(s) from set ${where(o.set)} ${o.set.name}`;
  }
}

/** The batch's messages in order, each a builder of its own (checks, tests). Sets created here get ids 1, 2, … */
export function encodeOps(ops: readonly NftOp[]): MessageBuilder[] {
  const separate: MessageBuilder[] = [];
  const encoder = new BatchEncoder({ group: ops.length > SMALL_BATCH, separate });
  ops.forEach((o, index) => encoder.add(o, index));
  encoder.finish();
  return separate;
}

/**
 * A rule's anonymous sets (`field { a, b }`), as nft sends them just before the rule: the set (flags
 * anonymous and constant, named `__set%d` for the kernel to number) and its elements, with an id the
 * rule's lookup names.
 */
function anonSets(
  o: Extract<NftOp, { op: 'add-rule' }>,
  nextId: () => number,
): { messages: MessageBuilder[]; ids: number[] } {
  const messages: MessageBuilder[] = [];
  const ids: number[] = [];
  for (const c of o.rule) {
    if (c.kind !== 'match-set') continue;
    const type = FIELDS[c.field].type;
    for (const v of c.values) {
      const r = encodeRange(type, v);
      // nft merges ranges of an anonymous interval set; Strand's rules have none, so none is encoded.
      if (!sameBytes(r.first, r.last)) {
        throw new RangeError(`${c.field} { … }: a range or prefix in an anonymous set (${v})`);
      }
    }
    const id = nextId();
    const anonymous = { size: c.values.length };
    const set: SetSpec = { family: o.family ?? 'inet', table: o.table, name: ANON_SET_NAME, key: [type], anonymous };
    const ids1 = new Map([[ANON_SET_NAME, id]]);
    messages.push(
      newSet(set, id),
      newElements(
        set,
        c.values.map((v) => ({ key: [v] })),
        ids1,
      ),
    );
    ids.push(id);
  }
  return { messages, ids };
}

/**
 * A generous guess at a batch's datagram (BatchEncoder's sizeHint) from its rules and other
 * operations: a policy rule is ~520 bytes, an element 16-40, a chain or set ~100.
 */
export function batchSizeHint(rules: number, others: number): number {
  return 64 * 1024 + rules * 768 + others * 128;
}

/** Elements of one set that follow each other in a large batch go in one message, at most this many
 * (nft does the same): 50,000 addresses are then ~800 messages, not 50,000 (each a buffer of its own,
 * 12 MiB and a second of encoding at 50,000 pods). A nested attribute's length is 16 bits: 64
 * elements of the longest key and verdict stay well under it. */
export const ELEMENTS_PER_MESSAGE = 64;

/**
 * A batch's messages, encoded one after another into one buffer between its BATCH_BEGIN (at 0) and
 * BATCH_END: the datagram, once numbered (prepareBatch). Each message has the index of the operation
 * it belongs to, for the kernel's refusals.
 */
export interface EncodedBatch {
  readonly sink: GrowingSink;
  /** Messages (the markers not counted). */
  readonly length: number;
  /** Where each message starts in the sink. */
  readonly offsets: readonly number[];
  /** The operation each message belongs to. */
  readonly indexes: readonly number[];
  /** Where BATCH_END starts. */
  readonly endAt: number;
}

/** The batch's messages, each with the index of the operation it belongs to (a rule's anonymous sets
 * go with it; elements grouped with their first operation's). Ids are per batch and only need to tell
 * this batch's new sets apart; a rule or element refers to a set by name and id, and the kernel looks
 * the name up first and falls back on the id. The messages are built into one growing buffer
 * (GrowingSink), the datagram to be, and only their offsets are kept. */
export class BatchEncoder {
  /** Group consecutive element additions (large batches: a refusal then names the group's first). */
  private readonly group: boolean;
  private readonly sink: GrowingSink;
  private readonly separate: MessageBuilder[] | undefined;
  private readonly offsets: number[] = [];
  private readonly indexes: number[] = [];
  private readonly setIds = new Map<string, Map<string, number>>();
  private nextId = 1;
  private pending: { set: SetSpec; elements: ElementSpec[]; index: number; exclusive: boolean | undefined } | undefined;
  private finished: EncodedBatch | undefined;

  /** `separate`: each message a builder of its own, pushed there (encodeOps), no datagram.
   * `sizeHint`: the datagram's bytes as batchSizeHint guesses them (a large batch). */
  constructor(opts: { group?: boolean; separate?: MessageBuilder[]; sizeHint?: number } = {}) {
    this.group = opts.group ?? false;
    this.separate = opts.separate;
    // A large batch grows to MBs (7 at 50,000 pods): each doubling copied it into fresh memory (166 ms
    // of a rebuild's encode at 50,000 pods). Sized once from the hint instead: memory not written is
    // never touched (allocUnsafeSlow), so a generous guess costs address space, not resident memory.
    const size = this.separate ? 64 : this.group ? Math.max(256 * 1024, opts.sizeHint ?? 0) : 2048;
    this.sink = new GrowingSink(size);
    if (!this.separate) batchMarker(NFNL_MSG_BATCH_BEGIN, this.sink);
  }

  /** Messages encoded so far. */
  get count(): number {
    return this.separate ? this.separate.length : this.offsets.length;
  }

  /** Encodes one operation (its index in the caller's list). */
  add(o: NftOp, index: number): void {
    if (this.finished) throw new Error('BatchEncoder: add after finish');
    if (o.op === 'add-elements' && this.group) {
      const p = this.pending;
      if (
        p &&
        p.set === o.set &&
        p.exclusive === o.exclusive &&
        p.elements.length + o.elements.length <= ELEMENTS_PER_MESSAGE
      ) {
        p.elements.push(...o.elements);
        return;
      }
      this.flushPending();
      this.pending = { set: o.set, elements: [...o.elements], index, exclusive: o.exclusive };
      return;
    }
    this.flushPending();
    this.encode(() => {
      if (o.op === 'add-rule' && o.rule.some((c) => c.kind === 'match-set')) {
        const anon = anonSets(o, () => this.nextId++);
        for (const message of anon.messages) this.record(message, index);
        this.record(newRule(o, o.chain, o.rule, o.comment, this.idsFor(o), o.placement, anon.ids), index);
        return;
      }
      this.record(this.one(o), index);
    });
  }

  /** The batch, once every operation is added (BATCH_END written: nothing more can be added). */
  finish(): EncodedBatch {
    if (this.finished) return this.finished;
    this.flushPending();
    const endAt = this.sink.used;
    if (!this.separate) batchMarker(NFNL_MSG_BATCH_END, this.sink);
    this.finished = { sink: this.sink, length: this.count, offsets: this.offsets, indexes: this.indexes, endAt };
    return this.finished;
  }

  private encode(build: () => void): void {
    if (this.separate) build();
    else encodeInto(this.sink, build);
  }

  private record(message: MessageBuilder, index: number): void {
    if (this.separate) this.separate.push(message);
    else {
      this.offsets.push(message.offset);
      this.indexes.push(index);
    }
  }

  private flushPending(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    this.encode(() => this.record(newElements(p.set, p.elements, this.idsFor(p.set), p.exclusive), p.index));
  }

  private idsFor(r: TableRef): Map<string, number> {
    const table = `${r.family ?? 'inet'} ${r.table}`;
    let ids = this.setIds.get(table);
    if (!ids) this.setIds.set(table, (ids = new Map()));
    return ids;
  }

  private one(o: NftOp): MessageBuilder {
    switch (o.op) {
      case 'add-table':
        return newTable(o, o.exclusive);
      case 'delete-table':
        return delTable(o);
      case 'add-chain':
        return newChain(o, o.name, o.base, o.exclusive, o.comment);
      case 'delete-chain':
        return delChain(o, o.name);
      case 'flush-chain':
        return flushChain(o, o.chain);
      case 'add-rule':
        return newRule(o, o.chain, o.rule, o.comment, this.idsFor(o), o.placement);
      case 'delete-rule':
        return delRule(o, o.chain, o.handle);
      case 'add-set': {
        const id = this.nextId++;
        this.idsFor(o.set).set(o.set.name, id);
        return newSet(o.set, id, o.exclusive);
      }
      case 'delete-set':
        return delSet({ ...o });
      case 'flush-set':
        return flushSet(o);
      case 'add-elements':
        return newElements(o.set, o.elements, this.idsFor(o.set), o.exclusive);
      case 'delete-elements':
        return delElements(o.set, o.elements, this.idsFor(o.set));
    }
  }
}

function encodeIndexed(ops: readonly NftOp[]): EncodedBatch {
  const encoder = new BatchEncoder({ group: ops.length > SMALL_BATCH });
  ops.forEach((o, index) => encoder.add(o, index));
  return encoder.finish();
}

/** The kernel refused a batch: nothing of it was applied. `index` is the first failing operation. */
export class NftBatchError extends KernelError {
  /** Index in the caller's operations; undefined when the commit itself failed (no one message). */
  readonly index: number | undefined;
  readonly op: NftOp | undefined;
  /** Every failure the kernel reported, by index (later ones may only follow from the first). */
  readonly failures: ReadonlyArray<{ index: number | undefined; errno: number; message?: string }>;

  constructor(
    init: ConstructorParameters<typeof KernelError>[0],
    index: number | undefined,
    op: NftOp | undefined,
    failures: NftBatchError['failures'],
  ) {
    super(init);
    this.name = 'NftBatchError';
    this.index = index;
    this.op = op;
    this.failures = failures;
  }
}

/** Default socket send buffer; a larger batch first grows the buffer (see reserveBuffers). */
const DEFAULT_SNDBUF = 32 * 1024;
/** The socket's receive buffer (NetlinkSocket asks for 1 MiB) holds this many error answers. */
const DEFAULT_RCVBUF = 1024 * 1024;
const SMALL_BATCH = 256;

/** What a batch needs of a socket (a NETLINK_NETFILTER NetlinkSocket; a stub in unit tests). */
export type BatchSocket = Pick<NetlinkSocket, 'nextSeq' | 'exchange' | 'reserveBuffers' | 'netns'>;

export interface BatchResult {
  messages: number;
  bytes: number;
}

/**
 * Applies `ops` as one transaction. Only the last message asks for an acknowledgement: the kernel
 * answers every failing message with an error whatever its flags, and writes all the answers before
 * send() returns, so one ack per message would only cost the receive buffer 10,000 skbs on a large
 * batch without telling more. Throws NftBatchError naming the first operation the kernel refused.
 */
export function applyBatch(nl: BatchSocket, ops: readonly NftOp[], what = 'apply nftables batch'): BatchResult {
  if (ops.length === 0) return { messages: 0, bytes: 0 };
  return sendEncoded(nl, encodeIndexed(ops), ops.length, (i) => ops[i], what);
}

/**
 * Sends encoded messages (BatchEncoder) as one transaction: applyBatch's second half, for a caller that
 * encoded a large batch a slice at a time. `count` operations were encoded; `opAt` describes one for an
 * error (undefined when it is not at hand).
 */
export function sendEncoded(
  nl: BatchSocket,
  batch: EncodedBatch,
  count: number,
  opAt: (index: number) => NftOp | undefined,
  what = 'apply nftables batch',
): BatchResult {
  if (batch.length === 0) return { messages: 0, bytes: 0 };
  const steps = prepareBatch(nl, batch);
  let step = steps.next();
  while (!step.done) step = steps.next();
  return commitBatch(nl, step.value, count, opAt, what);
}

/** A batch numbered and framed (BATCH_BEGIN … END), ready for its one send. */
export interface PreparedBatch {
  /** The sink's bytes: BATCH_BEGIN, the messages, BATCH_END. */
  datagram: Buffer;
  messages: number;
  beginSeq: number;
  lastSeq: number;
  indexBySeq: Map<number, number>;
}

/**
 * Numbers the messages where they lie in the datagram, pausing (yielding) every 1,024 of them: a
 * caller that must not hold the event loop goes on between the pauses. Sequence numbers are the
 * socket's own (another exchange in a pause takes its own), so the answers still map to their
 * operations. The last message asks for the acknowledgement.
 */
export function* prepareBatch(nl: BatchSocket, batch: EncodedBatch): Generator<void, PreparedBatch> {
  // Nothing grows the sink once the batch is finished: its buffer is the datagram's.
  const buf = batch.sink.buf;
  const beginSeq = nl.nextSeq();
  buf.writeUInt32LE(beginSeq >>> 0, 8);
  const indexBySeq = new Map<number, number>();
  let lastSeq = 0;
  const n = batch.length;
  for (let i = 0; i < n; i++) {
    const at = batch.offsets[i] as number;
    lastSeq = nl.nextSeq();
    indexBySeq.set(lastSeq, batch.indexes[i] as number);
    buf.writeUInt32LE(lastSeq >>> 0, at + 8);
    if (i === n - 1) buf.writeUInt16LE(buf.readUInt16LE(at + 6) | NLM_F.ACK, at + 6);
    if ((i & 1023) === 1023) yield;
  }
  buf.writeUInt32LE(nl.nextSeq() >>> 0, batch.endAt + 8);
  return { datagram: batch.sink.bytes(), messages: n, beginSeq, lastSeq, indexBySeq };
}

/** Sends a prepared batch in one datagram: the kernel commits it whole or refuses it whole. */
export function commitBatch(
  nl: BatchSocket,
  prepared: PreparedBatch,
  count: number,
  opAt: (index: number) => NftOp | undefined,
  what = 'apply nftables batch',
): BatchResult {
  const c = committing(nl, prepared, count, opAt, what);
  nl.exchange(c.datagram, c.collector, what);
  return c.result();
}

/**
 * commitBatch with the send on a worker thread (NetlinkSocket.exchangeOffThread): the kernel's commit
 * of a large batch (0.3-0.4 s at 50,000 pods) does not hold the event loop. `nl` must be a socket
 * nothing else uses meanwhile.
 */
export async function commitBatchOffThread(
  nl: BatchSocket & Pick<NetlinkSocket, 'exchangeOffThread'>,
  prepared: PreparedBatch,
  count: number,
  opAt: (index: number) => NftOp | undefined,
  what = 'apply nftables batch',
): Promise<BatchResult> {
  const c = committing(nl, prepared, count, opAt, what);
  await nl.exchangeOffThread(c.datagram, c.collector, what);
  return c.result();
}

/** The datagram of a prepared batch, the collector of its answers, and the result they make. */
function committing(
  nl: BatchSocket,
  prepared: PreparedBatch,
  count: number,
  opAt: (index: number) => NftOp | undefined,
  what: string,
): { datagram: Buffer; collector: Collector; result: () => BatchResult } {
  const { beginSeq, lastSeq, indexBySeq } = prepared;
  const datagram = prepared.datagram;
  // A batch whose every message fails (a missing table) is answered by one error each; a receive
  // buffer too small for them loses answers (ENOBUFS). So, as nft does, room for one per message
  // (the kernel doubles the figure for its own overhead, ~1 KiB an error skb).
  if (datagram.length > DEFAULT_SNDBUF - 64 || prepared.messages > SMALL_BATCH) {
    nl.reserveBuffers(datagram.length + 4096, Math.max(DEFAULT_RCVBUF, prepared.messages * 1024));
  }

  const failures: Array<{ index: number | undefined; errno: number; message?: string; error: NlError }> = [];
  const collector: Collector = {
    done: false,
    // Left undefined so the socket does not throw its own error: this batch maps errors itself.
    error: undefined,
    feed(d: Buffer) {
      for (const m of splitMessages(d)) {
        if (m.type !== NLMSG.ERROR) continue;
        const e = parseError(m);
        const index = indexBySeq.get(m.seq);
        if (index === undefined && m.seq !== beginSeq) continue;
        if (e.errno !== 0) {
          failures.push({ index, errno: e.errno, ...(e.message ? { message: e.message } : {}), error: e });
        }
        // A commit that fails answers on BATCH_BEGIN's sequence; the last message's answer still follows.
        // Some kernels drop the other answers then, so that error alone ends the batch too.
        if (m.seq === lastSeq || (m.seq === beginSeq && e.errno !== 0)) this.done = true;
      }
      return this.done;
    },
  };
  const result = (): BatchResult => {
    if (failures.length === 0) return { messages: prepared.messages, bytes: datagram.length };
    const first = failures.find((f) => f.index !== undefined) ?? (failures[0] as (typeof failures)[number]);
    const op = first.index === undefined ? undefined : opAt(first.index);
    const operation =
      first.index === undefined
        ? `commit ${what}`
        : `${op ? describeOp(op) : 'operation'} (operation ${first.index + 1} of ${count}; ${what})`;
    throw new NftBatchError(
      { errno: first.errno, operation, netns: nl.netns, kernelMessage: first.message },
      first.index,
      op,
      failures.map(({ index, errno, message }) => ({ index, errno, ...(message ? { message } : {}) })),
    );
  };
  return { datagram, collector, result };
}
