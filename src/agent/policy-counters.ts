// The policy rules' packet counters, read back from the kernel: per local pod and direction, allowed
// and denied; per policy and direction, allowed. The rendered table says who each per-pod chain
// belongs to (chainOwners) and what each rule comment stands for (comments); the kernel's JSON gives
// each rule's comment and its `counter` expression.
import type { TableState } from '../nft/objects.ts';
import type { DesiredPolicyTable, Direction } from '../policy/index.ts';

export interface PodCounter {
  namespace: string;
  name: string;
  direction: Direction;
  verdict: 'allow' | 'deny';
  packets: number;
}

export interface PolicyCounter {
  namespace: string;
  name: string;
  direction: Direction;
  packets: number;
}

/** The packets of a rule's `counter` statement in nft's JSON expression list, if it has one. */
export function counterPackets(expr: unknown): number | undefined {
  if (!Array.isArray(expr)) return undefined;
  for (const e of expr) {
    const c = (e as { counter?: { packets?: unknown } } | null)?.counter;
    if (c && typeof c.packets === 'number') return c.packets;
  }
  return undefined;
}

export function readPolicyCounters(state: TableState, table: DesiredPolicyTable): { pods: PodCounter[]; policies: PolicyCounter[] } {
  const pods = new Map<string, PodCounter>();
  const policies = new Map<string, PolicyCounter>();
  for (const [chainName, owner] of table.chainOwners) {
    const listed = state.chains.get(chainName);
    if (!listed) continue;
    for (const r of listed.rules) {
      const packets = counterPackets(r.expr);
      const meaning = r.comment === undefined ? undefined : table.comments.get(r.comment);
      if (packets === undefined || !meaning || (meaning.verdict !== 'allow' && meaning.verdict !== 'deny')) continue;
      const pk = `${owner.pod.namespace}/${owner.pod.name}/${owner.direction}/${meaning.verdict}`;
      const pod = pods.get(pk) ?? { namespace: owner.pod.namespace, name: owner.pod.name, direction: owner.direction, verdict: meaning.verdict, packets: 0 };
      pod.packets += packets;
      pods.set(pk, pod);
      if (meaning.verdict === 'allow') {
        const key = `${meaning.rule.namespace}/${meaning.rule.name}/${meaning.rule.direction}`;
        const p = policies.get(key) ?? { namespace: meaning.rule.namespace, name: meaning.rule.name, direction: meaning.rule.direction, packets: 0 };
        p.packets += packets;
        policies.set(key, p);
      }
    }
  }
  return { pods: [...pods.values()], policies: [...policies.values()] };
}
