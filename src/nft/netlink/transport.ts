// Over 400 lines: every Transaction verb and read of the transport contract over netlink.
// The agent's NftTransport: nf_tables over netlink in process, no `nft` process. A Transaction's
// operations become one batch (netlink/from-transaction.ts maps them one to one), which the kernel
// applies whole or not at all; a refusal comes back as an NftError naming the operation, with the
// line and command of the same transaction's `nft -f` script, as the process transport reports it.
// Reads (list, summary, counters, the drift probe) are dumps over the same socket (read.ts); rule
// bodies are not decoded: callers know their rules by comment, and drift by the chains' digests.
import { errnoName, isKernelError, strerror, type NetlinkSocket } from '../../kernel/index.ts';
import { NftError, type NftErrorReason } from '../errors.ts';
import {
  emptyTableState,
  renderOperation,
  STRAND_TABLE,
  checkTableRef,
  type ChainState,
  type ElementState,
  type Hook,
  type SetFlag,
  type TableRef,
  type TableState,
} from '../objects.ts';
import { describeTransaction, type Operation, type Transaction } from '../transaction.ts';
import { drainSliced } from '../../util/sliced.ts';
import type {
  ChainDigest,
  DriftProbe,
  ListOnly,
  NftTransport,
  RuleCounter,
  SentBatch,
  StandinPair,
  TableSnapshot,
  TableSummary,
  TransactionTemplate,
} from '../transport.ts';
import {
  BatchEncoder,
  batchSizeHint,
  commitBatchOffThread,
  encodeOps,
  NftBatchError,
  prepareBatch,
  sendEncoded,
  type EncodedBatch,
  type NftOp,
} from './batch.ts';
import { ChainHandles, editedChains, editOps, planChainEdits, type ChainEditPlan } from './chain-edits.ts';
import { NF_HOOK, NFT_SET_F } from './const.ts';
import { nftOpMapper, toNftOps, UnmappableError } from './from-transaction.ts';
import type { SetSpec } from './messages.ts';
import {
  listChains,
  listSets,
  openNftReader,
  readGeneration,
  readSetElements,
  readTableCounters,
  readTableRules,
  tableExists,
  type ElementInfo,
  type SetInfo,
} from './read.ts';
import { AddressTemplate } from './template.ts';
import { DATA_TYPES, formatScalar, keyTypesOfId, type TypeName } from './values.ts';

export interface NetlinkTransportOptions {
  table?: TableRef;
  /** A network namespace name under /run/netns (the tests' and the simulated cluster's nodes). */
  netns?: string;
  /** The socket opener (tests); default a NETLINK_NETFILTER socket in `netns`. */
  open?: () => NetlinkSocket;
}

export interface NetlinkTransport extends NftTransport {
  readonly probe: DriftProbe;
  runSliced(tx: Transaction, breathe: () => Promise<void>, sliceMs?: number): Promise<SentBatch>;
  /** Transactions sent since creation (`templated` of them from a template), the netlink messages of
   * the last one (a chain edit sends fewer than the transaction's operations), and the chains whose
   * handles an edit had to read. */
  readonly stats: { batches: number; templated: number; lastMessages: number; readonly chainReads: number };
  close(): void;
}

/** A transaction this large gives the loop back once before its encoding (a rebuild, not a change). */
const BREATHE_FIRST_OPS = 4096;

/** Batches of at most this many messages are committed on the event loop (runSliced). */
const INLINE_MESSAGES = 256;

const HOOKS: readonly Hook[] = ['prerouting', 'input', 'forward', 'output', 'postrouting'];
const HOOK_BY_NUMBER = new Map<number, Hook>(HOOKS.map((h) => [NF_HOOK[h], h]));

/** The kernel's errno as the reasons callers branch on (the same as runner.ts reads from nft's text). */
export function reasonOfErrno(errno: number): NftErrorReason {
  switch (errnoName(errno)) {
    case 'ENOENT':
      return 'not-found';
    case 'EEXIST':
      return 'exists';
    case 'EBUSY':
      return 'busy';
    case 'EOPNOTSUPP':
      return 'unsupported';
    case 'EINVAL':
    case 'ERANGE':
    case 'E2BIG':
    case 'ENAMETOOLONG':
    case 'ELOOP':
    case 'EMLINK':
      return 'invalid';
    default:
      return 'failed';
  }
}

function flagsOf(s: SetInfo): SetFlag[] {
  const out: SetFlag[] = [];
  if (s.flags & NFT_SET_F.CONSTANT) out.push('constant');
  if (s.flags & NFT_SET_F.INTERVAL) out.push('interval');
  if (s.flags & NFT_SET_F.TIMEOUT) out.push('timeout');
  return out;
}

/** The datagram size to reserve for a transaction's batch (batchSizeHint). */
function sizeHintOf(ops: readonly Operation[]): number {
  let rules = 0;
  for (const o of ops) if (o.object.kind === 'rule' && o.verb !== 'delete') rules++;
  return batchSizeHint(rules, ops.length - rules);
}

export function createNetlinkTransport(options: NetlinkTransportOptions = {}): NetlinkTransport {
  const table = options.table ?? STRAND_TABLE;
  checkTableRef(table);
  const netns = options.netns;
  if (netns !== undefined && !/^[A-Za-z0-9_.-]+$/.test(netns))
    throw new TypeError(`invalid network namespace name ${JSON.stringify(netns)}`);
  const open = options.open ?? (() => openNftReader(netns === undefined ? {} : { netns: `/run/netns/${netns}` }));
  const ref = { family: table.family, name: table.name };
  /** The handles of chains the agent edits (chain-edits.ts). */
  const handles = new ChainHandles();
  const stats = {
    batches: 0,
    templated: 0,
    lastMessages: 0,
    get chainReads() {
      return handles.reads;
    },
  };
  /** Key types of the table's sets, for element operations of transactions that do not declare them. */
  const sets = new Map<string, SetSpec>();
  let socket: NetlinkSocket | undefined;

  /** Runs `fn` on the socket; a socket error other than the kernel's answer closes it for a new one. */
  function withSocket<T>(fn: (nl: NetlinkSocket) => T): T {
    socket ??= open();
    try {
      return fn(socket);
    } catch (err) {
      if (
        !(err instanceof NftBatchError) &&
        !(isKernelError(err) && ['ENOENT', 'EEXIST', 'EBUSY', 'EINVAL'].includes(err.code))
      ) {
        socket.close();
        socket = undefined;
      }
      throw err;
    }
  }

  function specOfListed(s: SetInfo): SetSpec | undefined {
    const key = keyTypesOfId(s.keyType ?? 0);
    if (!key) return undefined;
    const flags = flagsOf(s).filter((f): f is 'interval' | 'constant' | 'timeout' => f !== 'dynamic');
    return {
      family: table.family,
      table: table.name,
      name: s.name,
      key,
      ...(s.map ? { verdictMap: true } : {}),
      ...(flags.length ? { flags } : {}),
    };
  }

  function learnSets(nl: NetlinkSocket): void {
    sets.clear();
    for (const s of listSets(nl, ref)) {
      const spec = specOfListed(s);
      if (spec) sets.set(s.name, spec);
    }
  }

  function fail(operation: string, err: unknown, tx?: Transaction): NftError {
    const script = tx?.render(table);
    const at = (index: number | undefined) => {
      const o = index === undefined ? undefined : tx?.operations[index];
      return o && index !== undefined
        ? { line: index + 1, failingCommand: renderOperation(o.verb, o.object, table) }
        : {};
    };
    if (err instanceof UnmappableError) {
      return new NftError({
        reason: 'invalid',
        operation,
        detail: err.message,
        netns,
        ...(script ? { script } : {}),
        ...at(err.index),
        cause: err,
      });
    }
    if (err instanceof NftBatchError) {
      const kernel = err.failures[0]?.message;
      const detail = `${strerror(err.errno)}${kernel ? ` (${kernel})` : ''}${err.op ? `: ${err.message.replace(/^failed to /, '')}` : ''}`;
      return new NftError({
        reason: reasonOfErrno(err.errno),
        operation,
        detail,
        netns,
        ...(script ? { script } : {}),
        ...at(err.index),
        cause: err,
      });
    }
    if (isKernelError(err))
      return new NftError({ reason: reasonOfErrno(err.errno), operation, detail: err.message, netns, cause: err });
    // A value the encoder refused before anything was sent (an unknown name, a range in an anonymous set).
    if (err instanceof RangeError)
      return new NftError({ reason: 'invalid', operation, detail: err.message, netns, cause: err });
    const text = err instanceof Error ? err.message : String(err);
    return new NftError({ reason: 'unavailable', operation, detail: `nf_tables netlink: ${text}`, netns, cause: err });
  }

  /** Lists the table's sets when the transaction has elements of a set it does not declare and that
   * is not known here. A set the transaction itself declares before its elements needs no listing
   * (toNftOps knows it): a pod-start bind adds the pod's sets with their members, and listing every
   * set of the table for them cost a dump per notice. */
  function learnSetsFor(nl: NetlinkSocket, tx: Transaction): void {
    const declared = new Set<string>();
    let unknown = false;
    for (const o of tx.operations) {
      const k = o.object.kind;
      if ((k === 'set' || k === 'map') && (o.verb === 'add' || o.verb === 'create')) declared.add(o.object.name);
      else if (k === 'element') {
        const set = (o.object as { set: string }).set;
        if (!declared.has(set) && !sets.has(set)) unknown = true;
      }
    }
    if (unknown) learnSets(nl);
  }

  /** After a commit of `ops`: the kept handles follow the generation, and the new handles of the
   * chains it edited are read once the change is done (not on its path). */
  function handlesAfter(nl: NetlinkSocket, ops: readonly Operation[]): void {
    handles.committed(ops, readGeneration(nl));
    const chains = editedChains(ops);
    if (chains.length === 0) return;
    setImmediate(() => {
      try {
        withSocket((s) => handles.refresh(s, ref, chains));
      } catch {
        // Read at the next edit instead.
      }
    });
  }

  function applied(setChanges: readonly NftOp[], messages: number): void {
    stats.batches++;
    stats.lastMessages = messages;
    for (const o of setChanges) {
      if (o.op === 'add-set') sets.set(o.set.name, o.set);
      else if (o.op === 'delete-set') sets.delete(o.name);
    }
  }

  /**
   * Maps and encodes a transaction's operations in order, the chain edits of `plan` as edits
   * (chain-edits.ts), pausing every 16 operations (a cold rule takes ~0.1 ms, and drainSliced
   * looks at the clock only at a pause); returns the set additions and deletions.
   */
  function* encode(
    ops: readonly Operation[],
    plan: ChainEditPlan,
    encoder: BatchEncoder,
  ): Generator<void, NftOp[], void> {
    const map = nftOpMapper(table, (name) => sets.get(name));
    const setChanges: NftOp[] = [];
    let n = 0;
    for (let i = 0; i < ops.length; i++) {
      if ((++n & 15) === 0) yield;
      const handles = plan.get(i);
      if (handles !== undefined) {
        for (const [o, index] of editOps(ops, i, handles, map)) encoder.add(o, index);
        i += (ops[i] as Extract<Operation, { verb: 'flush' }>).edit?.rules ?? 0;
        continue;
      }
      const o = map(ops[i] as Operation, i);
      if (o.op === 'add-set' || o.op === 'delete-set') setChanges.push(o);
      encoder.add(o, i);
    }
    return setChanges;
  }

  /** The netlink operation of a transaction's operation at `i`, for an error (only then). */
  function opAtOf(tx: Transaction): (i: number) => NftOp | undefined {
    const guess = (name: string): SetSpec =>
      sets.get(name) ?? { family: table.family, table: table.name, name, key: ['ipv4_addr'] };
    return (i) => {
      const o = tx.operations[i];
      if (!o) return undefined;
      try {
        return nftOpMapper(table, guess)(o, i);
      } catch {
        return undefined;
      }
    };
  }

  async function run(tx: Transaction): Promise<void> {
    if (tx.empty) return;
    const operation = describeTransaction(tx, table);
    try {
      commitWhole(tx.operations, encodeWhole(tx), opAtOf(tx), operation);
    } catch (err) {
      throw fail(operation, err, tx);
    }
  }

  async function runSliced(tx: Transaction, breathe: () => Promise<void>, sliceMs = 20): Promise<SentBatch> {
    const timing = { encodeMs: 0, commitMs: 0, slices: 1 };
    if (tx.empty) return { messages: 0, bytes: 0, ...timing };
    const operation = describeTransaction(tx, table);
    const started = performance.now();
    try {
      const ops = tx.operations;
      const plan = withSocket((nl) => {
        learnSetsFor(nl, tx);
        return planChainEdits(nl, ref, ops, handles);
      });
      // Mapped and encoded an operation at a time, yielding every sliceMs: the NftOps are not kept
      // (a rule's constructs, an element's key), only the messages.
      const encoder = new BatchEncoder({ group: ops.length > 256, sizeHint: sizeHintOf(ops) });
      // The listing, the chain edits' plan and the size hint went through every operation (~10 ms
      // cold at 50,000 pods): the loop is given back before the first slice rather than after it.
      if (ops.length > BREATHE_FIRST_OPS) {
        await breathe();
        timing.slices++;
      }
      const setChanges = await drainSliced(encode(ops, plan, encoder), breathe, sliceMs, timing);
      const messages = encoder.finish();
      const opAt = opAtOf(tx);
      if (messages.length <= INLINE_MESSAGES) {
        // A change's few messages: committed here, on the transport's socket. A worker's hand-over
        // (the messages cloned to it, a socket opened in the namespace, the answer posted back) cost
        // more than the kernel's commit of them (0.3 ms against 0.04 for a tiny batch at 50,000 pods).
        timing.encodeMs = performance.now() - started;
        const { commitMs, ...sent } = commitWhole(ops, { messages, setChanges }, opAt, operation);
        return { ...sent, ...timing, commitMs };
      }
      // Numbered and framed in slices too, then committed in one send, which the kernel applies whole
      // (atomic). The send runs on a worker thread (its 0.3-0.4 s at 50,000 pods hold no event loop),
      // over a socket of its own, so that no other exchange reads its answers meanwhile.
      const own = open();
      let sent: { messages: number; bytes: number };
      let committing: number;
      try {
        const prepared = await drainSliced(prepareBatch(own, messages), breathe, sliceMs, timing);
        committing = performance.now();
        timing.encodeMs = committing - started;
        sent = await commitBatchOffThread(own, prepared, ops.length, opAt, operation);
      } finally {
        own.close();
        messages.sink.free();
      }
      timing.commitMs = performance.now() - committing;
      applied(setChanges, sent.messages);
      withSocket((nl) => handlesAfter(nl, ops));
      return { ...sent, ...timing };
    } catch (err) {
      throw fail(operation, err, tx);
    }
  }

  /**
   * Commits a batch encoded whole on the transport's socket, then what follows every commit: the
   * sets it made known, the kept chain handles. `commitMs`: the send and the kernel's answer.
   */
  function commitWhole(
    ops: readonly Operation[],
    encoded: { messages: EncodedBatch; setChanges: readonly NftOp[] },
    opAt: (index: number) => NftOp | undefined,
    operation: string,
  ): { messages: number; bytes: number; commitMs: number } {
    const committing = performance.now();
    const sent = withSocket((nl) => sendEncoded(nl, encoded.messages, ops.length, opAt, operation));
    const commitMs = performance.now() - committing;
    applied(encoded.setChanges, sent.messages);
    withSocket((nl) => handlesAfter(nl, ops));
    return { ...sent, commitMs };
  }

  /** Maps and encodes a small transaction whole (runSliced's first half, on the event loop). */
  function encodeWhole(tx: Transaction): { messages: EncodedBatch; setChanges: NftOp[] } {
    return withSocket((nl) => {
      learnSetsFor(nl, tx);
      const plan = planChainEdits(nl, ref, tx.operations, handles);
      const encoder = new BatchEncoder({ group: tx.operations.length > 256 });
      const steps = encode(tx.operations, plan, encoder);
      let step = steps.next();
      while (!step.done) step = steps.next();
      return { messages: encoder.finish(), setChanges: step.value };
    });
  }

  function template(a: Transaction, b: Transaction, standins: readonly StandinPair[]): TransactionTemplate | undefined {
    if (a.empty) return undefined;
    const operation = describeTransaction(a, table);
    let ea: ReturnType<typeof encodeWhole>;
    let eb: ReturnType<typeof encodeWhole>;
    try {
      ea = encodeWhole(a);
      eb = encodeWhole(b);
    } catch {
      return undefined;
    }
    if (ea.messages.length > INLINE_MESSAGES) return undefined;
    const found = AddressTemplate.of(ea.messages, eb.messages, standins);
    if (!found) return undefined;
    // Made against the chain handles and set keys known now: valid until this transport commits again.
    const made = stats.batches;
    const { setChanges } = ea;
    const ops = a.operations;
    return {
      run(real) {
        if (stats.batches !== made) return undefined;
        const started = performance.now();
        const batch = found.fill(real);
        if (!batch) return undefined;
        try {
          const encodeMs = performance.now() - started;
          const sent = commitWhole(ops, { messages: batch, setChanges }, opAtOf(a), operation);
          stats.templated++;
          return { ...sent, encodeMs, slices: 1 };
        } catch (err) {
          throw fail(operation, err, a);
        }
      },
    };
  }

  async function check(tx: Transaction): Promise<void> {
    // No dry run exists in nf_tables: this checks that every operation has a netlink form and encodes;
    // what the kernel would refuse (a missing chain) shows at run(), which changes nothing then.
    if (tx.empty) return;
    try {
      const guess = (name: string): SetSpec =>
        sets.get(name) ?? { family: table.family, table: table.name, name, key: ['ipv4_addr'] };
      // Rules are encoded too (their values and anonymous sets); elements of sets not known here are not,
      // their key types being guessed.
      encodeOps(toNftOps(tx.operations, table, guess).filter((o) => o.op === 'add-rule'));
    } catch (err) {
      throw fail(describeTransaction(tx, table, 'check'), err, tx);
    }
  }

  function read<T>(operation: string, fn: (nl: NetlinkSocket) => T): T {
    try {
      return withSocket(fn);
    } catch (err) {
      throw fail(operation, err);
    }
  }

  function elementsOf(nl: NetlinkSocket, s: SetInfo): ElementState[] {
    const key = keyTypesOfId(s.keyType ?? 0);
    if (!key) return [];
    const single = key.length === 1 ? (key[0] as TypeName) : undefined;
    const text = (b: Buffer) => (single ? [formatScalar(single, b)] : splitConcat(key, b));
    const interval = (s.flags & NFT_SET_F.INTERVAL) !== 0;
    const listed = readSetElements(nl, ref, s.name);
    if (interval && single) return intervals(single, listed);
    return listed.map((e) => ({ key: text(e.key), ...(e.verdict !== undefined ? { value: [e.verdict] } : {}) }));
  }

  function stateOf(nl: NetlinkSocket, only?: ListOnly): TableState {
    const state = emptyTableState();
    const chains = listChains(nl, ref);
    const setInfos = listSets(nl, ref);
    state.exists = chains.length > 0 || setInfos.length > 0 || tableExists(nl, ref);
    if (!state.exists) return state;
    const wantChain = (n: string) => !only || (only.chains ?? []).includes(n);
    const wantSet = (n: string) => !only || (only.sets ?? []).includes(n);
    for (const c of chains) {
      if (!wantChain(c.name)) continue;
      const chain: ChainState = { name: c.name, handle: c.handle, rules: [] };
      const hook = c.base ? HOOK_BY_NUMBER.get(c.base.hook) : undefined;
      if (c.base && hook) {
        const type = c.base.type === 'nat' || c.base.type === 'route' ? c.base.type : 'filter';
        chain.base = { type, hook, priority: c.base.priority, policy: c.base.policy === 0 ? 'drop' : 'accept' };
      }
      state.chains.set(c.name, chain);
    }
    if (state.chains.size > 0) {
      // Asked for a few chains: their rules only (the policy's 10,000 rules stay in the kernel).
      const rules = only
        ? [...state.chains.keys()].flatMap((c) => readTableRules(nl, ref, c).rules)
        : readTableRules(nl, ref).rules;
      for (const r of rules) {
        state.chains.get(r.chain)?.rules.push({
          chain: r.chain,
          handle: r.handle,
          ...(r.comment !== undefined ? { comment: r.comment } : {}),
          ...(r.counter ? { counter: r.counter } : {}),
        });
      }
    }
    for (const s of setInfos) {
      if (!wantSet(s.name)) continue;
      const key = keyTypesOfId(s.keyType ?? 0);
      const type = key ? key.join(' . ') : `type ${s.keyType ?? 0}`;
      // Elements are read only for the sets asked for by name (adoption reads two verdict maps); a whole
      // listing leaves them out, as the applier flushes what it rebuilds.
      const elements = only ? elementsOf(nl, s) : [];
      const base = { name: s.name, handle: s.handle, type, flags: flagsOf(s), elements };
      if (s.map)
        state.maps.set(s.name, { ...base, value: s.dataType === 0xffffff00 ? 'verdict' : `type ${s.dataType ?? 0}` });
      else state.sets.set(s.name, base);
      const spec = specOfListed(s);
      if (spec) sets.set(s.name, spec);
    }
    return state;
  }

  async function list(only?: ListOnly): Promise<TableState> {
    return read(`list table ${table.family} ${table.name}`, (nl) => stateOf(nl, only));
  }

  async function summary(chains: readonly string[]): Promise<TableSummary> {
    return read(`list the chains of table ${table.family} ${table.name}`, (nl) => {
      const out: TableSummary = { exists: false, chains: new Map(), rules: new Map() };
      for (const c of listChains(nl, ref)) out.chains.set(c.name, c.handle);
      out.exists = out.chains.size > 0;
      if (chains.length === 0 || !out.exists) return out;
      for (const name of chains) {
        if (!out.chains.has(name)) continue;
        out.rules.set(
          name,
          readTableRules(nl, ref, name).rules.map((r) => r.comment ?? ''),
        );
      }
      return out;
    });
  }

  async function counters(chains?: readonly string[]): Promise<RuleCounter[]> {
    return read(`read the rule counters of table ${table.family} ${table.name}`, (nl) => {
      return chains ? chains.flatMap((c) => readTableCounters(nl, ref, c)) : readTableCounters(nl, ref);
    });
  }

  const probe: DriftProbe = {
    generation: async () => read('read the nftables generation', readGeneration),
    snapshot: async () =>
      read(`read the rule digests of table ${table.family} ${table.name}`, (nl): TableSnapshot => {
        // The generation first: a commit between it and the dumps shows as a changed generation next time.
        const generation = readGeneration(nl);
        const chains = new Set(listChains(nl, ref).map((c) => c.name));
        const setNames = new Set(listSets(nl, ref).map((s) => s.name));
        const digests = chains.size > 0 ? readTableRules(nl, ref).chains : new Map();
        return { generation, exists: chains.size > 0 || setNames.size > 0, chains, sets: setNames, digests };
      }),
    chainDigests: async (chains) =>
      read(`read the rule digests of ${chains.length} chains of table ${table.family} ${table.name}`, (nl) => {
        const out = new Map<string, ChainDigest>();
        for (const name of chains) {
          const d = readTableRules(nl, ref, name).chains.get(name);
          if (d) out.set(name, d);
        }
        return out;
      }),
  };

  return {
    table,
    probe,
    stats,
    run,
    runSliced,
    template,
    check,
    list,
    summary,
    counters,
    close: () => {
      socket?.close();
      socket = undefined;
    },
  };
}

/** A concatenated key's fields, each padded to 4 bytes (values.ts concat). */
function splitConcat(types: readonly TypeName[], b: Buffer): string[] {
  const out: string[] = [];
  let at = 0;
  for (const t of types) {
    const len = DATA_TYPES[t].len;
    out.push(formatScalar(t, b.subarray(at, at + len)));
    at += (len + 3) & ~3;
  }
  return out;
}

/**
 * A single-field interval set's elements as nft lists them: the kernel holds each range as its start
 * and, flagged, the first value past it; a range that is one prefix is written as the prefix.
 */
function intervals(type: TypeName, listed: readonly ElementInfo[]): ElementState[] {
  const sorted = [...listed].sort(
    (x, y) => Buffer.compare(x.key, y.key) || Number(x.intervalEnd) - Number(y.intervalEnd),
  );
  const out: ElementState[] = [];
  sorted.forEach((e, i) => {
    if (e.intervalEnd) return;
    const next = sorted[i + 1];
    const last = next?.intervalEnd ? predecessor(next.key) : Buffer.alloc(e.key.length, 0xff);
    out.push({ key: [rangeText(type, e.key, last)], ...(e.verdict !== undefined ? { value: [e.verdict] } : {}) });
  });
  return out;
}

function predecessor(b: Buffer): Buffer {
  const out = Buffer.from(b);
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] !== 0) {
      out[i] = (out[i] as number) - 1;
      return out;
    }
    out[i] = 0xff;
  }
  return out;
}

function rangeText(type: TypeName, first: Buffer, last: Buffer): string {
  if (first.equals(last)) return formatScalar(type, first);
  if (type === 'ipv4_addr' || type === 'ipv6_addr') {
    // A prefix: first and last agree on the leading bits, then first is all zeros and last all ones.
    const bits = first.length * 8;
    let len = 0;
    while (len < bits && bitAt(first, len) === bitAt(last, len)) len++;
    let prefix = true;
    for (let i = len; i < bits && prefix; i++) prefix = bitAt(first, i) === 0 && bitAt(last, i) === 1;
    if (prefix) return `${formatScalar(type, first)}/${len}`;
  }
  return `${formatScalar(type, first)}-${formatScalar(type, last)}`;
}

function bitAt(b: Buffer, i: number): number {
  return ((b[i >> 3] as number) >> (7 - (i & 7))) & 1;
}
