// The one mapping from the typed objects of a Transaction (../objects.ts, ../expr.ts) onto the netlink
// writer's operations (NftOp) and rule constructs (Construct): one NftOp per operation, in order, so
// the index of the operation the kernel refused is the line of the same transaction's `nft -f` script.
// What cannot go over netlink is refused here, naming it, before anything is sent.
import type { Expr, Selector, Value } from '../expr.ts';
import type { Chain, Element, NftMap, NftSet, Rule, TableRef } from '../objects.ts';
import type { Operation } from '../transaction.ts';
import type { NftOp } from './batch.ts';
import type { Construct, Field } from './compile.ts';
import type { ElementSpec, RulePlacement, SetSpec } from './messages.ts';
import { DATA_TYPES, type Scalar, type TypeName } from './values.ts';
import type { Verdict } from './expr.ts';

/** An operation that has no netlink form here (e.g. a deprecated `text` rule body). */
export class UnmappableError extends Error {
  override name = 'UnmappableError';
  /** Index of the operation in the transaction. */
  readonly index: number;

  constructor(message: string, index: number) {
    super(message);
    this.index = index;
  }
}

/** How element operations learn a set's key types when the transaction does not declare the set. */
export type SetLookup = (name: string) => SetSpec | undefined;

const where = (t: TableRef) => ({ family: t.family, table: t.name });

function field(s: Selector): Field {
  switch (s.kind) {
    case 'payload':
      return s.field;
    case 'meta':
      return s.key === 'iifname' || s.key === 'oifname' ? s.key : `meta ${s.key}`;
    case 'ct':
      return 'ct state';
    case 'fib':
      return 'fib daddr type';
  }
  throw new RangeError(`the selector ${JSON.stringify(s)} has no netlink mapping yet`);
}

function scalar(v: Value): Scalar | readonly string[] {
  switch (v.kind) {
    case 'addr':
      return v.addr;
    case 'prefix':
      return `${v.addr}/${v.len}`;
    case 'number':
      return v.value;
    case 'range':
      return `${v.from}-${v.to}`;
    case 'name':
    case 'keyword':
      return v.value;
    case 'flags':
      return v.values;
    case 'anon-set':
      throw new RangeError('an anonymous set inside an anonymous set');
  }
}

function verdictOf(e: Extract<Expr, { kind: 'verdict' }>): Verdict {
  return e.verdict === 'jump' || e.verdict === 'goto' ? { code: e.verdict, chain: e.chain } : { code: e.verdict };
}

/** A typed rule body as the netlink compiler's constructs. */
export function constructsOf(body: readonly Expr[]): Construct[] {
  return body.map((e): Construct => {
    switch (e.kind) {
      case 'match':
        if (e.right.kind === 'anon-set') {
          const values = e.right.elements.map((v) => {
            const x = scalar(v);
            if (typeof x === 'object') throw new RangeError('flags inside an anonymous set');
            return x;
          });
          return { kind: 'match-set', field: field(e.left), values, ...(e.op === 'ne' ? { not: true } : {}) };
        }
        return { kind: 'match', field: field(e.left), op: e.op === 'ne' ? '!=' : '==', value: scalar(e.right) };
      case 'lookup':
        return { kind: 'lookup', fields: e.keys.map(field), set: e.set, ...(e.op === 'ne' ? { not: true } : {}) };
      case 'vmap':
        return { kind: 'vmap', fields: e.keys.map(field), map: e.map };
      case 'counter':
        return { kind: 'counter' };
      case 'limit':
        return { kind: 'limit', rate: e.rate, per: e.per, ...(e.burst !== undefined ? { burst: e.burst } : {}) };
      case 'log':
        return {
          kind: 'log',
          ...(e.prefix !== undefined ? { prefix: e.prefix } : {}),
          ...(e.level !== undefined ? { level: e.level } : {}),
          ...(e.group !== undefined ? { group: e.group } : {}),
        };
      case 'masquerade':
        return { kind: 'masquerade', ...(e.fullyRandom ? { fullyRandom: true } : {}) };
      case 'verdict':
        return { kind: 'verdict', verdict: verdictOf(e) };
    }
  });
}

/** `ipv4_addr . inet_service` → its types. */
export function keyTypesOf(type: string): TypeName[] {
  return type.split('.').map((t) => {
    const name = t.trim();
    if (!(name in DATA_TYPES) || name === 'verdict')
      throw new RangeError(`the set type ${name} has no netlink mapping yet`);
    return name as TypeName;
  });
}

export function setSpecOf(s: NftSet | NftMap, table: TableRef): SetSpec {
  if (s.kind === 'map' && s.value !== 'verdict')
    throw new RangeError(`map ${s.name}: only verdict maps go over netlink (value ${s.value})`);
  const flags = (s.flags ?? []).map((f) => {
    if (f === 'dynamic') throw new RangeError(`set ${s.name}: the dynamic flag has no netlink mapping yet`);
    return f;
  });
  return {
    ...where(table),
    name: s.name,
    key: keyTypesOf(s.type),
    ...(s.kind === 'map' ? { verdictMap: true } : {}),
    ...(flags.length > 0 ? { flags } : {}),
    ...(s.kind === 'set' && s.timeout !== undefined ? { timeoutMs: s.timeout * 1000 } : {}),
    ...(s.comment !== undefined ? { comment: s.comment } : {}),
  };
}

/** A map element's value as nft writes it (`accept`, `jump <chain>`) → a verdict. */
function elementVerdict(value: readonly string[], set: string): Verdict {
  const [code, chain, ...rest] = (value[0] ?? '').split(' ');
  if (value.length !== 1 || rest.length > 0)
    throw new RangeError(`map ${set}: element value ${value.join(' . ')} is not a verdict`);
  if ((code === 'jump' || code === 'goto') && chain) return { code, chain };
  if ((code === 'accept' || code === 'drop' || code === 'return' || code === 'continue') && chain === undefined)
    return { code };
  throw new RangeError(`map ${set}: element value ${value[0]} is not a verdict`);
}

function elementSpec(e: Element): ElementSpec {
  // An element without a value is its own spec (key and comment): no object per element of a
  // 50,000-address set.
  if (e.value === undefined) return e;
  return {
    key: e.key,
    ...(e.value !== undefined ? { verdict: elementVerdict(e.value, e.set) } : {}),
    ...(e.comment !== undefined ? { comment: e.comment } : {}),
  };
}

function chainOp(c: Chain, table: TableRef, exclusive: boolean): NftOp {
  return {
    op: 'add-chain',
    ...where(table),
    name: c.name,
    ...(c.base ? { base: c.base } : {}),
    ...(exclusive ? { exclusive } : {}),
    ...(c.comment !== undefined ? { comment: c.comment } : {}),
  };
}

function ruleOp(r: Rule, table: TableRef, placement: RulePlacement): NftOp {
  const o: Extract<NftOp, { op: 'add-rule' }> = {
    op: 'add-rule',
    family: table.family,
    table: table.name,
    chain: r.chain,
    rule: constructsOf(r.body),
    placement,
  };
  if (r.comment !== undefined) o.comment = r.comment;
  return o;
}

/**
 * The netlink operations of a transaction, one per operation. Sets and maps declared in the
 * transaction are known to its later element operations; others come from `lookup`.
 */
export function toNftOps(ops: readonly Operation[], table: TableRef, lookup: SetLookup): NftOp[] {
  const map = nftOpMapper(table, lookup);
  return ops.map((o, index) => map(o, index));
}

/**
 * toNftOps one operation at a time, in order (a caller that encodes a large transaction in slices
 * keeps no list of them): the returned function maps the operation at `index`.
 */
export function nftOpMapper(table: TableRef, lookup: SetLookup): (o: Operation, index: number) => NftOp {
  const declared = new Map<string, SetSpec>();
  const specOf = (name: string): SetSpec => {
    const s = declared.get(name) ?? lookup(name);
    if (!s) throw new RangeError(`set or map ${name} is not in the table: its key types are unknown`);
    return s;
  };
  return (o: Operation, index: number): NftOp => {
    try {
      return mapOne(o);
    } catch (err) {
      const what = err instanceof Error ? err.message : String(err);
      throw new UnmappableError(`operation ${index + 1} (${o.verb} ${o.object.kind}): ${what}`, index);
    }
  };

  function mapOne(o: Operation): NftOp {
    const exclusive = o.verb === 'create';
    switch (o.verb) {
      case 'add':
      case 'create': {
        // Both verbs take whole objects (Transaction checks that); the union does not say so per verb.
        const obj = o.object as Chain | Rule | NftSet | NftMap | Element | { kind: 'table' };
        switch (obj.kind) {
          case 'table':
            return { op: 'add-table', ...where(table), ...(exclusive ? { exclusive } : {}) };
          case 'chain':
            return chainOp(obj, table, exclusive);
          case 'rule': {
            const handle = obj.handle !== undefined ? { handle: obj.handle } : {};
            return ruleOp(obj, table, { at: 'append', ...handle });
          }
          case 'set':
          case 'map': {
            const set = setSpecOf(obj, table);
            declared.set(obj.name, set);
            return { op: 'add-set', set, ...(exclusive ? { exclusive } : {}) };
          }
          case 'element':
            return exclusive
              ? { op: 'add-elements', set: specOf(obj.set), elements: [elementSpec(obj)], exclusive }
              : { op: 'add-elements', set: specOf(obj.set), elements: [elementSpec(obj)] };
        }
        break;
      }
      case 'insert': {
        const handle = o.object.handle !== undefined ? { handle: o.object.handle } : {};
        return ruleOp(o.object, table, { at: 'insert', ...handle });
      }
      case 'replace':
        return ruleOp(o.object, table, { at: 'replace', handle: o.object.handle });
      case 'flush':
        if (o.object.kind === 'chain') return { op: 'flush-chain', ...where(table), chain: o.object.name };
        return { op: 'flush-set', ...where(table), name: o.object.name };
      case 'delete': {
        const d = o.object;
        switch (d.kind) {
          case 'chain':
            return { op: 'delete-chain', ...where(table), name: d.name };
          case 'set':
          case 'map':
            declared.delete(d.name);
            return { op: 'delete-set', ...where(table), name: d.name };
          case 'rule':
            return { op: 'delete-rule', ...where(table), chain: d.chain, handle: d.handle };
          case 'element':
            return { op: 'delete-elements', set: specOf(d.set), elements: [elementSpec(d)] };
        }
      }
    }
    throw new RangeError(`${o.verb} ${o.object.kind} is not an operation`);
  }
}
