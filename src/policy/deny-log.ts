// Optional logging of denied connections (agent option --policy-log-denied): before each rule that
// denies a new connection in a per-pod chain, a rule that logs it, rate-limited, to the kernel log
// (nft `log`, visible in dmesg/journald as "strand-deny <namespace>/<pod> <direction>: …"). Each
// chain has its own limit (10 a second, bursts of 20): a flood against one pod cannot fill the log,
// and the logging costs nothing for accepted packets. A transformation of the rendered table, so
// the compiler stays unaware of it.
import type { Rule } from '../nft/objects.ts';
import { DENY_COMMENT, type DesiredChain, type DesiredPolicyTable } from './model.ts';

export const DENY_LOG_COMMENT = 'log denied (rate-limited)';
/** nft's log prefix is at most 127 bytes (NF_LOG_PREFIXLEN). */
const MAX_PREFIX = 120;

export function denyLogged(table: DesiredPolicyTable): DesiredPolicyTable {
  const chains = new Map<string, DesiredChain>();
  for (const [name, c] of table.chains) {
    const owner = table.chainOwners.get(name);
    if (!owner || !c.rules.some((r) => r.comment === DENY_COMMENT)) {
      chains.set(name, c);
      continue;
    }
    // Names are DNS labels and subdomains: no quote or control character can reach the prefix.
    const prefix = `strand-deny ${owner.pod.namespace}/${owner.pod.name} ${owner.direction}: `.slice(0, MAX_PREFIX);
    const rules: Rule[] = [];
    for (const r of c.rules) {
      if (r.comment === DENY_COMMENT) {
        rules.push({ kind: 'rule', chain: name, rule: `ct state new limit rate 10/second burst 20 packets log prefix "${prefix}" level info`, comment: DENY_LOG_COMMENT });
      }
      rules.push(r);
    }
    chains.set(name, { chain: c.chain, rules });
  }
  return { ...table, chains };
}
