// The verdict of the compiled model on the first packet of a connection, with the reason: which rules
// allow it, or which policies isolate the pod that drops it. For tests and `strand explain`. Only
// this node's ends are judged: a pod of another node is 'not-local' here (its node judges it, R1).
// Each direction walks the pipeline's tiers in order, as the rendered chains do: the first tier with
// rules for the pod whose matching rule accepts or drops (or whose fall-through drops) decides; a
// pass, or a tier with nothing for the pod, goes on to the next; after the last, allowed.
import { normalizeIp } from '../net/text.ts';
import { indexOf, ruleMatches } from './match.ts';
import { TIERS } from './pipeline.ts';
import type { CompiledPolicy, CompiledRule, Direction, DirectionVerdict, Packet, TierStep, Verdict } from './types.ts';

function judge(
  model: CompiledPolicy,
  direction: Direction,
  local: string,
  remote: string,
  packet: Packet,
): DirectionVerdict {
  const index = indexOf(model);
  const pod = index.byIp.get(local);
  const none = { rules: [], isolatedBy: [] };
  if (!pod) return { allowed: true, reason: 'not-local', ...none };
  const ref = { namespace: pod.namespace, name: pod.name };
  // R11: from this node to its pods (ingress), and from its pods to it (egress, the recommended choice).
  if (index.node.has(remote)) return { allowed: true, reason: 'node', pod: ref, ...none };
  if (pod.ips.includes(remote)) return { allowed: true, reason: 'self', pod: ref, ...none }; // R12
  const steps: TierStep[] = [];
  let explained = false; // a tier that orders its rules (ClusterNetworkPolicy) spoke: report the steps
  const withSteps = () => (explained ? { steps } : {});
  for (const tier of TIERS) {
    const d = tier.rulesOf(pod, direction);
    if (!d) continue;
    explained ||= tier.ordered;
    const matched = d.rules.filter((r) => ruleMatches(model, r, remote, packet));
    // Rules in priority order, the first match decides. An ordered tier's rules are already in its
    // evaluation order (the sort is stable); NetworkPolicy's all accept, and every match is reported.
    const decisive = [...matched].sort((a, b) => a.priority - b.priority)[0];
    const action = decisive?.action ?? tier.fallthrough;
    steps.push({
      tier: tier.name,
      action,
      ...(decisive ? { rule: decisive.source, priority: decisive.priority } : {}),
    });
    if (action === 'pass') continue;
    const allowed = action === 'accept';
    const sameRank = (r: CompiledRule) => r.priority === decisive?.priority && r.action === action;
    const deciding = !decisive ? [] : tier.ordered ? [decisive] : matched.filter(sameRank);
    const rules = deciding.map((r) => r.source);
    const reason = allowed ? 'allowed' : 'denied';
    return { allowed, reason, pod: ref, rules, isolatedBy: d.isolatedBy, ...withSteps() };
  }
  return { allowed: true, reason: 'not-isolated', pod: ref, ...none, ...withSteps() };
}

/** Both ends this node judges: the source's egress and the destination's ingress (R1). */
export function evaluatePolicy(model: CompiledPolicy, packet: Packet): Verdict {
  const src = normalizeIp(packet.src.trim()) ?? packet.src;
  const dst = normalizeIp(packet.dst.trim()) ?? packet.dst;
  const p = { ...packet, src, dst };
  const egress = judge(model, 'egress', src, dst, p);
  const ingress = judge(model, 'ingress', dst, src, p);
  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}
