// A small policy layout for the applier's kernel tests (the real one is the compiler's): a forward
// base chain that accepts replies and sends new packets to a pod's address through a verdict map to
// that pod's chain, which drops everything except the sources it allows.
import type { Chain, NftMap, Rule } from '../../src/nft/objects.ts';
import { Transaction } from '../../src/nft/transaction.ts';
import type { Layout, LayoutInventory } from '../../src/nft/layout-applier.ts';
import { addrValue, counter, lookup, match, payload, verdict, type Expr } from '../../src/nft/expr.ts';
import { tryParseIp } from '../../src/net/ip.ts';

/** Isolated pod address → the source addresses it accepts. */
export type ToyState = Map<string, string[]>;

export const TOY_PREFIX = 'toy-';
const BASE: Chain = {
  kind: 'chain',
  name: 'toy-forward',
  base: { type: 'filter', hook: 'forward', priority: 0, policy: 'accept' },
};
const VMAP: NftMap = { kind: 'map', name: 'toy-ingress', type: 'ipv4_addr', value: 'verdict' };
const baseRules: Rule[] = [
  {
    kind: 'rule',
    chain: BASE.name,
    body: [
      match({ kind: 'ct', key: 'state' }, { kind: 'flags', values: ['established', 'related'] }),
      verdict('accept'),
    ],
    comment: 'replies',
  },
  {
    kind: 'rule',
    chain: BASE.name,
    body: [{ kind: 'vmap', keys: [payload('ip daddr')], map: VMAP.name }],
    comment: 'to isolated pods',
  },
];

export function podChain(ip: string): string {
  return `toy-pod-${ip.replace(/\./g, '_')}`;
}

/** A source that is not an address (the failure tests' 10.99.1.300) is looked up in a set that does
 * not exist: the typed checks let it through (they check a set's name, not that it exists) and the
 * kernel is the one to refuse it (not-found), through either transport. */
const MISSING_SET = 'toy-missing';
function sourceMatch(src: string): Expr {
  return tryParseIp(src) ? match(payload('ip saddr'), addrValue(src)) : lookup(payload('ip saddr'), MISSING_SET);
}

function podRules(ip: string, from: string[]): Rule[] {
  return [
    ...from.map((src) => ({
      kind: 'rule' as const,
      chain: podChain(ip),
      body: [sourceMatch(src), counter(), verdict('accept')],
      comment: `allow ${src}`,
    })),
    { kind: 'rule', chain: podChain(ip), body: [counter(), verdict('drop')], comment: 'isolated' },
  ];
}

function addPod(tx: Transaction, ip: string, from: string[]): void {
  tx.add({ kind: 'chain', name: podChain(ip) });
  for (const r of podRules(ip, from)) tx.add(r);
  tx.add({ kind: 'element', set: VMAP.name, key: [ip], value: [`goto ${podChain(ip)}`] });
}

export const toyLayout: Layout<ToyState> & { broken: boolean } = {
  prefix: TOY_PREFIX,
  /** When set, diff emits a command the kernel refuses (an element that is not there). */
  broken: false,
  diff(from, to) {
    const tx = new Transaction();
    if (this.broken) tx.delete({ kind: 'element', set: VMAP.name, key: ['10.255.255.254'] });
    for (const [ip] of from) {
      if (to.has(ip)) continue;
      tx.delete({ kind: 'element', set: VMAP.name, key: [ip] });
      tx.flush({ kind: 'chain', name: podChain(ip) });
      tx.delete({ kind: 'chain', name: podChain(ip) });
    }
    for (const [ip, allow] of to) {
      const before = from.get(ip);
      if (before === undefined) addPod(tx, ip, allow);
      else if (before.join() !== allow.join()) {
        tx.flush({ kind: 'chain', name: podChain(ip) });
        for (const r of podRules(ip, allow)) tx.add(r);
      }
    }
    return tx;
  },
  fullBuild(to) {
    const tx = new Transaction().add({ kind: 'table' }).add(BASE).add(VMAP);
    for (const r of baseRules) tx.add(r);
    for (const [ip, allow] of to) addPod(tx, ip, allow);
    return tx;
  },
  inventory(to): LayoutInventory {
    return {
      chains: [
        { chain: BASE, rules: baseRules.length },
        ...[...to].map(([ip, allow]) => ({
          chain: { kind: 'chain' as const, name: podChain(ip) },
          rules: allow.length + 1,
        })),
      ],
      sets: [VMAP],
    };
  },
};
