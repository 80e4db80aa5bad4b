// A rule body as typed expressions, rendered to nft text in one place (renderRule) and read back from
// `nft -j list` in one place (parseRuleJson). Each expression is one nf_tables construct, so a netlink
// encoder (issue 17, after netlink-msgs.ts) can translate them one to one:
//   match (selector op value)   → payload/meta/ct/fib load, then cmp, range or a lookup of an anonymous set
//   lookup (selectors @set)     → load(s) into consecutive registers, then lookup (NFT_LOOKUP_F_INV for !=)
//   vmap (selectors @map)       → load(s), then lookup with a verdict destination
//   counter, limit, log, masquerade, verdict → the statement of the same name
// No free text reaches the script except interface names and log prefixes, which are quoted and
// checked (checkRuleBody): there is no text escape, so every rule a caller writes can be encoded
// over netlink as well as rendered.
import { tryParseIp } from '../net/ip.ts';

/** What a match or lookup reads from the packet or its metadata. */
export type Selector =
  | { kind: 'payload'; field: PayloadField }
  | { kind: 'meta'; key: MetaKey }
  | { kind: 'ct'; key: 'state' }
  | { kind: 'fib'; key: 'daddr type' };

export type PayloadField =
  | 'ip saddr'
  | 'ip daddr'
  | 'ip6 saddr'
  | 'ip6 daddr'
  | 'th sport'
  | 'th dport'
  | 'icmpv6 type';

export type MetaKey = 'l4proto' | 'nfproto' | 'iifname' | 'oifname';

export const L4_PROTOS = ['tcp', 'udp', 'sctp', 'icmp', 'ipv6-icmp'] as const;
export const CT_STATES = ['established', 'related', 'new', 'invalid', 'untracked'] as const;
export const FIB_TYPES = [
  'unspec',
  'unicast',
  'local',
  'broadcast',
  'anycast',
  'multicast',
  'blackhole',
  'unreachable',
  'prohibit',
] as const;
export const NF_PROTOS = ['ipv4', 'ipv6'] as const;
export const ICMPV6_TYPES = [
  'nd-router-solicit',
  'nd-router-advert',
  'nd-neighbor-solicit',
  'nd-neighbor-advert',
  'nd-redirect',
  'echo-request',
  'echo-reply',
] as const;

/** A named constant of one of the tables above (nft's symbolic values). */
export type Keyword =
  | (typeof L4_PROTOS)[number]
  | (typeof CT_STATES)[number]
  | (typeof FIB_TYPES)[number]
  | (typeof NF_PROTOS)[number]
  | (typeof ICMPV6_TYPES)[number];

const KEYWORDS_OF: Record<string, readonly string[]> = {
  'meta l4proto': L4_PROTOS,
  'meta nfproto': NF_PROTOS,
  'ct state': CT_STATES,
  'fib daddr type': FIB_TYPES,
  'icmpv6 type': ICMPV6_TYPES,
};

/** The right-hand side of a match. */
export type Value =
  | { kind: 'addr'; addr: string }
  | { kind: 'prefix'; addr: string; len: number }
  | { kind: 'number'; value: number }
  | { kind: 'range'; from: number; to: number }
  /** An interface name (quoted in nft text). */
  | { kind: 'name'; value: string }
  | { kind: 'keyword'; value: Keyword }
  /** Flags matched together (`ct state established,related`: any of them is set). */
  | { kind: 'flags'; values: readonly Keyword[] }
  /** An anonymous set `{ a, b }`: only for small constant sets (the kernel names each one by scanning
   * the table's sets, so many of them make a build quadratic). */
  | { kind: 'anon-set'; elements: readonly Value[] };

export type Verdict =
  | { kind: 'verdict'; verdict: 'accept' | 'drop' | 'return' | 'continue' }
  | { kind: 'verdict'; verdict: 'jump' | 'goto'; chain: string };

export type Expr =
  | { kind: 'match'; left: Selector; op: 'eq' | 'ne'; right: Value }
  /** `a . b . c @set` (or `!=`): the selectors' values concatenated, looked up in a named set. */
  | { kind: 'lookup'; keys: readonly Selector[]; op: 'eq' | 'ne'; set: string }
  /** `a . b vmap @map`: the verdict of the map's element for the key; no element: go on. */
  | { kind: 'vmap'; keys: readonly Selector[]; map: string }
  | { kind: 'counter' }
  | { kind: 'limit'; rate: number; per: 'second'; burst?: number }
  | {
      kind: 'log';
      prefix?: string;
      level?: 'emerg' | 'alert' | 'crit' | 'err' | 'warn' | 'notice' | 'info' | 'debug';
      group?: number;
    }
  | { kind: 'masquerade'; fullyRandom?: boolean }
  | Verdict;

// ---- Builders (short forms for the common shapes) ----

export const payload = (field: PayloadField): Selector => ({ kind: 'payload', field });
export const meta = (key: MetaKey): Selector => ({ kind: 'meta', key });

/** `ip saddr …` / `ip6 daddr …` for an address family. */
export function addrField(family: 4 | 6, field: 'saddr' | 'daddr'): Selector {
  return payload(`${family === 4 ? 'ip' : 'ip6'} ${field}`);
}

export function match(left: Selector, right: Value, op: 'eq' | 'ne' = 'eq'): Expr {
  return { kind: 'match', left, op, right };
}

export function lookup(keys: Selector | readonly Selector[], set: string, op: 'eq' | 'ne' = 'eq'): Expr {
  return { kind: 'lookup', keys: Array.isArray(keys) ? keys : [keys as Selector], op, set };
}

/** `a . b vmap @map`. */
export function vmap(keys: Selector | readonly Selector[], map: string): Expr {
  return { kind: 'vmap', keys: Array.isArray(keys) ? keys : [keys as Selector], map };
}

/** An address or prefix value from its text (`10.0.0.1`, `224.0.0.0/4`). */
export function addrValue(text: string): Value {
  const slash = text.indexOf('/');
  return slash < 0
    ? { kind: 'addr', addr: text }
    : { kind: 'prefix', addr: text.slice(0, slash), len: Number(text.slice(slash + 1)) };
}

export function verdict(v: 'accept' | 'drop' | 'return' | 'continue'): Expr;
export function verdict(v: 'jump' | 'goto', chain: string): Expr;
export function verdict(v: Verdict['verdict'], chain?: string): Expr {
  return v === 'jump' || v === 'goto'
    ? { kind: 'verdict', verdict: v, chain: chain ?? '' }
    : { kind: 'verdict', verdict: v };
}

export const counter = (): Expr => ({ kind: 'counter' });

// ---- Rendering ----

export function renderSelector(s: Selector): string {
  switch (s.kind) {
    case 'payload':
      return s.field;
    case 'meta':
      // nft lists the interface names without `meta` (they are unambiguous), the others with it.
      return s.key === 'iifname' || s.key === 'oifname' ? s.key : `meta ${s.key}`;
    case 'ct':
      return `ct ${s.key}`;
    case 'fib':
      return `fib ${s.key}`;
  }
}

export function renderValue(v: Value): string {
  switch (v.kind) {
    case 'addr':
      return v.addr;
    case 'prefix':
      return `${v.addr}/${v.len}`;
    case 'number':
      return String(v.value);
    case 'range':
      return `${v.from}-${v.to}`;
    case 'name':
      return `"${v.value}"`;
    case 'keyword':
      return v.value;
    case 'flags':
      return v.values.join(',');
    case 'anon-set':
      return `{ ${v.elements.map(renderValue).join(', ')} }`;
  }
}

const keys = (ks: readonly Selector[]) => ks.map(renderSelector).join(' . ');

export function renderExpr(e: Expr): string {
  switch (e.kind) {
    case 'match':
      return `${renderSelector(e.left)} ${e.op === 'ne' ? '!= ' : ''}${renderValue(e.right)}`;
    case 'lookup':
      return `${keys(e.keys)} ${e.op === 'ne' ? '!= ' : ''}@${e.set}`;
    case 'vmap':
      return `${keys(e.keys)} vmap @${e.map}`;
    case 'counter':
      return 'counter';
    case 'limit':
      return `limit rate ${e.rate}/${e.per}${e.burst !== undefined ? ` burst ${e.burst} packets` : ''}`;
    case 'log': {
      const parts = ['log'];
      if (e.prefix !== undefined) parts.push(`prefix "${e.prefix}"`);
      if (e.level !== undefined) parts.push(`level ${e.level}`);
      if (e.group !== undefined) parts.push(`group ${e.group}`);
      return parts.join(' ');
    }
    case 'masquerade':
      return e.fullyRandom ? 'masquerade fully-random' : 'masquerade';
    case 'verdict':
      return e.verdict === 'jump' || e.verdict === 'goto' ? `${e.verdict} ${e.chain}` : e.verdict;
  }
}

/** The rule body in nft syntax: the one place typed rules become text. */
export function renderRule(body: readonly Expr[]): string {
  return body.map(renderExpr).join(' ');
}

// ---- Checks (before anything reaches the script) ----

export class RuleBodyError extends Error {
  override name = 'RuleBodyError';
}

/** Chains, sets and maps a rule body refers to (for the fake's existence and in-use checks). */
export function ruleReferencesOf(body: readonly Expr[]): { sets: string[]; chains: string[] } {
  const sets: string[] = [];
  const chains: string[] = [];
  for (const e of body) {
    if (e.kind === 'lookup') sets.push(e.set);
    else if (e.kind === 'vmap') sets.push(e.map);
    else if (e.kind === 'verdict' && (e.verdict === 'jump' || e.verdict === 'goto')) chains.push(e.chain);
  }
  return { sets, chains };
}

const IFNAME = /^[A-Za-z0-9_.:@+-]{1,15}$/;
// nft expands `$name` in a quoted log prefix as a variable (nft 1.0.6: "unknown identifier"), so a `$`
// is refused with the quote and control characters.
const LOG_PREFIX = /^[^"$\u0000-\u001f\u007f]{0,127}$/;
const PAYLOAD_FIELDS: readonly string[] = [
  'ip saddr',
  'ip daddr',
  'ip6 saddr',
  'ip6 daddr',
  'th sport',
  'th dport',
  'icmpv6 type',
] satisfies readonly PayloadField[];
const META_KEYS: readonly string[] = ['l4proto', 'nfproto', 'iifname', 'oifname'];

/** The types keep selectors to this list; a cast or a parsed object must not carry free text into the
 * script through one either. */
function checkSelector(s: Selector, where: string): void {
  const ok =
    (s.kind === 'payload' && PAYLOAD_FIELDS.includes(s.field)) ||
    (s.kind === 'meta' && META_KEYS.includes(s.key)) ||
    (s.kind === 'ct' && s.key === 'state') ||
    (s.kind === 'fib' && s.key === 'daddr type');
  if (!ok) throw new RuleBodyError(`${where}: unknown selector ${JSON.stringify(s)}`);
}

function checkValue(left: Selector, v: Value, where: string): void {
  const sel = renderSelector(left);
  const fail = (why: string): never => {
    throw new RuleBodyError(`${where}: ${sel} ${renderValue(v)}: ${why}`);
  };
  switch (v.kind) {
    case 'addr':
    case 'prefix': {
      const ip = tryParseIp(v.addr);
      const family = sel.startsWith('ip6 ') ? 6 : sel.startsWith('ip ') ? 4 : undefined;
      if (!ip || family === undefined || ip.family !== family)
        fail(`not an IPv${family ?? '4/6'} address of the field's family`);
      if (v.kind === 'prefix' && !(Number.isInteger(v.len) && v.len >= 0 && v.len <= (family === 4 ? 32 : 128)))
        fail('bad prefix length');
      return;
    }
    case 'number':
    case 'range': {
      if (sel !== 'th sport' && sel !== 'th dport') fail('numbers are matched against ports only');
      const ok = (n: number) => Number.isInteger(n) && n >= 0 && n <= 65535;
      if (v.kind === 'number' ? !ok(v.value) : !(ok(v.from) && ok(v.to) && v.from <= v.to)) fail('not a port (range)');
      return;
    }
    case 'name':
      if (sel !== 'iifname' && sel !== 'oifname') fail('names are matched against interface names only');
      if (!IFNAME.test(v.value)) fail('not an interface name');
      return;
    case 'keyword':
    case 'flags': {
      const allowed = KEYWORDS_OF[sel];
      if (!allowed) fail('this field has no symbolic values');
      if (v.kind === 'flags' && sel !== 'ct state') fail('only ct state matches flags');
      const words = v.kind === 'keyword' ? [v.value] : v.values;
      if (words.length === 0) fail('no flags');
      for (const w of words) if (!allowed?.includes(w)) fail(`${w} is not one of ${allowed?.join(', ')}`);
      return;
    }
    case 'anon-set':
      if (v.elements.length === 0) fail('an empty anonymous set');
      for (const el of v.elements) {
        if (el.kind === 'anon-set' || el.kind === 'flags') fail('anonymous set elements are single values');
        checkValue(left, el, where);
      }
      return;
  }
}

/**
 * Checks a typed rule body; `checkRef` is objects.ts's name check (passed in so that this module stays
 * below objects.ts). Every free string that reaches the script (addresses, interface names, log
 * prefixes, set and chain names) is checked here: no rule text is taken from anywhere else.
 */
export function checkRuleBody(
  body: readonly Expr[],
  where: string,
  checkRef: (what: 'chain' | 'set', name: string) => void,
): void {
  if (body.length === 0) throw new RuleBodyError(`${where}: the rule body is empty`);
  for (const e of body) {
    switch (e.kind) {
      case 'match':
        checkSelector(e.left, where);
        checkValue(e.left, e.right, where);
        break;
      case 'lookup':
      case 'vmap':
        if (e.keys.length === 0) throw new RuleBodyError(`${where}: a ${e.kind} without keys`);
        for (const k of e.keys) checkSelector(k, where);
        checkRef('set', e.kind === 'lookup' ? e.set : e.map);
        break;
      case 'limit':
        if (!(Number.isSafeInteger(e.rate) && e.rate > 0))
          throw new RuleBodyError(`${where}: invalid limit rate ${e.rate}`);
        if (e.burst !== undefined && !(Number.isSafeInteger(e.burst) && e.burst > 0))
          throw new RuleBodyError(`${where}: invalid burst ${e.burst}`);
        break;
      case 'log':
        if (e.prefix !== undefined && !LOG_PREFIX.test(e.prefix))
          throw new RuleBodyError(`${where}: invalid log prefix ${JSON.stringify(e.prefix)}`);
        if (e.group !== undefined && !(Number.isInteger(e.group) && e.group >= 0 && e.group <= 65535))
          throw new RuleBodyError(`${where}: invalid log group`);
        if (e.group !== undefined && e.level !== undefined)
          throw new RuleBodyError(`${where}: a log statement has a level or a group, not both`);
        break;
      case 'verdict':
        if (e.verdict === 'jump' || e.verdict === 'goto') checkRef('chain', e.chain);
        break;
      case 'counter':
      case 'masquerade':
        break;
      default: {
        const never: never = e;
        throw new RuleBodyError(`${where}: unknown expression ${JSON.stringify(never)}`);
      }
    }
  }
}
