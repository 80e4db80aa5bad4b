// An interpreter of the rendered nftables objects for the rule subset render.ts writes, so tests check
// the layout itself (the typed rule bodies, set names and elements, verdict maps, chain flow) rather than
// the model it came from; it reads a DesiredPolicyTable (through nftView) or the FakeNft's state
// after transactions, which also checks that the diff left the table right.
//
// The packet is the first of a new connection (conntrack state new, R13). Which hook sees it follows
// from the addresses: to one of the node's addresses it is delivered locally (input), from one it
// was sent by the node (output), neither has a policy chain (render.ts); anything else is forwarded
// and walks agent-pol-forward. An expression this interpreter does not understand throws: the layout
// and its reader must change together.
import { renderValue, type Expr, type Selector, type Value } from '../nft/expr.ts';
import { ipInterval } from '../nft/objects.ts';
import { normalizeIp } from '../net/text.ts';
import { addressValue } from './cidr.ts';
import type { DesiredChain, DesiredPolicyTable, NftVerdict, NftView, Packet } from './types.ts';
import { FORWARD_CHAIN } from './skeleton.ts';

/** A DesiredPolicyTable as an NftView. */
export function nftView(desired: DesiredPolicyTable): NftView {
  const sets = new Map<
    string,
    { type: string; elements: readonly { key: readonly string[]; value?: readonly string[] | undefined }[] }
  >();
  for (const [name, s] of desired.sets) sets.set(name, { type: s.type, elements: desired.elements.get(name) ?? [] });
  const rulesOf = (c: DesiredChain) => c.rules.map((r) => ({ body: r.body, comment: r.comment }));
  const chains = new Map([...desired.chains].map(([name, c]) => [name, { rules: rulesOf(c) }]));
  return { chains, sets };
}

type Outcome = { kind: 'accept' } | { kind: 'drop' } | { kind: 'return' } | { kind: 'continue' };

const PROTO: Record<string, string> = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' };

/** What a selector reads from the packet; undefined when the packet has no such field (an IPv6
 * address of an IPv4 packet, an ICMPv6 type of a TCP one): the expression does not match. */
type Read = { value: string } | undefined;

class Interpreter {
  private readonly view: NftView;
  private readonly packet: Packet;
  private readonly family: 4 | 6;
  readonly path: { chain: string; comment?: string }[] = [];
  private depth = 0;

  constructor(view: NftView, packet: Packet, family: 4 | 6) {
    this.view = view;
    this.packet = packet;
    this.family = family;
  }

  private setHas(name: string, key: readonly string[]): { found: boolean; value?: readonly string[] | undefined } {
    const set = this.view.sets.get(name);
    if (!set) throw new Error(`rule names set ${name}, which does not exist`);
    for (const e of set.elements) {
      if (e.key.length !== key.length) continue;
      if (e.key.every((part, i) => partMatches(part, key[i] as string))) return { found: true, value: e.value };
    }
    return { found: false };
  }

  private read(s: Selector, body: readonly Expr[]): Read {
    if (s.kind === 'payload') {
      switch (s.field) {
        case 'ip saddr':
        case 'ip daddr':
        case 'ip6 saddr':
        case 'ip6 daddr': {
          if ((s.field.startsWith('ip6 ') ? 6 : 4) !== this.family) return undefined;
          return { value: s.field.endsWith('saddr') ? this.packet.src : this.packet.dst };
        }
        case 'th dport':
          return { value: String(this.packet.dport) };
        case 'icmpv6 type':
          // Packets here are TCP, UDP or SCTP.
          return undefined;
      }
    }
    if (s.kind === 'meta' && s.key === 'l4proto') return { value: PROTO[this.packet.protocol] as string };
    throw new Error(`the nft evaluator does not read ${JSON.stringify(s)} in ${JSON.stringify(body)}`);
  }

  /** Runs a chain: the verdict that ended it, or 'continue' when it ran out (a jump then returns). */
  run(chain: string): Outcome {
    const c = this.view.chains.get(chain);
    if (!c) throw new Error(`jump to chain ${chain}, which does not exist`);
    if (++this.depth > 16) throw new Error('jump loop');
    const entry: { chain: string; comment?: string } = { chain };
    this.path.push(entry);
    for (const r of c.rules) {
      const out = this.rule(r.body);
      if (out.kind === 'continue') continue;
      if (r.comment !== undefined) entry.comment = r.comment;
      this.depth--;
      return out;
    }
    this.depth--;
    return { kind: 'continue' };
  }

  private rule(body: readonly Expr[]): Outcome {
    for (const e of body) {
      switch (e.kind) {
        case 'match': {
          if (e.left.kind === 'ct') {
            // The packet opens a new connection.
            const r = e.right;
            const states = r.kind === 'flags' ? r.values : r.kind === 'keyword' ? [r.value] : undefined;
            if (states === undefined) throw new Error(`unknown ct state value in ${JSON.stringify(body)}`);
            if (states.includes('new') !== (e.op === 'eq')) return { kind: 'continue' };
            continue;
          }
          const got = this.read(e.left, body);
          if (got === undefined || valueMatches(e.right, got.value) !== (e.op === 'eq')) return { kind: 'continue' };
          continue;
        }
        case 'lookup': {
          const key = e.keys.map((k) => this.read(k, body));
          if (key.some((k) => k === undefined)) return { kind: 'continue' };
          const found = this.setHas(
            e.set,
            key.map((k) => (k as { value: string }).value),
          ).found;
          if (found !== (e.op === 'eq')) return { kind: 'continue' };
          continue;
        }
        case 'vmap': {
          const key = e.keys.map((k) => this.read(k, body));
          if (key.some((k) => k === undefined)) return { kind: 'continue' };
          const hit = this.setHas(
            e.map,
            key.map((k) => (k as { value: string }).value),
          );
          if (!hit.found) return { kind: 'continue' };
          const verdict = (hit.value ?? []).join(' . ');
          const jump = /^jump (\S+)$/.exec(verdict);
          if (jump) {
            const out = this.run(jump[1] as string);
            return out.kind === 'return' ? { kind: 'continue' } : out;
          }
          const goto = /^goto (\S+)$/.exec(verdict);
          if (goto) {
            const out = this.run(goto[1] as string);
            return out.kind === 'continue' ? { kind: 'return' } : out;
          }
          if (verdict === 'accept' || verdict === 'drop' || verdict === 'return') return { kind: verdict };
          throw new Error(`unknown verdict ${verdict}`);
        }
        case 'counter':
          continue;
        case 'limit':
        case 'log':
          // The denied-connection log (limit rate … log …): no verdict, the chain goes on.
          return { kind: 'continue' };
        case 'verdict':
          if (e.verdict === 'goto') {
            // On to the pod's next tier chain, which ends the walk of this one: its verdict is ours (a
            // `return` there, or running out of rules, goes back to the dispatch, as the kernel's goto does).
            const out = this.run(e.chain);
            return out.kind === 'continue' ? { kind: 'return' } : out;
          }
          if (e.verdict === 'jump') {
            const out = this.run(e.chain);
            if (out.kind === 'return' || out.kind === 'continue') return { kind: 'continue' };
            return out;
          }
          if (e.verdict === 'continue') continue;
          return { kind: e.verdict };
        default:
          throw new Error(`the nft evaluator does not understand ${JSON.stringify(e)} in ${JSON.stringify(body)}`);
      }
    }
    throw new Error(`rule without a verdict: ${JSON.stringify(body)}`);
  }
}

/** Does a match's right-hand side cover the packet's value? */
function valueMatches(v: Value, value: string): boolean {
  if (v.kind === 'anon-set') return v.elements.some((el) => valueMatches(el, value));
  if (v.kind === 'flags') return v.values.includes(value as never);
  return partMatches(renderValue(v), value);
}

/** Does an element key part (an address, prefix, range, number, number range or word) cover value? */
function partMatches(part: string, value: string): boolean {
  if (part === value) return true;
  if (/^\d+-\d+$/.test(part) && /^\d+$/.test(value)) {
    const [lo, hi] = part.split('-').map(Number) as [number, number];
    const v = Number(value);
    return lo <= v && v <= hi;
  }
  const v = addressValue(value);
  if (!v) return false;
  const iv = ipInterval(part);
  return iv !== undefined && iv.family === v.family && iv.first <= v.value && v.value <= iv.last;
}

/** The verdict of the table on a new connection's first packet. */
export function evaluateNft(view: NftView, packet: Packet, nodeAddresses: readonly string[]): NftVerdict {
  const src = normalizeIp(packet.src.trim()) ?? packet.src;
  const dst = normalizeIp(packet.dst.trim()) ?? packet.dst;
  const node = new Set(nodeAddresses.map((a) => normalizeIp(a.trim()) ?? a));
  // Input and output hooks: no policy chain there (R11).
  if (node.has(src) || node.has(dst)) return { allowed: true, path: [] };
  const family = src.includes(':') ? 6 : 4;
  const it = new Interpreter(view, { ...packet, src, dst }, family);
  const out = it.run(FORWARD_CHAIN);
  // The base chain's policy is accept.
  return { allowed: out.kind !== 'drop', path: it.path };
}
