// `strand explain SRC DST [PORT[/PROTO]]`: can SRC open a connection to DST, and why. The agent
// answers from its caches over its socket (src/agent/explain.ts: the ends, the path as the backends
// program it, the policy verdict with the deciding policies and rules); this command adds what this
// node's kernel holds: the route it would really use when this node is the source's, and, with
// --kernel, the nftables rule that implements the policy decision with its packet counter. Where the
// kernel disagrees with the model, it says so: that is a bug or drift, not an answer.
import * as z from 'zod';
import { agentSocketPath } from '../contracts/agent-socket.ts';
import type { ExplainAnswer } from '../agent/explain.ts';
import { cidrContains, familyOf } from '../net/text.ts';
import { HANDSHAKE_VERSION, type ExplainQuery } from '../contracts/agent-socket.ts';
import { findLink, listRoutes, NetlinkSocket, type Route } from '../kernel/index.ts';
import { askAgent, unwrap } from './agent-query.ts';
import { checkNft, nftReadsFor, type NftCheck } from './explain-kernel.ts';
import { createNetlinkTransport } from '../nft/netlink/transport.ts';
import { EXIT } from './output.ts';

const RT_TABLE_MAIN = 254;
const RTNH_F_ONLINK = 4;

/** "80", "80/TCP", "53/udp" → port and protocol; throws naming what is wrong. */
export function parsePortProto(text: string): { port: number; protocol: 'TCP' | 'UDP' | 'SCTP' } {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(text);
  if (!m) throw new Error(`"${text}" is not PORT or PORT/PROTO (80, 53/UDP, 9000/SCTP)`);
  const port = Number(m[1]);
  if (port < 1 || port > 65535) throw new Error(`port ${port} is not in 1..65535`);
  return { port, protocol: (m[2]?.toUpperCase() ?? 'TCP') as 'TCP' | 'UDP' | 'SCTP' };
}

export interface KernelRouteCheck {
  /** The main table's route this node's kernel uses for the destination (longest prefix). */
  route?: string;
  strand: boolean;
  /** Agrees with the model's route (when the model has one). */
  matches: boolean;
  problem?: string;
}

export interface ExplainReport {
  kind: 'StrandExplain';
  v: 1;
  answer: ExplainAnswer;
  /** This node's kernel, when this node is where the path starts. */
  kernel?: { route?: KernelRouteCheck; nft?: NftCheck | { error: string } };
  mismatches: string[];
  verdict: 'allowed' | 'denied' | 'unknown';
}

/** The route the kernel picks for ip in the main table: the longest prefix, lowest metric (pure). */
export function lookupRoute(routes: readonly Route[], ip: string): Route | undefined {
  const fam = familyOf(ip);
  const cands = routes.filter((r) => r.family === fam && r.type === 1 && cidrContains(r.dst, ip));
  cands.sort((a, b) => Number(b.dst.split('/')[1]) - Number(a.dst.split('/')[1]) || (a.metric ?? 0) - (b.metric ?? 0));
  return cands[0];
}

/** The kernel's route against the model's (pure). */
export function checkRoute(
  answer: ExplainAnswer,
  kernel: Route | undefined,
  devName: (index: number | undefined) => string,
): KernelRouteCheck {
  const want = answer.path.route;
  if (!kernel)
    return {
      strand: false,
      matches: want === undefined,
      problem: `no route to ${answer.dst.ip} in this node's main table`,
    };
  const onlink = (kernel.flags & RTNH_F_ONLINK) !== 0;
  const text = `${kernel.dst}${kernel.gateway ? ` via ${kernel.gateway}` : ''} dev ${devName(kernel.oif)}${onlink ? ' onlink' : ''}${kernel.protocol === 0x53 ? ' proto 0x53 (Strand)' : ''}`;
  const out: KernelRouteCheck = { route: text, strand: kernel.protocol === 0x53, matches: true };
  if (want) {
    const same =
      kernel.dst === want.dst &&
      kernel.gateway === want.gateway &&
      devName(kernel.oif) === want.devName &&
      onlink === want.onlink &&
      kernel.protocol === 0x53;
    if (!same) {
      out.matches = false;
      out.problem = `the model's route is ${want.detail} but the kernel uses ${text}`;
    }
  } else if (answer.path.kind === 'same-node' && kernel.protocol === 0x53) {
    out.matches = false;
    out.problem = `both ends are on this node, yet the kernel routes ${answer.dst.ip} by Strand route ${text}`;
  }
  return out;
}

export function explainVerdict(r: Omit<ExplainReport, 'verdict'>): ExplainReport['verdict'] {
  if (r.mismatches.length > 0) return 'unknown';
  return r.answer.allowed ? 'allowed' : 'denied';
}

export function explainExitCode(r: ExplainReport): number {
  return r.verdict === 'allowed' ? EXIT.ok : r.verdict === 'denied' ? EXIT.not : EXIT.unknown;
}

// ---- text -------------------------------------------------------------------------------------------

function endpoint(e: ExplainAnswer['src']): string {
  if (e.kind === 'pod' && e.pod)
    return `pod ${e.pod.namespace}/${e.pod.name} (${e.ip}${e.pod.node ? ` on ${e.pod.node}` : ''}${e.pod.hostNetwork ? ', host network' : ''})`;
  if (e.kind === 'node') return `node ${e.node} (${e.ip})`;
  if (e.kind === 'pod-network')
    return `${e.cidr ?? e.ip} (pod network${e.node ? `, ${e.node}'s pod CIDR` : ''}, no pod)`;
  return `${e.cidr ?? e.ip} (outside the cluster${e.cidr ? `, as ${e.ip}` : ''})`;
}

type DirectionAnswer = Extract<ExplainAnswer['policy'], { available: true }>['egress'];
const TIER_WORDS = { admin: 'Admin', networkpolicy: 'NetworkPolicy', baseline: 'Baseline' } as const;
const ACTION_WORDS = { accept: 'Accept', drop: 'Deny', pass: 'Pass' } as const;

/** The tiers that spoke, in order: `Admin cnp/deny-metadata ingress[0] "deny-imds" Deny`, or a Pass
 * chain `Admin cnp/p ingress[0] Pass → NetworkPolicy: allowed by x/np spec.ingress[1]`. */
export function tierChain(d: DirectionAnswer): string {
  const steps = (d.steps ?? []).map((s) => {
    const tier = TIER_WORDS[s.tier];
    if (s.tier === 'networkpolicy') {
      if (s.action === 'accept')
        return `${tier}: allowed by ${d.rules.map((r) => `${r.namespace}/${r.name} spec.${r.direction}[${r.index}]`).join(', ')}`;
      return `${tier}: isolated, no rule allows (Deny)`;
    }
    if (!s.rule) return `${tier}: no rule matches (on)`;
    const r = s.rule;
    return `${tier} cnp/${r.name} ${r.direction}[${r.index}]${r.ruleName ? ` "${r.ruleName}"` : ''} ${ACTION_WORDS[s.action]} (priority ${s.priority ?? 0})`;
  });
  if (d.reason === 'not-isolated') steps.push('default: allowed');
  return steps.join(' → ');
}

function direction(name: string, dir: 'egress' | 'ingress', d: DirectionAnswer): string {
  const on = d.node ? ` (judged on ${d.node})` : '';
  if (d.steps && d.steps.length > 0) return `${name}: ${d.allowed ? 'allowed' : 'DENIED'}: ${tierChain(d)}${on}`;
  const by = d.isolatedBy.map((p) => `${p.namespace}/${p.name}`).join(', ');
  switch (d.reason) {
    case 'not-a-pod':
      return `${name}: not a pod: no NetworkPolicy applies`;
    case 'not-local':
      return `${name}: judged by its own node's agent${on}`;
    case 'not-isolated':
      return `${name}: not isolated (no NetworkPolicy selects it for ${dir})${on}`;
    case 'node':
      return `${name}: allowed: traffic to or from the pod's own node is always allowed${on}`;
    case 'self':
      return `${name}: allowed: a pod's traffic to itself${on}`;
    case 'allowed':
      return `${name}: isolated by ${by}; allowed by ${d.rules.map((r) => `${r.namespace}/${r.name} spec.${r.direction}[${r.index}]`).join(', ')}${on}`;
    case 'denied':
      return `${name}: isolated by ${by}; DENIED: no rule of these allows it${on}`;
  }
}

export function formatExplain(r: ExplainReport): string {
  const a = r.answer;
  const out: string[] = [];
  const port =
    a.packet.port !== undefined ? ` port ${a.packet.port}/${a.packet.protocol}` : ` (${a.packet.protocol}, any port)`;
  out.push(`${endpoint(a.src)} → ${endpoint(a.dst)}${port}`);
  out.push(`verdict: ${r.verdict === 'allowed' ? 'ALLOWED' : r.verdict === 'denied' ? 'DENIED' : 'CANNOT TELL'}`);
  out.push('', `path (${a.path.kind}${a.path.masqueraded ? ', masqueraded' : ''}):`);
  for (const s of a.path.steps) out.push(`  ${s}`);
  if (a.path.problem) out.push(`  ✗ ${a.path.problem}`);
  if (r.kernel?.route)
    out.push(
      `  kernel on ${a.node}: ${r.kernel.route.route ?? '(no route)'}${r.kernel.route.matches ? ' — as the model says' : ''}`,
    );
  out.push('', 'policy:');
  if (!a.policy.available) out.push(`  ${a.policy.reason}`);
  else {
    if (!a.policy.enforced)
      out.push('  (what the NetworkPolicies say; this agent does not program them, so nothing filters the packet)');
    out.push(`  ${direction('egress of the source', 'egress', a.policy.egress)}`);
    out.push(`  ${direction('ingress of the destination', 'ingress', a.policy.ingress)}`);
  }
  const nft = r.kernel?.nft;
  if (nft && 'error' in nft) out.push(`  kernel: could not read table inet strand: ${nft.error}`);
  else if (nft) {
    for (const d of nft.directions) {
      const counter = d.packets !== undefined ? `, ${d.packets} packets counted` : '';
      out.push(
        `  kernel, ${d.direction} of ${d.pod?.namespace}/${d.pod?.name}: ${d.element ? `${d.map} has ${d.element}; ` : ''}${d.implementedBy}${counter}${d.matches ? '' : ` — ${d.problem}`}`,
      );
      for (const rule of d.rules)
        out.push(
          `    rule handle ${rule.handle} in ${rule.chain} "${rule.comment}"${rule.packets !== undefined ? `: ${rule.packets} packets` : ''}`,
        );
    }
    for (const e of nft.elsewhere) out.push(`  kernel: ${e}`);
  }
  for (const m of r.mismatches) out.push(`✗ MODEL AND KERNEL DISAGREE: ${m}`);
  return `${out.join('\n')}\n`;
}

// ---- schema -----------------------------------------------------------------------------------------

let answerCache: z.ZodType<ExplainAnswer> | undefined;

export function explainAnswerSchema(): z.ZodType<ExplainAnswer> {
  if (answerCache) return answerCache;
  const str = z.string();
  const endpointSchema = z.object({
    input: str,
    kind: z.enum(['pod', 'node', 'external', 'pod-network']),
    ip: str,
    cidr: str.optional(),
    pod: z
      .object({
        namespace: str,
        name: str,
        node: str.optional(),
        ips: z.array(str),
        hostNetwork: z.boolean(),
        labels: z.record(z.string(), z.string()),
      })
      .optional(),
    node: str.optional(),
  });
  const rule = z.object({
    namespace: str,
    name: str,
    direction: z.enum(['ingress', 'egress']),
    index: z.number().int(),
    ruleName: str.optional(),
  });
  const step = z.object({
    tier: z.enum(['admin', 'networkpolicy', 'baseline']),
    action: z.enum(['accept', 'drop', 'pass']),
    priority: z.number().optional(),
    rule: rule.optional(),
  });
  const dir = z.object({
    node: str.optional(),
    allowed: z.boolean(),
    reason: z.enum(['not-a-pod', 'not-local', 'not-isolated', 'node', 'self', 'allowed', 'denied']),
    isolatedBy: z.array(z.object({ namespace: str, name: str })),
    rules: z.array(rule),
    steps: z.array(step).optional(),
  });
  answerCache = z.object({
    v: z.literal(1),
    node: str,
    src: endpointSchema,
    dst: endpointSchema,
    packet: z.object({
      src: str,
      dst: str,
      protocol: z.enum(['TCP', 'UDP', 'SCTP']),
      port: z.number().int().optional(),
    }),
    path: z.object({
      kind: z.enum(['same-node', 'cross-node', 'to-external', 'from-external', 'to-node', 'local', 'unroutable']),
      srcNode: str.optional(),
      dstNode: str.optional(),
      route: z
        .object({
          dst: str,
          gateway: str,
          dev: z.enum(['vxlan', 'underlay']),
          devName: str,
          onlink: z.boolean(),
          detail: str,
        })
        .optional(),
      masqueraded: z.boolean(),
      steps: z.array(str),
      problem: str.optional(),
    }),
    policy: z.union([
      z.object({ available: z.literal(false), reason: str }),
      z.object({ available: z.literal(true), enforced: z.boolean(), allowed: z.boolean(), egress: dir, ingress: dir }),
    ]),
    allowed: z.boolean(),
  });
  return answerCache;
}

let reportCache: z.ZodType<ExplainReport> | undefined;

/** The schema of `strand explain -o json`. */
export function explainReportSchema(): z.ZodType<ExplainReport> {
  if (reportCache) return reportCache;
  const str = z.string();
  reportCache = z.object({
    kind: z.literal('StrandExplain'),
    v: z.literal(1),
    answer: explainAnswerSchema(),
    kernel: z
      .object({
        route: z
          .object({ route: str.optional(), strand: z.boolean(), matches: z.boolean(), problem: str.optional() })
          .optional(),
        nft: z
          .union([
            z.object({
              table: z.literal('inet strand'),
              directions: z.array(
                z.object({
                  direction: z.enum(['egress', 'ingress']),
                  pod: z.object({ namespace: str, name: str }).optional(),
                  map: str.optional(),
                  element: str.optional(),
                  implementedBy: str,
                  rules: z.array(
                    z.object({ chain: str, handle: z.number().int(), comment: str, packets: z.number().optional() }),
                  ),
                  packets: z.number().optional(),
                  matches: z.boolean(),
                  problem: str.optional(),
                }),
              ),
              elsewhere: z.array(str),
            }),
            z.object({ error: str }),
          ])
          .optional(),
      })
      .optional(),
    mismatches: z.array(str),
    verdict: z.enum(['allowed', 'denied', 'unknown']),
  });
  return reportCache;
}

export async function runExplain(
  stateDir: string,
  q: ExplainQuery,
  opts: { kernel: boolean; timeoutMs?: number },
): Promise<ExplainReport | { error: string; code: number }> {
  const socket = agentSocketPath(stateDir);
  const raw = await askAgent(socket, { v: HANDSHAKE_VERSION, type: 'explain', ...q }, opts.timeoutMs ?? 10_000);
  const a = unwrap(raw, 'explain', explainAnswerSchema());
  if (a.kind === 'not-running')
    return {
      error: `explain needs the agent's view of the cluster, and no agent runs here: ${a.message}`,
      code: EXIT.unknown,
    };
  if (a.kind === 'error') return { error: a.message, code: EXIT.unknown };
  const answer = a.value;
  const report: Omit<ExplainReport, 'verdict'> = { kind: 'StrandExplain', v: 1, answer, mismatches: [] };
  if (answer.path.srcNode === answer.node && answer.path.kind !== 'unroutable') {
    const nl = NetlinkSocket.open();
    try {
      const kernel = lookupRoute(listRoutes(nl, { table: RT_TABLE_MAIN }), answer.dst.ip);
      const route = checkRoute(answer, kernel, (i) => (i === undefined ? '?' : (findLink(nl, i)?.name ?? `#${i}`)));
      report.kernel = { route };
      if (!route.matches && route.problem) report.mismatches.push(route.problem);
    } finally {
      nl.close();
    }
  }
  if (opts.kernel && answer.policy.available) {
    report.kernel ??= {};
    // Table inet strand in this namespace over nf_tables netlink: what the kernel holds, not what the
    // agent thinks, and no `nft` needed on the node.
    const transport = createNetlinkTransport();
    try {
      const nft = checkNft(await transport.list(nftReadsFor(answer)), answer);
      report.kernel.nft = nft;
      for (const d of nft.directions) if (!d.matches && d.problem) report.mismatches.push(d.problem);
    } catch (err) {
      report.kernel.nft = { error: (err as Error).message };
    } finally {
      transport.close();
    }
  }
  return { ...report, verdict: explainVerdict(report) };
}
