// Over 400 lines: one model of the kernel's nf_tables semantics, which reads best in one place.
// An in-memory Nft for unit tests of callers (the agent's masquerade, later NetworkPolicy): it applies
// transactions to a model of one table with the kernel's semantics where callers can trip over them,
// so a transaction that would fail against the kernel fails here too, and all or nothing:
//  - everything but `add table` needs the table; flush/delete/rules/elements need their chain or set;
//  - `add` of an existing chain, set or element is a no-op, `create` of one fails (exists);
//    `add` of an existing base chain with another type, hook or priority fails (unsupported), of an
//    existing set with another type or flags fails (exists), of an existing map key with another
//    value fails (exists), as the kernel answers;
//  - a rule may only name sets (`@name`) and chains (`jump`/`goto name`) that exist; a chain with rules
//    or one jumped to, and a set named by a rule, cannot be deleted (busy);
//  - interval sets refuse a new interval overlapping an existing one (invalid); sets without the
//    interval flag refuse prefixes and ranges; keys are kept in the canonical text nft lists
//    (canonicalElementPart), so list() on the fake and on the kernel read alike.
// Not modelled: rule bodies are not checked beyond their typed checks and references (nft's syntax check is the real
// runner's job, tested against the kernel), element timeouts, and auto-merge.
import { renderRule, ruleReferencesOf, type Expr } from './expr.ts';
import {
  canonicalElementPart,
  emptyTableState,
  ipInterval,
  renderOperation,
  STRAND_TABLE,
  type BaseChainSpec,
  type Chain,
  type ChainRef,
  type Element,
  type ElementState,
  type MapRef,
  type NftMap,
  type NftSet,
  type Rule,
  type RuleRef,
  type SetFlag,
  type SetRef,
  type TableRef,
  type TableState,
} from './objects.ts';
import { NftError, type NftErrorReason } from './errors.ts';
import { describeTransaction, type Operation, type Transaction } from './transaction.ts';
import type { ListOnly, NftTransport, RuleCounter, TableSummary } from './transport.ts';

export interface FakeRule {
  chain: string;
  handle: number;
  /** The body as nft text (renderRule), for tests to read. */
  rule: string;
  body: Expr[];
  comment?: string;
}

export interface FakeChain {
  name: string;
  handle: number;
  base?: BaseChainSpec;
  comment?: string;
  rules: FakeRule[];
}

export interface FakeSet {
  kind: 'set' | 'map';
  name: string;
  handle: number;
  type: string;
  /** Maps only. */
  value?: string;
  flags: SetFlag[];
  comment?: string;
  timeout?: number;
  size?: number;
  elements: ElementState[];
}

export interface FakeTable {
  nextHandle: number;
  chains: Map<string, FakeChain>;
  /** Sets and maps share one namespace in the kernel. */
  sets: Map<string, FakeSet>;
}

class OpError extends Error {
  readonly reason: NftErrorReason;
  constructor(reason: NftErrorReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

const REASON_TEXT: Record<NftErrorReason, string> = {
  'not-found': 'No such file or directory',
  exists: 'File exists',
  busy: 'Device or resource busy',
  unsupported: 'Operation not supported',
  invalid: 'Invalid argument',
  syntax: 'syntax error',
  timeout: 'timed out',
  unavailable: 'unavailable',
  failed: 'failed',
};

function fail(reason: NftErrorReason, what: string): never {
  throw new OpError(reason, `${what}: ${REASON_TEXT[reason]}`);
}

function sameBase(a: BaseChainSpec | undefined, b: BaseChainSpec | undefined): boolean {
  if (!a || !b) return a === b;
  return a.type === b.type && a.hook === b.hook && a.priority === b.priority;
}

function keyText(key: readonly string[]): string {
  return key.join(' . ');
}

export class FakeNft implements NftTransport {
  readonly table: TableRef;
  /** The model; undefined while there is no table. Tests may read it, and seed it through run(). */
  state: FakeTable | undefined;
  /** The scripts of the transactions applied so far, in order (failed ones are not recorded). */
  readonly applied: string[] = [];
  private failures: NftError[] = [];
  /** Packets and bytes by rule handle, as a test set them (setCounter); other counters read 0. */
  private readonly counterValues = new Map<number, { packets: number; bytes: number }>();

  constructor(table: TableRef = STRAND_TABLE) {
    this.table = table;
  }

  /** Makes the next run() fail with this error, changing nothing (to test callers' error paths). */
  failNextRun(reason: NftErrorReason = 'failed', detail = 'injected failure'): void {
    this.failures.push(new NftError({ reason, operation: 'apply nftables transaction', detail }));
  }

  async run(tx: Transaction): Promise<void> {
    if (tx.empty) return;
    const injected = this.failures.shift();
    if (injected) throw injected;
    this.state = this.apply(tx);
    this.applied.push(tx.render(this.table));
  }

  async check(tx: Transaction): Promise<void> {
    if (!tx.empty) this.apply(tx);
  }

  async summary(chains: readonly string[]): Promise<TableSummary> {
    const state = await this.list();
    const out: TableSummary = { exists: state.exists, chains: new Map(), rules: new Map() };
    for (const c of state.chains.values()) out.chains.set(c.name, c.handle);
    for (const name of chains) {
      const c = state.chains.get(name);
      if (c)
        out.rules.set(
          name,
          c.rules.map((r) => r.comment ?? ''),
        );
    }
    return out;
  }

  async counters(chains?: readonly string[]): Promise<RuleCounter[]> {
    const out: RuleCounter[] = [];
    for (const c of this.state?.chains.values() ?? []) {
      if (chains && !chains.includes(c.name)) continue;
      for (const r of c.rules) {
        if (!r.body.some((e) => e.kind === 'counter')) continue;
        const v = this.counterValues.get(r.handle) ?? { packets: 0, bytes: 0 };
        out.push({
          chain: r.chain,
          handle: r.handle,
          ...(r.comment !== undefined ? { comment: r.comment } : {}),
          ...v,
        });
      }
    }
    return out;
  }

  /** Sets what counters() reports for the rule with `handle` (traffic the fake cannot see). */
  setCounter(handle: number, packets: number, bytes = 0): void {
    this.counterValues.set(handle, { packets, bytes });
  }

  async list(only?: ListOnly): Promise<TableState> {
    const state = emptyTableState();
    const t = this.state;
    if (!t) return state;
    state.exists = true;
    const wanted = (kind: 'chains' | 'sets', name: string) => !only || (only[kind] ?? []).includes(name);
    for (const c of t.chains.values()) {
      if (!wanted('chains', c.name)) continue;
      state.chains.set(c.name, {
        name: c.name,
        handle: c.handle,
        ...(c.base ? { base: { ...c.base } } : {}),
        // Without bodies, as the runner's `list` of old did: fake.rules() has them.
        rules: c.rules.map((r) => ({
          chain: r.chain,
          handle: r.handle,
          ...(r.comment !== undefined ? { comment: r.comment } : {}),
        })),
      });
    }
    for (const s of t.sets.values()) {
      if (!wanted('sets', s.name)) continue;
      const listed = {
        name: s.name,
        handle: s.handle,
        type: s.type,
        flags: [...s.flags],
        ...(s.comment !== undefined ? { comment: s.comment } : {}),
        elements: structuredClone(s.elements),
      };
      if (s.kind === 'map') state.maps.set(s.name, { ...listed, value: s.value ?? '' });
      else state.sets.set(s.name, listed);
    }
    return state;
  }

  /** A chain's rules with their bodies (list() has no bodies, like the kernel's JSON). */
  rules(chain: string): FakeRule[] {
    return structuredClone(this.state?.chains.get(chain)?.rules ?? []);
  }

  /** Element keys of a set or map, joined with " . ", in the order added. */
  elements(set: string): string[] {
    return (this.state?.sets.get(set)?.elements ?? []).map(
      (e) => keyText(e.key) + (e.value ? ` : ${keyText(e.value)}` : ''),
    );
  }

  /** The model as an nft script that recreates it (chains and sets by name, then elements, then rules);
   * "" without a table. Handles are left out. */
  dump(): string {
    const t = this.state;
    if (!t) return '';
    const lines = [renderOperation('add', { kind: 'table' }, this.table)];
    const byName = <T extends { name: string }>(m: Map<string, T>) =>
      [...m.values()].sort((a, b) => a.name.localeCompare(b.name));
    for (const c of byName(t.chains)) {
      const chain: Chain = {
        kind: 'chain',
        name: c.name,
        ...(c.base ? { base: c.base } : {}),
        ...(c.comment !== undefined ? { comment: c.comment } : {}),
      };
      lines.push(renderOperation('add', chain, this.table));
    }
    for (const s of byName(t.sets)) {
      const common = {
        name: s.name,
        type: s.type,
        ...(s.flags.length ? { flags: s.flags } : {}),
        ...(s.comment !== undefined ? { comment: s.comment } : {}),
        ...(s.size !== undefined ? { size: s.size } : {}),
      };
      lines.push(
        renderOperation(
          'add',
          s.kind === 'map'
            ? { kind: 'map', ...common, value: s.value ?? '' }
            : { kind: 'set', ...common, ...(s.timeout !== undefined ? { timeout: s.timeout } : {}) },
          this.table,
        ),
      );
      for (const e of s.elements)
        lines.push(renderOperation('add', { kind: 'element', set: s.name, ...e }, this.table));
    }
    for (const c of byName(t.chains)) {
      for (const r of c.rules)
        lines.push(
          renderOperation(
            'add',
            { kind: 'rule', chain: r.chain, body: r.body, ...(r.comment !== undefined ? { comment: r.comment } : {}) },
            this.table,
          ),
        );
    }
    return lines.map((l) => `${l}\n`).join('');
  }

  /** Applies tx to a copy of the model and returns the copy; throws NftError and changes nothing when
   * an operation fails. */
  private apply(tx: Transaction): FakeTable | undefined {
    let t = this.state ? cloneTable(this.state) : undefined;
    const ops = tx.operations;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as Operation;
      try {
        t = applyOperation(t, op);
      } catch (err) {
        if (!(err instanceof OpError)) throw err;
        throw new NftError({
          reason: err.reason,
          operation: describeTransaction(tx, this.table),
          detail: err.message,
          script: tx.render(this.table),
          line: i + 1,
          failingCommand: renderOperation(op.verb, op.object, this.table),
        });
      }
    }
    return t;
  }
}

function cloneTable(t: FakeTable): FakeTable {
  return structuredClone(t);
}

function applyOperation(t: FakeTable | undefined, op: Operation): FakeTable | undefined {
  const obj = op.object;
  if (obj.kind === 'table') {
    if (t && op.verb === 'create') fail('exists', 'table');
    return t ?? { nextHandle: 1, chains: new Map(), sets: new Map() };
  }
  if (!t) fail('not-found', 'table');
  switch (obj.kind) {
    case 'chain':
      chainOp(t, op.verb, obj);
      break;
    case 'rule':
      ruleOp(t, op.verb, obj);
      break;
    case 'set':
    case 'map':
      setOp(t, op.verb, obj);
      break;
    case 'element':
      elementOp(t, op.verb, obj);
      break;
  }
  return t;
}

function chainReferenced(t: FakeTable, name: string): boolean {
  for (const c of t.chains.values())
    for (const r of c.rules) if (ruleReferencesOf(r.body).chains.includes(name)) return true;
  for (const s of t.sets.values())
    for (const e of s.elements) if (e.value?.some((v) => v === `jump ${name}` || v === `goto ${name}`)) return true;
  return false;
}

function setReferenced(t: FakeTable, name: string): boolean {
  for (const c of t.chains.values())
    for (const r of c.rules) if (ruleReferencesOf(r.body).sets.includes(name)) return true;
  return false;
}

function chainOp(t: FakeTable, verb: Operation['verb'], obj: Chain | ChainRef): void {
  const existing = t.chains.get(obj.name);
  const what = `chain ${obj.name}`;
  switch (verb) {
    case 'add':
    case 'create': {
      const c = obj as Chain;
      if (existing) {
        if (verb === 'create') fail('exists', what);
        if (!sameBase(existing.base, c.base)) fail('unsupported', what);
        // The kernel updates a base chain's policy in place.
        if (existing.base && c.base?.policy) existing.base.policy = c.base.policy;
        return;
      }
      t.chains.set(c.name, {
        name: c.name,
        handle: t.nextHandle++,
        ...(c.base ? { base: { ...c.base } } : {}),
        ...(c.comment !== undefined ? { comment: c.comment } : {}),
        rules: [],
      });
      return;
    }
    case 'flush':
      if (!existing) fail('not-found', what);
      existing.rules = [];
      return;
    case 'delete':
      if (!existing) fail('not-found', what);
      if (existing.rules.length > 0 || chainReferenced(t, obj.name)) fail('busy', what);
      t.chains.delete(obj.name);
      return;
    default:
      fail('syntax', `${verb} ${what}`);
  }
}

function ruleOp(t: FakeTable, verb: Operation['verb'], obj: Rule | RuleRef): void {
  const chain = t.chains.get(obj.chain);
  if (!chain) fail('not-found', `chain ${obj.chain}`);
  const at = obj.handle === undefined ? -1 : chain.rules.findIndex((r) => r.handle === obj.handle);
  if (obj.handle !== undefined && at < 0) fail('not-found', `rule handle ${obj.handle} in chain ${obj.chain}`);
  if (verb === 'delete') {
    chain.rules.splice(at, 1);
    return;
  }
  const r = obj as Rule;
  const refs = ruleReferencesOf(r.body);
  for (const s of refs.sets) if (!t.sets.has(s)) fail('not-found', `set ${s} in rule of chain ${r.chain}`);
  for (const c of refs.chains) if (!t.chains.has(c)) fail('not-found', `chain ${c} in rule of chain ${r.chain}`);
  const rule: FakeRule = {
    chain: r.chain,
    handle: t.nextHandle++,
    rule: renderRule(r.body),
    body: structuredClone([...r.body]),
    ...(r.comment !== undefined ? { comment: r.comment } : {}),
  };
  switch (verb) {
    case 'add':
      chain.rules.splice(at < 0 ? chain.rules.length : at + 1, 0, rule);
      return;
    case 'insert':
      chain.rules.splice(at < 0 ? 0 : at, 0, rule);
      return;
    case 'replace':
      chain.rules.splice(at, 1, rule);
      return;
    default:
      fail('syntax', `${verb} rule`);
  }
}

function setOp(t: FakeTable, verb: Operation['verb'], obj: NftSet | NftMap | SetRef | MapRef): void {
  const existing = t.sets.get(obj.name);
  const what = `${obj.kind} ${obj.name}`;
  switch (verb) {
    case 'add':
    case 'create': {
      const s = obj as NftSet | NftMap;
      const flags = [...(s.flags ?? [])].sort();
      if (existing) {
        if (verb === 'create') fail('exists', what);
        const same =
          existing.kind === s.kind &&
          existing.type === s.type &&
          existing.value === (s.kind === 'map' ? s.value : undefined) &&
          existing.flags.join() === flags.join();
        if (!same) fail('exists', what);
        return;
      }
      t.sets.set(s.name, {
        kind: s.kind,
        name: s.name,
        handle: t.nextHandle++,
        type: s.type,
        ...(s.kind === 'map' ? { value: s.value } : {}),
        flags,
        ...(s.comment !== undefined ? { comment: s.comment } : {}),
        ...(s.kind === 'set' && s.timeout !== undefined ? { timeout: s.timeout } : {}),
        ...(s.size !== undefined ? { size: s.size } : {}),
        elements: [],
      });
      return;
    }
    case 'flush':
      if (!existing || existing.kind !== obj.kind) fail('not-found', what);
      existing.elements = [];
      return;
    case 'delete':
      if (!existing || existing.kind !== obj.kind) fail('not-found', what);
      if (setReferenced(t, obj.name)) fail('busy', what);
      t.sets.delete(obj.name);
      return;
    default:
      fail('syntax', `${verb} ${what}`);
  }
}

function elementOp(t: FakeTable, verb: Operation['verb'], obj: Element): void {
  const set = t.sets.get(obj.set);
  if (!set) fail('not-found', `set ${obj.set}`);
  const key = obj.key.map(canonicalElementPart);
  const what = `element ${keyText(key)} of ${set.kind} ${obj.set}`;
  if (key.length !== set.type.split(' . ').length)
    fail('invalid', `${what}: the key has ${key.length} part(s), the type ${set.type}`);
  const at = set.elements.findIndex((e) => keyText(e.key) === keyText(key));
  if (verb === 'delete') {
    if (at < 0) fail('not-found', `${what} does not exist`);
    set.elements.splice(at, 1);
    return;
  }
  if (verb !== 'add' && verb !== 'create') fail('syntax', `${verb} element`);
  if (set.kind === 'map' && obj.value === undefined) fail('invalid', `${what}: a map element needs a value`);
  if (set.kind === 'set' && obj.value !== undefined) fail('invalid', `${what}: a set element has no value`);
  const value = obj.value?.map(canonicalElementPart);
  if (value) {
    for (const v of value) {
      const target = /^(?:jump|goto) (\S+)$/.exec(v)?.[1];
      if (target !== undefined && !t.chains.has(target)) fail('not-found', `chain ${target} in ${what}`);
    }
  }
  if (at >= 0) {
    const old = set.elements[at] as ElementState;
    if (verb === 'create') fail('exists', what);
    if (keyText(old.value ?? []) !== keyText(value ?? [])) fail('exists', what);
    return;
  }
  const interval = set.flags.includes('interval');
  if (key.length === 1) {
    const iv = ipInterval(key[0] as string);
    if (iv && iv.first !== iv.last && !interval)
      fail('invalid', `${what}: a prefix or range needs a set with the interval flag`);
    if (iv && interval) {
      for (const e of set.elements) {
        const other = ipInterval(e.key[0] as string);
        if (other && other.family === iv.family && other.first <= iv.last && iv.first <= other.last)
          fail('invalid', `${what}: interval overlaps with ${keyText(e.key)}`);
      }
    }
  }
  set.elements.push({
    key,
    ...(value ? { value } : {}),
    ...(obj.comment !== undefined ? { comment: obj.comment } : {}),
  });
}
