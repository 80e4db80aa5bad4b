// A rewrite of the rendered rules that nft loads in linear time: a port match with one element,
// `meta l4proto . th dport { tcp . 80 }`, becomes `tcp dport 80` (the same match: `tcp dport`
// implies `meta l4proto tcp`). Every `{ … }` in a rule is an anonymous set, and nft 1.0.6 names each
// new one by scanning the sets it already has (`__set%d`), so a transaction adding many of them is
// quadratic: 8,000 such rules took 16.5 s here, and a 10,400-rule table more than the runner's 30 s
// timeout, against 0.8 s for the same table rewritten. Rules with several port elements keep their
// set. Applied to the compiler's output by the agent (the compiler's render stays as it is).
import type { Rule } from '../nft/objects.ts';
import type { DesiredChain, DesiredPolicyTable } from './model.ts';

const SINGLE_PORT = /meta l4proto \. th dport \{ (tcp|udp|sctp) \. (\d+(?:-\d+)?) \}/;

export function compactRule(rule: string): string {
  return rule.replace(SINGLE_PORT, (_m, proto: string, ports: string) => `${proto} dport ${ports}`);
}

export function compactPortMatches(table: DesiredPolicyTable): DesiredPolicyTable {
  const chains = new Map<string, DesiredChain>();
  for (const [name, c] of table.chains) {
    if (!c.rules.some((r) => SINGLE_PORT.test(r.rule))) {
      chains.set(name, c);
      continue;
    }
    chains.set(name, { chain: c.chain, rules: c.rules.map((r): Rule => (SINGLE_PORT.test(r.rule) ? { ...r, rule: compactRule(r.rule) } : r)) });
  }
  return { ...table, chains };
}
