// An interpreter of the rendered nftables objects for the rule subset render.ts writes, so tests check
// the layout itself (the rule texts, set names and elements, verdict maps, chain flow) rather than
// the model it came from; it reads a DesiredPolicyTable (through nftView) or the FakeNft's state
// after transactions, which also checks that the diff left the table right.
//
// The packet is the first of a new connection (conntrack state new, R13). Which hook sees it follows
// from the addresses: to one of the node's addresses it is delivered locally (input), from one it
// was sent by the node (output), neither has a policy chain (render.ts); anything else is forwarded
// and walks agent-pol-forward. A rule this interpreter does not understand throws: the layout and its
// reader must change together.
import { renderRule } from '../nft/expr.ts';
import { ipInterval } from '../nft/objects.ts';
import { addressValue, canonicalAddress } from './cidr.ts';
import type { DesiredPolicyTable, NftVerdict, NftView, Packet } from './types.ts';
import { FORWARD_CHAIN } from './skeleton.ts';

/** A DesiredPolicyTable as an NftView. */
export function nftView(desired: DesiredPolicyTable): NftView {
  const sets = new Map<string, { type: string; elements: readonly { key: readonly string[]; value?: readonly string[] | undefined }[] }>();
  for (const [name, s] of desired.sets) sets.set(name, { type: s.type, elements: desired.elements.get(name) ?? [] });
  const chains = new Map([...desired.chains].map(([name, c]) => [name, { rules: c.rules.map((r) => ({ rule: renderRule(r.body), comment: r.comment })) }]));
  return { chains, sets };
}

type Outcome = { kind: 'accept' } | { kind: 'drop' } | { kind: 'return' } | { kind: 'continue' };

const PROTO: Record<string, string> = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' };

/** Splits a rule body into words, a `{ … }` anonymous set being one word. */
function words(body: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < body.length) {
    if (body[i] === ' ') {
      i++;
      continue;
    }
    if (body[i] === '{') {
      const end = body.indexOf('}', i);
      out.push(body.slice(i, end + 1));
      i = end + 1;
      continue;
    }
    let j = body.indexOf(' ', i);
    if (j < 0) j = body.length;
    out.push(body.slice(i, j));
    i = j;
  }
  return out;
}

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

  private setHas(name: string, key: string[]): { found: boolean; value?: readonly string[] | undefined } {
    const set = this.view.sets.get(name);
    if (!set) throw new Error(`rule names set ${name}, which does not exist`);
    for (const e of set.elements) {
      if (e.key.length !== key.length) continue;
      if (e.key.every((part, i) => partMatches(part, key[i] as string))) return { found: true, value: e.value };
    }
    return { found: false };
  }

  private field(word: string): string {
    if (word === 'saddr') return this.packet.src;
    if (word === 'daddr') return this.packet.dst;
    throw new Error(`unknown address field ${word}`);
  }

  /** Runs a chain: the verdict that ended it, or 'continue' when it ran out (a jump then returns). */
  run(chain: string): Outcome {
    const c = this.view.chains.get(chain);
    if (!c) throw new Error(`jump to chain ${chain}, which does not exist`);
    if (++this.depth > 16) throw new Error('jump loop');
    const entry: { chain: string; comment?: string } = { chain };
    this.path.push(entry);
    for (const r of c.rules) {
      const out = this.rule(r.rule);
      if (out.kind === 'continue') continue;
      if (r.comment !== undefined) entry.comment = r.comment;
      this.depth--;
      return out;
    }
    this.depth--;
    return { kind: 'continue' };
  }

  private rule(body: string): Outcome {
    const w = words(body);
    let i = 0;
    while (i < w.length) {
      const word = w[i] as string;
      if (word === 'ct' && w[i + 1] === 'state') {
        // The packet opens a new connection.
        if (!(w[i + 2] as string).split(',').includes('new')) return { kind: 'continue' };
        i += 3;
        continue;
      }
      if (word === 'limit' || word === 'log') {
        // The denied-connection log (limit rate … log …): no verdict, the chain goes on.
        return { kind: 'continue' };
      }
      if (word === 'icmpv6') {
        // Packets here are TCP, UDP or SCTP.
        return { kind: 'continue' };
      }
      if (word === 'ip' || word === 'ip6') {
        const fam = word === 'ip' ? 4 : 6;
        if (fam !== this.family) return { kind: 'continue' };
        const f = w[i + 1] as string;
        if (f === 'daddr' && w[i + 2] === '.') {
          // ip daddr . meta l4proto . th dport @set
          if (w.slice(i + 3, i + 8).join(' ') !== 'meta l4proto . th dport') throw new Error(`unknown concatenation in ${body}`);
          const set = (w[i + 8] as string).replace(/^@/, '');
          if (!this.setHas(set, [this.packet.dst, PROTO[this.packet.protocol] as string, String(this.packet.dport)]).found) return { kind: 'continue' };
          i += 9;
          continue;
        }
        const addr = this.field(f);
        const arg = w[i + 2] as string;
        if (arg === 'vmap') {
          const map = (w[i + 3] as string).replace(/^@/, '');
          const hit = this.setHas(map, [addr]);
          if (!hit.found) return { kind: 'continue' };
          const verdict = (hit.value ?? []).join(' . ');
          const jump = /^jump (\S+)$/.exec(verdict);
          if (jump) {
            const out = this.run(jump[1] as string);
            return out.kind === 'return' ? { kind: 'continue' } : out;
          }
          if (verdict === 'accept' || verdict === 'drop') return { kind: verdict };
          throw new Error(`unknown verdict ${verdict}`);
        }
        if (arg.startsWith('@')) {
          if (!this.setHas(arg.slice(1), [addr]).found) return { kind: 'continue' };
        } else if (!partMatches(arg, addr)) return { kind: 'continue' };
        i += 3;
        continue;
      }
      if (word === 'meta' && w.slice(i, i + 5).join(' ') === 'meta l4proto . th dport') {
        const set = w[i + 5] as string;
        const proto = PROTO[this.packet.protocol] as string;
        if (set.startsWith('@')) {
          if (!this.setHas(set.slice(1), [proto, String(this.packet.dport)]).found) return { kind: 'continue' };
        } else if (set.startsWith('{')) {
          const items = set.slice(1, -1).split(',').map((x) => x.trim().split(' . '));
          if (!items.some(([p, port]) => p === proto && partMatches(port as string, String(this.packet.dport)))) return { kind: 'continue' };
        } else throw new Error(`expected a set in ${body}`);
        i += 6;
        continue;
      }
      if (word === 'meta' && w[i + 1] === 'l4proto') {
        // meta l4proto tcp [th dport 80 | th dport 53-80]
        if (w[i + 2] !== PROTO[this.packet.protocol]) return { kind: 'continue' };
        i += 3;
        if (w[i] === 'th' && w[i + 1] === 'dport') {
          if (!partMatches(w[i + 2] as string, String(this.packet.dport))) return { kind: 'continue' };
          i += 3;
        }
        continue;
      }
      if (word === 'counter') {
        i++;
        continue;
      }
      if (word === 'accept' || word === 'drop' || word === 'return') return { kind: word };
      if (word === 'goto' && w[i + 1] !== undefined) {
        // On to the pod's next tier chain, which ends the walk of this one: its verdict is ours (a
        // `return` there, or running out of rules, goes back to the dispatch, as the kernel's goto does).
        const out = this.run(w[i + 1] as string);
        return out.kind === 'continue' ? { kind: 'return' } : out;
      }
      throw new Error(`the nft evaluator does not understand ${JSON.stringify(word)} in ${JSON.stringify(body)}`);
    }
    throw new Error(`rule without a verdict: ${body}`);
  }
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
  const src = canonicalAddress(packet.src) ?? packet.src;
  const dst = canonicalAddress(packet.dst) ?? packet.dst;
  const node = new Set(nodeAddresses.map((a) => canonicalAddress(a) ?? a));
  // Input and output hooks: no policy chain there (R11).
  if (node.has(src) || node.has(dst)) return { allowed: true, path: [] };
  const family = src.includes(':') ? 6 : 4;
  const it = new Interpreter(view, { ...packet, src, dst }, family);
  const out = it.run(FORWARD_CHAIN);
  // The base chain's policy is accept.
  return { allowed: out.kind !== 'drop', path: it.path };
}
