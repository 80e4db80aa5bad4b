// Over 400 lines: every object type with the checks made before it reaches a script, kept together.
// nftables objects as typed values (after kubernetes-sigs/knftables): a table, chains (regular or
// base), rules (a body of typed expressions, expr.ts, plus an optional comment), sets, maps (verdict maps too) and
// their elements. A Transaction (transaction.ts) collects operations on them and renders an `nft -f`
// script, one command per line, so nft's "line N" in an error names exactly one operation.
//
// Everything that ends up in the script is checked when it is added to a transaction, because nft's
// scanner leaves no way to escape what goes wrong (nft 1.0.6, checked on this machine):
//  - names are bare words: a quoted name ("filter") is a syntax error, and a bare name that is a
//    keyword (ip, counter, auto-merge, gc-interval) is one too. Strand's names therefore are lower-case
//    words joined by hyphens, with at least one hyphen (agent-postrouting, cni-1a2b3c4d-…): no nft
//    keyword without a hyphen can collide, and the few keywords that have one are refused by name.
//  - a quoted string ends at the next `"`, with no escape for it, so comments may not contain one.
//  - a `;` or a newline ends a command, and `#` starts a comment outside quotes: rule bodies and
//    element keys may not contain them, or one operation could become two.
import { formatIp, networkOf, tryParseIp } from '../net/ip.ts';
import { checkRuleBody, renderRule, RuleBodyError, type Expr } from './expr.ts';

export type Family = 'inet' | 'ip' | 'ip6';

/** The one table an Nft client works on; Strand's is `inet strand` (STRAND_TABLE). */
export interface TableRef {
  family: Family;
  name: string;
}

export const STRAND_TABLE: TableRef = Object.freeze({ family: 'inet', name: 'strand' });

export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
export type ChainType = 'filter' | 'nat' | 'route';

/** nft's named priorities for the ip, ip6 and inet families (nft(8), "CHAINS"). Rendered as numbers,
 * the way nft lists them in JSON, so desired and listed chains compare directly. */
export const PRIORITY = Object.freeze({ raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 });

export interface BaseChainSpec {
  type: ChainType;
  hook: Hook;
  priority: number;
  /** nft's default is accept. */
  policy?: 'accept' | 'drop';
}

/** The transaction's table (its family and name come from the Nft client that runs it). */
export interface Table {
  kind: 'table';
}

export interface Chain {
  kind: 'chain';
  name: string;
  /** Present for a base chain (attached to a netfilter hook). */
  base?: BaseChainSpec;
  /** Not read back by list(): nft 1.0.6 leaves chain comments out of its JSON. */
  comment?: string;
}

export interface Rule {
  kind: 'rule';
  chain: string;
  /** The rule body, e.g. [lookup(addrField(4, 'saddr'), 'agent-cluster-v4'), { kind: 'masquerade' }];
   * rendered by renderRule (expr.ts). */
  body: readonly Expr[];
  comment?: string;
  /** For delete and replace: the rule to act on. For add/insert: add after / insert before it. */
  handle?: number;
}

export type SetFlag = 'interval' | 'timeout' | 'constant' | 'dynamic';

export interface NftSet {
  kind: 'set';
  name: string;
  /** Key type, e.g. `ipv4_addr`, or a concatenation `ipv4_addr . inet_service`. */
  type: string;
  flags?: readonly SetFlag[];
  comment?: string;
  /** Default element timeout in seconds (needs the timeout flag). */
  timeout?: number;
  size?: number;
}

export interface NftMap {
  kind: 'map';
  name: string;
  /** Key type, as for a set. */
  type: string;
  /** Value type: `verdict` for a verdict map, or a data type such as `ipv4_addr`. */
  value: string;
  flags?: readonly SetFlag[];
  comment?: string;
  size?: number;
}

export interface Element {
  kind: 'element';
  /** The set or map the element belongs to. */
  set: string;
  /** One part per field of a concatenated key; a single part otherwise (`['10.1.0.0/16']`). */
  key: readonly string[];
  /** For map elements: the value parts; a verdict is one part such as `jump policy-x` or `drop`. */
  value?: readonly string[];
  comment?: string;
}

export type NftObject = Table | Chain | Rule | NftSet | NftMap | Element;

/** What flush and delete need to name a chain, set or map. */
export type ChainRef = Pick<Chain, 'kind' | 'name'>;
export type SetRef = Pick<NftSet, 'kind' | 'name'>;
export type MapRef = Pick<NftMap, 'kind' | 'name'>;
export type RuleRef = Pick<Rule, 'kind' | 'chain'> & { handle: number };

// ---- Listed state: what list() reads back, for callers to diff against what they want. ----

export interface RuleState {
  chain: string;
  handle: number;
  comment?: string;
  /** The body read back (real runner: parsed from nft's JSON by expr-json.ts; absent when nft listed an
   * expression Strand does not write). Callers still identify their rules by comment, as knftables'
   * ListRules does, and compare bodies only where they need to. */
  body?: Expr[];
  /** The packets and bytes of the rule's counter statement, if it has one (real runner only). */
  counter?: { packets: number; bytes: number };
  /** nft's raw JSON expression list (real runner only), for debugging; read `body` and `counter`. */
  expr?: unknown;
}

export interface ChainState {
  name: string;
  handle: number;
  base?: BaseChainSpec;
  rules: RuleState[];
}

export interface ElementState {
  key: string[];
  value?: string[];
  comment?: string;
}

export interface SetState {
  name: string;
  handle: number;
  type: string;
  flags: SetFlag[];
  comment?: string;
  elements: ElementState[];
}

export interface MapState extends SetState {
  value: string;
}

export interface TableState {
  exists: boolean;
  chains: Map<string, ChainState>;
  sets: Map<string, SetState>;
  maps: Map<string, MapState>;
}

export function emptyTableState(): TableState {
  return { exists: false, chains: new Map(), sets: new Map(), maps: new Map() };
}

// ---- Validation ----

export class NftObjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NftObjectError';
  }
}

/** Hyphenated words in nft 1.0.6's grammar (bison token names in libnftables); any of them as a name
 * is a syntax error in some position. */
const HYPHENATED_KEYWORDS = new Set([
  'a-rwnd',
  'asconf-ack',
  'auto-merge',
  'cookie-ack',
  'cookie-echo',
  'cum-tsn-ack',
  'forward-tsn',
  'frag-off',
  'fully-random',
  'gc-interval',
  'heartbeat-ack',
  'init-ack',
  'init-tag',
  'initial-tsn',
  'last-entry',
  'lowest-tsn',
  'max-delay',
  'more-fragments',
  'new-cum-tsn',
  'num-dup-tsns',
  'num-gap-ack-blocks',
  'num-inbound-streams',
  'num-outbound-streams',
  'param-problem',
  'proto-dst',
  'proto-src',
  'queue-threshold',
  'sack-permitted',
  'seg-left',
  'shutdown-ack',
  'shutdown-complete',
]);

/** Longest chain, set or map name accepted here (the kernel allows 256 since Linux 4.x; 32 before). */
export const MAX_NAME = 64;
/** nft refuses comments longer than this (NFT_USERDATA_MAXLEN is 256, nft's own limit 128). */
export const MAX_COMMENT = 128;

const NAME = /^[a-z][a-z0-9_]*(?:-[a-z0-9_]+)+$/;
const TABLE_NAME = /^[a-z][a-z0-9_-]*$/;

export function checkName(what: string, name: string): void {
  if (typeof name !== 'string' || !NAME.test(name) || name.length > MAX_NAME || HYPHENATED_KEYWORDS.has(name)) {
    throw new NftObjectError(
      `invalid ${what} name ${JSON.stringify(name)}: expected lower-case words joined by hyphens (at least one), at most ${MAX_NAME} characters, not an nft keyword`,
    );
  }
}

export function checkTableRef(table: TableRef): void {
  if (!['inet', 'ip', 'ip6'].includes(table.family))
    throw new NftObjectError(`unsupported table family ${JSON.stringify(table.family)}`);
  if (!TABLE_NAME.test(table.name) || table.name.length > MAX_NAME)
    throw new NftObjectError(`invalid table name ${JSON.stringify(table.name)}`);
}

export function checkComment(what: string, comment: string | undefined): void {
  if (comment === undefined) return;
  if (typeof comment !== 'string' || /["\u0000-\u001f\u007f]/.test(comment)) {
    throw new NftObjectError(
      `invalid comment on ${what} ${JSON.stringify(comment)}: nft strings cannot hold '"' or control characters`,
    );
  }
  if (Buffer.byteLength(comment) > MAX_COMMENT)
    throw new NftObjectError(`comment on ${what} is longer than ${MAX_COMMENT} bytes`);
}

/**
 * A word of letters, digits and `.:/_-` only (an address, a prefix, a port, a range, a name): what
 * checkSyntaxText accepts whatever its forbidden characters, told without its label and regexes (a
 * rebuild checks 50,000 element keys, and building each one's label was most of its garbage).
 */
function plainWord(text: string): boolean {
  if (typeof text !== 'string' || text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const ok =
      (c >= 48 && c <= 58) /* 0-9 : */ ||
      (c >= 97 && c <= 122) ||
      (c >= 65 && c <= 90) ||
      c === 46 /* . */ ||
      c === 47 /* / */ ||
      c === 45 /* - */ ||
      c === 95; /* _ */
    if (!ok) return false;
  }
  return true;
}

/**
 * Checks text that goes into the script as nft syntax (rule bodies, element keys and values, types):
 * no control characters, balanced double quotes, and outside quotes none of `forbidden` (always `;`
 * and `#`, which would end the command or start a comment).
 */
function checkSyntaxText(what: string, text: string, forbidden: string): void {
  if (typeof text !== 'string' || text.trim() === '') throw new NftObjectError(`${what} is empty`);
  if (/[\u0000-\u001f\u007f]/.test(text))
    throw new NftObjectError(`${what} ${JSON.stringify(text)} contains a control character`);
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === ';' || ch === '#' || forbidden.includes(ch))) {
      throw new NftObjectError(`${what} ${JSON.stringify(text)} contains ${JSON.stringify(ch)} outside quotes`);
    }
  }
  if (quoted) throw new NftObjectError(`${what} ${JSON.stringify(text)} has an unterminated quoted string`);
}

const TYPE = /^[a-z0-9_]+(?: \. [a-z0-9_]+)*$/;

function checkType(what: string, type: string): void {
  if (typeof type !== 'string' || !TYPE.test(type))
    throw new NftObjectError(
      `invalid ${what} ${JSON.stringify(type)}: expected e.g. ipv4_addr or ipv4_addr . inet_service`,
    );
}

export function checkHandle(what: string, handle: number | undefined): void {
  if (handle !== undefined && !(Number.isSafeInteger(handle) && handle > 0))
    throw new NftObjectError(`invalid ${what} handle ${handle}`);
}

/** The body's typed checks: they check every free string of a body (expr.ts, checkRuleBody), so the
 * rendered text needs no check of its own (there is no rule text that did not come from them). */
function checkRule(obj: Rule): void {
  const where = `rule body in chain ${obj.chain}`;
  try {
    checkRuleBody(obj.body, where, (what, name) => checkName(what, name));
  } catch (err) {
    if (err instanceof RuleBodyError) throw new NftObjectError(err.message);
    throw err;
  }
}

const VERDICT = /^(?:accept|drop|continue|return|(?:jump|goto) (\S+))$/;

/** The set name the last element checked named (valid: checkName passed it). */
let lastElementSet: string | undefined;

/** Checks a whole object; throws NftObjectError naming what is wrong. */
export function checkObject(obj: NftObject): void {
  switch (obj.kind) {
    case 'table':
      return;
    case 'chain': {
      checkName('chain', obj.name);
      checkComment(`chain ${obj.name}`, obj.comment);
      if (obj.base) {
        const b = obj.base;
        if (!['filter', 'nat', 'route'].includes(b.type))
          throw new NftObjectError(`chain ${obj.name}: invalid type ${JSON.stringify(b.type)}`);
        if (!['prerouting', 'input', 'forward', 'output', 'postrouting'].includes(b.hook))
          throw new NftObjectError(`chain ${obj.name}: invalid hook ${JSON.stringify(b.hook)}`);
        if (!Number.isSafeInteger(b.priority))
          throw new NftObjectError(`chain ${obj.name}: priority must be an integer (see PRIORITY)`);
        if (b.policy !== undefined && b.policy !== 'accept' && b.policy !== 'drop')
          throw new NftObjectError(`chain ${obj.name}: invalid policy ${JSON.stringify(b.policy)}`);
      }
      return;
    }
    case 'rule':
      checkName('chain', obj.chain);
      checkRule(obj);
      checkComment(`rule in chain ${obj.chain}`, obj.comment);
      checkHandle('rule', obj.handle);
      return;
    case 'set':
    case 'map': {
      checkName(obj.kind, obj.name);
      checkType(`${obj.kind} ${obj.name} key type`, obj.type);
      if (obj.kind === 'map') checkType(`map ${obj.name} value type`, obj.value);
      for (const f of obj.flags ?? [])
        if (!['interval', 'timeout', 'constant', 'dynamic'].includes(f))
          throw new NftObjectError(`${obj.kind} ${obj.name}: invalid flag ${JSON.stringify(f)}`);
      checkComment(`${obj.kind} ${obj.name}`, obj.comment);
      if (obj.kind === 'set' && obj.timeout !== undefined && !(Number.isSafeInteger(obj.timeout) && obj.timeout > 0))
        throw new NftObjectError(`set ${obj.name}: invalid timeout ${obj.timeout}`);
      if (obj.size !== undefined && !(Number.isSafeInteger(obj.size) && obj.size > 0))
        throw new NftObjectError(`${obj.kind} ${obj.name}: invalid size ${obj.size}`);
      return;
    }
    case 'element': {
      // A set's elements come one after another (50,000 of one set in a rebuild): its name is checked once.
      if (obj.set !== lastElementSet) {
        checkName('set or map', obj.set);
        lastElementSet = obj.set;
      }
      if (!Array.isArray(obj.key) || obj.key.length === 0)
        throw new NftObjectError(`element of ${obj.set}: the key has no parts`);
      // A key part is one word: whitespace would blur it with the " . " between parts or the " : "
      // before the value, and "," or braces would end the element list.
      for (const part of obj.key) if (!plainWord(part)) checkSyntaxText(`element key of ${obj.set}`, part, ' \t,{}');
      if (obj.value !== undefined) {
        if (obj.value.length === 0) throw new NftObjectError(`element of ${obj.set}: the value has no parts`);
        for (const part of obj.value) {
          checkSyntaxText(`element value of ${obj.set}`, part, ',{}');
          const verdict = VERDICT.exec(part);
          if (verdict?.[1] !== undefined) checkName('chain', verdict[1]);
        }
      }
      if (obj.comment !== undefined) checkComment(`element of ${obj.set}`, obj.comment);
      return;
    }
    default: {
      const never: never = obj;
      throw new NftObjectError(`unknown nftables object ${JSON.stringify(never)}`);
    }
  }
}

// ---- Rendering ----

export type Verb = 'add' | 'create' | 'insert' | 'replace' | 'flush' | 'delete';

function quote(s: string): string {
  return `"${s}"`;
}

function setBody(obj: NftSet | NftMap): string {
  const parts = [obj.kind === 'map' ? `type ${obj.type} : ${obj.value} ;` : `type ${obj.type} ;`];
  if (obj.flags?.length) parts.push(`flags ${obj.flags.join(',')} ;`);
  if (obj.kind === 'set' && obj.timeout !== undefined) parts.push(`timeout ${obj.timeout}s ;`);
  if (obj.size !== undefined) parts.push(`size ${obj.size} ;`);
  if (obj.comment !== undefined) parts.push(`comment ${quote(obj.comment)} ;`);
  return `{ ${parts.join(' ')} }`;
}

export function renderElement(e: Pick<Element, 'key' | 'value' | 'comment'>, withData: boolean): string {
  let s = e.key.join(' . ');
  if (withData && e.comment !== undefined) s += ` comment ${quote(e.comment)}`;
  if (withData && e.value !== undefined) s += ` : ${e.value.join(' . ')}`;
  return s;
}

/** One nft command, without the newline. The object must have passed checkObject. */
export function renderOperation(
  verb: Verb,
  obj: NftObject | ChainRef | SetRef | MapRef | RuleRef,
  table: TableRef,
): string {
  const t = `${table.family} ${table.name}`;
  switch (obj.kind) {
    case 'table':
      return `${verb} table ${t}`;
    case 'chain': {
      let s = `${verb} chain ${t} ${obj.name}`;
      if (verb === 'add' || verb === 'create') {
        const c = obj as Chain;
        const parts: string[] = [];
        if (c.base) {
          parts.push(`type ${c.base.type} hook ${c.base.hook} priority ${c.base.priority} ;`);
          if (c.base.policy) parts.push(`policy ${c.base.policy} ;`);
        }
        if (c.comment !== undefined) parts.push(`comment ${quote(c.comment)} ;`);
        if (parts.length) s += ` { ${parts.join(' ')} }`;
      }
      return s;
    }
    case 'rule': {
      const r = obj as Rule;
      let s = `${verb} rule ${t} ${r.chain}`;
      if (r.handle !== undefined) s += ` handle ${r.handle}`;
      if (verb !== 'delete') {
        s += ` ${renderRule(r.body)}`;
        if (r.comment !== undefined) s += ` comment ${quote(r.comment)}`;
      }
      return s;
    }
    case 'set':
    case 'map': {
      const s = `${verb} ${obj.kind} ${t} ${obj.name}`;
      return verb === 'add' || verb === 'create' ? `${s} ${setBody(obj as NftSet | NftMap)}` : s;
    }
    case 'element':
      return `${verb} element ${t} ${obj.set} { ${renderElement(obj, verb !== 'delete')} }`;
  }
}

// ---- Canonical element text ----

/**
 * The text nft lists for an address, prefix or address range written in `part`: RFC 5952 IPv6, host
 * bits cleared, and a full-length prefix as a bare address (an interval set lists 10.1.2.3/32 as
 * 10.1.2.3). Anything else (ports, interface names, verdicts) is returned as it is.
 */
export function canonicalElementPart(part: string): string {
  const slash = part.indexOf('/');
  if (slash > 0) {
    const ip = tryParseIp(part.slice(0, slash));
    const len = part.slice(slash + 1);
    if (ip && /^\d{1,3}$/.test(len)) {
      const n = Number(len);
      const max = ip.family === 4 ? 32 : 128;
      if (n <= max) return n === max ? formatIp(ip.bytes) : `${formatIp(networkOf(ip.bytes, n))}/${n}`;
    }
    return part;
  }
  const ip = tryParseIp(part);
  if (ip) return formatIp(ip.bytes);
  const dash = part.indexOf('-');
  if (dash > 0) {
    const lo = tryParseIp(part.slice(0, dash));
    const hi = tryParseIp(part.slice(dash + 1));
    if (lo && hi && lo.family === hi.family) return `${formatIp(lo.bytes)}-${formatIp(hi.bytes)}`;
  }
  return part;
}

/** The interval an IP element part covers, as [first, last] numbers; undefined for other parts. */
export function ipInterval(part: string): { family: 4 | 6; first: bigint; last: bigint } | undefined {
  const toBig = (b: Uint8Array) => b.reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);
  const slash = part.indexOf('/');
  const dash = part.indexOf('-');
  if (slash > 0) {
    const ip = tryParseIp(part.slice(0, slash));
    const n = Number(part.slice(slash + 1));
    if (!ip || !Number.isInteger(n)) return undefined;
    const bits = BigInt(ip.family === 4 ? 32 : 128);
    const first = toBig(networkOf(ip.bytes, n));
    return { family: ip.family, first, last: first + (1n << (bits - BigInt(n))) - 1n };
  }
  if (dash > 0) {
    const lo = tryParseIp(part.slice(0, dash));
    const hi = tryParseIp(part.slice(dash + 1));
    if (!lo || !hi || lo.family !== hi.family) return undefined;
    return { family: lo.family, first: toBig(lo.bytes), last: toBig(hi.bytes) };
  }
  const ip = tryParseIp(part);
  if (!ip) return undefined;
  const v = toBig(ip.bytes);
  return { family: ip.family, first: v, last: v };
}
