// `strand explain --kernel`, the thinking (pure): for each direction this node enforces, the
// nftables object that implements the model's decision, found in what the kernel holds of table
// `inet strand` (read over nf_tables netlink: no `nft` needed on the node), with its packet counter.
// The policy layout is the compiler's (src/policy/render.ts; ClusterNetworkPolicy tiers: the deciding
// rule's chain, clusternetworkpolicy/flat-render.ts): a pod isolated in a direction has an
// element `<pod address> : jump <pod chain>` in the verdict map of that direction and family; in its chain every
// allow rule carries the comment of the
// policy rule it implements (ruleComment) and a counter, the chain ends in `counter drop` (comment
// "deny"); a pod not isolated has no element. Anything else found is a mismatch between the model
// and the kernel, and is reported as one.
import type { DirectionView, ExplainAnswer } from '../agent/explain.ts';
import type { TableState } from '../nft/objects.ts';
import type { ListOnly } from '../nft/transport.ts';
import {
  clusterChainName,
  clusterRuleComment,
  DENY_COMMENT,
  podChainName,
  ruleComment,
  SELF_COMMENT,
  verdictMapName,
} from '../policy/index.ts';
import { flatRuleChainName } from '../policy/clusternetworkpolicy/flat-render.ts';

type Step = NonNullable<DirectionView['steps']>[number];

/** The pod's chain of a tier (render.ts: the dispatch jumps to the first tier's, each goes to the next). */
function tierChainName(
  tier: Step['tier'],
  pod: { namespace: string; name: string },
  direction: 'egress' | 'ingress',
): string {
  return tier === 'networkpolicy' ? podChainName(pod, direction) : clusterChainName(tier, pod, direction);
}

/** The chain and rule comments that implement the deciding step of a verdict a ClusterNetworkPolicy tier spoke in. */
function decidingRules(
  d: DirectionView,
  pod: { namespace: string; name: string },
  direction: 'egress' | 'ingress',
): { chain: string; comments: string[]; words: string } | undefined {
  const last = d.steps?.at(-1);
  if (!last) return undefined;
  const chain = tierChainName(last.tier, pod, direction);
  if (last.tier === 'networkpolicy') {
    if (last.action === 'accept')
      return { chain, comments: d.rules.map((r) => ruleComment(r)), words: `the allow rule(s) in ${chain}` };
    return {
      chain,
      comments: [DENY_COMMENT],
      words: `the final "counter drop" (comment "${DENY_COMMENT}") of ${chain}`,
    };
  }
  if (!last.rule)
    return {
      chain,
      comments: [],
      words: `no rule of ${chain} matches: the last tier ends and the forward chain's policy accepts`,
    };
  // The tiers are flat (clusternetworkpolicy/flat-render.ts): the pod's chain looks the remote up and
  // jumps to the deciding rule's own chain, shared by the pods it selects; its counter is the rule's.
  const comment = clusterRuleComment(last.rule);
  const ruleChain = flatRuleChainName(last.rule);
  return { chain: ruleChain, comments: [comment], words: `the rule "${comment}" in ${ruleChain} (from ${chain})` };
}

export interface NftRuleFinding {
  chain: string;
  handle: number;
  comment: string;
  packets?: number;
}

export interface NftDirectionFinding {
  direction: 'egress' | 'ingress';
  pod?: { namespace: string; name: string };
  /** The verdict map looked in, and the element found for the pod's address (or none). */
  map?: string;
  element?: string;
  /** What implements the decision, in words. */
  implementedBy: string;
  rules: NftRuleFinding[];
  /** Sum of the implementing rules' counters. */
  packets?: number;
  matches: boolean;
  problem?: string;
}

export interface NftCheck {
  table: 'inet strand';
  directions: NftDirectionFinding[];
  /** Directions another node enforces: where to ask. */
  elsewhere: string[];
}

function family(ip: string): 4 | 6 {
  return ip.includes(':') ? 6 : 4;
}

function checkDirection(
  state: TableState,
  direction: 'egress' | 'ingress',
  d: DirectionView,
  ip: string,
  pod: { namespace: string; name: string },
): NftDirectionFinding {
  const map = verdictMapName(direction, family(ip));
  const chain = podChainName(pod, direction);
  const element = state.maps.get(map)?.elements.find((e) => e.key[0] === ip);
  const out: NftDirectionFinding = { direction, pod, map, implementedBy: '', rules: [], matches: true };
  if (element) out.element = `${element.key.join(' . ')} : ${(element.value ?? []).join(' ')}`;
  const fail = (problem: string) => {
    out.matches = false;
    out.problem = problem;
    return out;
  };
  if (!state.exists) return fail('table inet strand does not exist: no policy is programmed on this node');
  if (!state.maps.has(map)) return fail(`the verdict map ${map} does not exist`);

  if (d.steps !== undefined && d.steps.length > 0) {
    // A ClusterNetworkPolicy tier has rules for the pod: it is in the dispatch whatever the verdict.
    if (!element)
      return fail(
        `ClusterNetworkPolicies select ${pod.namespace}/${pod.name} for ${direction}, but ${map} has no element for ${ip}`,
      );
    return checkTiers(state, out, direction, d, ip, pod, element.value ?? []);
  }
  if (d.reason === 'not-isolated' || d.reason === 'not-local') {
    out.implementedBy = `no element for ${ip} in ${map}: not isolated, accepted by the forward chain's policy`;
    if (element)
      return fail(
        `the model does not isolate ${pod.namespace}/${pod.name} for ${direction}, but the kernel has ${out.element} in ${map}`,
      );
    return out;
  }
  if (d.reason === 'node') {
    out.implementedBy = "traffic to or from the node's own addresses has no policy chain (input and output hooks)";
    return out;
  }
  if (!element)
    return fail(
      `the model isolates ${pod.namespace}/${pod.name} for ${direction}, but ${map} has no element for ${ip}`,
    );
  const want = [`jump ${chain}`, `goto ${chain}`];
  if (!want.includes((element.value ?? []).join(' ')))
    return fail(`${map} sends ${ip} to ${(element.value ?? []).join(' ')}, not to ${chain}`);
  const listed = state.chains.get(chain);
  if (!listed) return fail(`the chain ${chain} of ${pod.namespace}/${pod.name} does not exist`);

  const comments =
    d.reason === 'allowed'
      ? d.rules.map((r) => ruleComment(r))
      : d.reason === 'denied'
        ? [DENY_COMMENT]
        : [SELF_COMMENT];
  for (const r of listed.rules) {
    if (r.comment === undefined || !comments.includes(r.comment)) continue;
    const f: NftRuleFinding = { chain, handle: r.handle, comment: r.comment };
    const packets = r.counter?.packets;
    if (packets !== undefined) f.packets = packets;
    out.rules.push(f);
  }
  const found = new Set(out.rules.map((r) => r.comment));
  const missing = comments.filter((c) => !found.has(c));
  if (d.reason === 'allowed') {
    out.implementedBy = `the allow rule(s) "${comments.join('", "')}" in ${chain}`;
    // Any one rule that allows is the decision; all of them missing is a mismatch.
    if (found.size === 0)
      return fail(`the model allows by ${comments.join(', ')}, but ${chain} has no rule with that comment`);
  } else {
    out.implementedBy =
      d.reason === 'denied'
        ? `the final "counter drop" (comment "${DENY_COMMENT}") of ${chain}`
        : `the "${SELF_COMMENT}" rule of ${chain}`;
    if (missing.length > 0) return fail(`${chain} has no rule with the comment "${missing.join('", "')}"`);
  }
  const counted = out.rules.filter((r) => r.packets !== undefined);
  if (counted.length > 0) out.packets = counted.reduce((n, r) => n + (r.packets ?? 0), 0);
  return out;
}

/** A verdict a ClusterNetworkPolicy tier spoke in: the dispatch to the first tier's chain, and the deciding rule. */
function checkTiers(
  state: TableState,
  out: NftDirectionFinding,
  direction: 'egress' | 'ingress',
  d: DirectionView,
  ip: string,
  pod: { namespace: string; name: string },
  value: readonly string[],
): NftDirectionFinding {
  const fail = (problem: string) => Object.assign(out, { matches: false, problem });
  const first = d.steps?.[0];
  if (!first) return fail('no tier spoke for this direction');
  const firstChain = tierChainName(first.tier, pod, direction);
  if (value.join(' ') !== `jump ${firstChain}`)
    return fail(`${out.map} sends ${ip} to ${value.join(' ')}, not to ${firstChain}`);
  const deciding = decidingRules(d, pod, direction) as NonNullable<ReturnType<typeof decidingRules>>;
  out.implementedBy = deciding.words;
  const listed = state.chains.get(deciding.chain);
  if (!listed) return fail(`the chain ${deciding.chain} of ${pod.namespace}/${pod.name} does not exist`);
  if (!state.chains.has(firstChain))
    return fail(`the chain ${firstChain} of ${pod.namespace}/${pod.name} does not exist`);
  for (const r of listed.rules) {
    if (r.comment === undefined || !deciding.comments.includes(r.comment)) continue;
    const f: NftRuleFinding = { chain: deciding.chain, handle: r.handle, comment: r.comment };
    if (r.counter?.packets !== undefined) f.packets = r.counter.packets;
    out.rules.push(f);
  }
  if (deciding.comments.length > 0 && out.rules.length === 0)
    return fail(`${deciding.chain} has no rule with the comment "${deciding.comments.join('", "')}"`);
  const counted = out.rules.filter((r) => r.packets !== undefined);
  if (counted.length > 0) out.packets = counted.reduce((n, r) => n + (r.packets ?? 0), 0);
  return out;
}

/** What checkNft reads of the table: the two pods' chains and the verdict maps with their elements. */
export function nftReadsFor(answer: ExplainAnswer): ListOnly {
  const chains: string[] = [];
  const sets: string[] = [];
  for (const end of [answer.src, answer.dst]) {
    for (const direction of ['egress', 'ingress'] as const) {
      if (end.pod) {
        const pod = { namespace: end.pod.namespace, name: end.pod.name };
        chains.push(
          podChainName(pod, direction),
          clusterChainName('admin', pod, direction),
          clusterChainName('baseline', pod, direction),
        );
      }
      sets.push(verdictMapName(direction, family(end.ip)));
    }
  }
  // The deciding ClusterNetworkPolicy rules' chains (flat layout: one per rule).
  if (answer.policy.available)
    for (const d of [answer.policy.egress, answer.policy.ingress]) {
      const rule = d.steps?.at(-1)?.rule;
      if (rule && d.steps?.at(-1)?.tier !== 'networkpolicy') chains.push(flatRuleChainName(rule));
    }
  return { chains: [...new Set(chains)], sets: [...new Set(sets)] };
}

/** The kernel's objects for every direction this node (answer.node) enforces. */
export function checkNft(state: TableState, answer: ExplainAnswer): NftCheck {
  const out: NftCheck = { table: 'inet strand', directions: [], elsewhere: [] };
  const p = answer.policy;
  if (!p.available) return out;
  const ends = [
    { direction: 'egress' as const, d: p.egress, end: answer.src },
    { direction: 'ingress' as const, d: p.ingress, end: answer.dst },
  ];
  for (const { direction, d, end } of ends) {
    if (d.reason === 'not-a-pod' || !end.pod) continue;
    if (d.node !== answer.node) {
      out.elsewhere.push(
        `${direction} of ${end.pod.namespace}/${end.pod.name} is enforced on ${d.node ?? 'its node'}: run strand explain --kernel there`,
      );
      continue;
    }
    out.directions.push(
      checkDirection(state, direction, d, end.ip, { namespace: end.pod.namespace, name: end.pod.name }),
    );
  }
  return out;
}
