// nft's JSON rule expressions (`nft -j list`, libnftables-json(5), schema version 1) back to typed
// expressions: the one reader of rule bodies, used for drift comparison and reading back. nft lists a
// rule in its own normal form, which this undoes where Strand's rules differ from it:
//  - `meta l4proto tcp th dport 80` is listed as `tcp dport 80` (the protocol match folded into the
//    payload's dependency): read back as the two matches it was written as;
//  - `ct state established` is a flags match (`"op": "in"`), read back as flags;
//  - a counter lists its packets and bytes, which are returned beside the body, not in it.
import type { Expr, Keyword, PayloadField, Selector, Value } from './expr.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface ParsedRule {
  /** The typed body; undefined when nft listed something this reader does not know (a foreign rule,
   * or one written with an expression Strand does not make), which then compares unequal. */
  body?: Expr[];
  /** The rule's counter statement, if it has one. */
  counter?: { packets: number; bytes: number };
}

class Unknown extends Error {}

function unknown(what: unknown): never {
  throw new Unknown(JSON.stringify(what));
}

const TH_PROTOS = new Set(['tcp', 'udp', 'sctp']);

/** A selector; `impliedProto` is set for nft's folded `tcp dport` form. */
function selector(j: Json): { sel: Selector; impliedProto?: 'tcp' | 'udp' | 'sctp' } {
  if (!isObject(j)) unknown(j);
  if (isObject(j.payload)) {
    const proto = String(j.payload.protocol);
    const field = String(j.payload.field);
    if (TH_PROTOS.has(proto) && (field === 'sport' || field === 'dport')) {
      return { sel: { kind: 'payload', field: `th ${field}` }, impliedProto: proto as 'tcp' | 'udp' | 'sctp' };
    }
    const f = `${proto} ${field}`;
    const known: readonly string[] = [
      'ip saddr',
      'ip daddr',
      'ip6 saddr',
      'ip6 daddr',
      'th sport',
      'th dport',
      'icmpv6 type',
    ];
    if (!known.includes(f)) unknown(j);
    return { sel: { kind: 'payload', field: f as PayloadField } };
  }
  if (isObject(j.meta)) {
    const key = String(j.meta.key);
    if (key !== 'l4proto' && key !== 'nfproto' && key !== 'iifname' && key !== 'oifname') unknown(j);
    return { sel: { kind: 'meta', key } };
  }
  if (isObject(j.ct) && j.ct.key === 'state') return { sel: { kind: 'ct', key: 'state' } };
  if (isObject(j.fib) && j.fib.result === 'type' && Array.isArray(j.fib.flags) && j.fib.flags.join() === 'daddr') {
    return { sel: { kind: 'fib', key: 'daddr type' } };
  }
  return unknown(j);
}

function selectors(j: Json): { sels: Selector[]; impliedProto?: 'tcp' | 'udp' | 'sctp' } {
  if (isObject(j) && Array.isArray(j.concat)) {
    const parts = j.concat.map(selector);
    return { sels: parts.map((p) => p.sel) };
  }
  const one = selector(j);
  return { sels: [one.sel], ...(one.impliedProto ? { impliedProto: one.impliedProto } : {}) };
}

function value(left: Selector, j: Json): Value {
  const isAddr = left.kind === 'payload' && /^ip6? /.test(left.field);
  const isName = left.kind === 'meta' && (left.key === 'iifname' || left.key === 'oifname');
  if (typeof j === 'number') return { kind: 'number', value: j };
  if (typeof j === 'string') {
    if (isAddr) return { kind: 'addr', addr: j };
    if (isName) return { kind: 'name', value: j };
    return { kind: 'keyword', value: j as Keyword };
  }
  if (isObject(j)) {
    if (isObject(j.prefix)) return { kind: 'prefix', addr: String(j.prefix.addr), len: Number(j.prefix.len) };
    if (Array.isArray(j.range) && typeof j.range[0] === 'number' && typeof j.range[1] === 'number') {
      return { kind: 'range', from: j.range[0], to: j.range[1] };
    }
    if (Array.isArray(j.set)) return { kind: 'anon-set', elements: j.set.map((e) => value(left, e)) };
  }
  return unknown(j);
}

function expr(j: Json, out: Expr[], parsed: ParsedRule): void {
  if (!isObject(j)) unknown(j);
  const [k, body] = Object.entries(j)[0] ?? [];
  switch (k) {
    case 'match': {
      if (!isObject(body)) unknown(j);
      const right = body.right ?? null;
      const { sels, impliedProto } = selectors(body.left ?? null);
      const op = body.op === '!=' ? 'ne' : 'eq';
      if (body.op !== '==' && body.op !== '!=' && body.op !== 'in') unknown(j);
      if (impliedProto) {
        const prev = out[out.length - 1];
        const stated = prev?.kind === 'match' && prev.left.kind === 'meta' && prev.left.key === 'l4proto';
        if (!stated)
          out.push({
            kind: 'match',
            left: { kind: 'meta', key: 'l4proto' },
            op: 'eq',
            right: { kind: 'keyword', value: impliedProto },
          });
      }
      if (typeof right === 'string' && right.startsWith('@')) {
        out.push({ kind: 'lookup', keys: sels, op, set: right.slice(1) });
        return;
      }
      const left = sels[0] as Selector;
      if (sels.length !== 1) unknown(j);
      if (body.op === 'in') {
        const words = Array.isArray(right) ? right.map(String) : [String(right)];
        out.push({ kind: 'match', left, op: 'eq', right: { kind: 'flags', values: words as Keyword[] } });
        return;
      }
      out.push({ kind: 'match', left, op, right: value(left, right) });
      return;
    }
    case 'vmap': {
      if (!isObject(body) || typeof body.data !== 'string' || !body.data.startsWith('@')) unknown(j);
      out.push({ kind: 'vmap', keys: selectors(body.key ?? null).sels, map: body.data.slice(1) });
      return;
    }
    case 'counter':
      if (isObject(body)) parsed.counter = { packets: Number(body.packets ?? 0), bytes: Number(body.bytes ?? 0) };
      out.push({ kind: 'counter' });
      return;
    case 'limit': {
      if (!isObject(body) || body.per !== 'second' || (body.burst_unit !== undefined && body.burst_unit !== 'packets'))
        unknown(j);
      const burst = typeof body.burst === 'number' && body.burst > 0 ? { burst: body.burst } : {};
      out.push({ kind: 'limit', rate: Number(body.rate), per: 'second', ...burst });
      return;
    }
    case 'log': {
      if (!isObject(body)) unknown(j);
      const e: Expr & { kind: 'log' } = { kind: 'log' };
      if (typeof body.prefix === 'string') e.prefix = body.prefix;
      if (typeof body.level === 'string') e.level = body.level as NonNullable<typeof e.level>;
      if (typeof body.group === 'number') e.group = body.group;
      out.push(e);
      return;
    }
    case 'masquerade': {
      const flags = isObject(body) ? body.flags : undefined;
      const list = Array.isArray(flags) ? flags : flags === undefined ? [] : [flags];
      if (list.some((f) => f !== 'fully-random')) unknown(j);
      out.push(list.length > 0 ? { kind: 'masquerade', fullyRandom: true } : { kind: 'masquerade' });
      return;
    }
    case 'accept':
    case 'drop':
    case 'return':
    case 'continue':
      out.push({ kind: 'verdict', verdict: k });
      return;
    case 'jump':
    case 'goto':
      if (!isObject(body) || typeof body.target !== 'string') unknown(j);
      out.push({ kind: 'verdict', verdict: k, chain: body.target });
      return;
    default:
      unknown(j);
  }
}

/** Reads a listed rule's `expr` array. */
export function parseRuleJson(exprs: unknown): ParsedRule {
  const parsed: ParsedRule = {};
  if (!Array.isArray(exprs)) return parsed;
  const out: Expr[] = [];
  try {
    for (const j of exprs as Json[]) expr(j, out, parsed);
  } catch (err) {
    if (!(err instanceof Unknown)) throw err;
    // Keep the counter even when the rest is foreign: it is read by comment.
    for (const j of exprs as Json[]) {
      if (isObject(j) && isObject(j.counter))
        parsed.counter = { packets: Number(j.counter.packets ?? 0), bytes: Number(j.counter.bytes ?? 0) };
    }
    return parsed;
  }
  parsed.body = out;
  return parsed;
}
