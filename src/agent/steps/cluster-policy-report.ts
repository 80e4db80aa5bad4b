// ClusterNetworkPolicy problems: input the CRD's validation would refuse but a CNP can still carry (a
// webhook off, an old CRD) and fields this implementation does not honour (`domainNames`). The
// compiler handles both fail closed (src/policy/clusternetworkpolicy/parse.ts); this step says each
// once per policy, field and reason (not on every pass: the compiler sees them on every one), says
// when one is gone, and keeps a gauge of them by kind for alerting. `strand status` lists them too
// (answers.ts, from clusterPolicyStatus).
import { Gauge, type Registry } from 'prom-client';
import type { ResourceInformer } from '../../k8s/informer.ts';
import type { ClusterNetworkPolicyInfo } from '../../k8s/objects.ts';
import type { Logger } from '../../log.ts';
import { parseClusterPolicy } from '../../policy/index.ts';
import type { Step } from './step.ts';

export type ClusterPolicyProblemKind = 'invalid' | 'unsupported';

export interface ClusterPolicyProblem {
  kind: ClusterPolicyProblemKind;
  policy: string;
  /** The field: `spec.ingress[0].from[1]`, `spec.egress[2].to[0].domainNames`. */
  field: string;
  reason: string;
}

/** Every problem of these policies, in policy order. parseClusterPolicy is memoised per object. */
export function clusterPolicyProblems(policies: readonly ClusterNetworkPolicyInfo[]): ClusterPolicyProblem[] {
  const out: ClusterPolicyProblem[] = [];
  for (const p of [...policies].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))) {
    const parsed = parseClusterPolicy(p);
    // An unsupported field (domainNames) is also an error at its path, which says how the rule fails closed.
    for (const e of parsed.errors) {
      const kind = parsed.unsupported.includes(e.path) ? 'unsupported' : 'invalid';
      out.push({ kind, policy: e.name, field: e.path, reason: e.message });
    }
  }
  return out;
}

const keyOf = (p: ClusterPolicyProblem) => `${p.kind}\u0000${p.policy}\u0000${p.field}\u0000${p.reason}`;

export class ClusterPolicyReportStep implements Step {
  readonly name = 'cluster-policy-report';
  readonly inputs = ['cluster-policies', 'resync'] as const;
  private readonly informer: Pick<ResourceInformer<ClusterNetworkPolicyInfo>, 'list'>;
  private readonly log: Logger;
  private readonly gauge: Gauge<'kind'>;
  private said = new Map<string, ClusterPolicyProblem>();

  constructor(informer: Pick<ResourceInformer<ClusterNetworkPolicyInfo>, 'list'>, registry: Registry, log: Logger) {
    this.informer = informer;
    this.log = log.child({ component: 'policy' });
    this.gauge = new Gauge({
      name: 'strand_cluster_network_policy_problems',
      help:
        'ClusterNetworkPolicy fields the agent reports, by kind: invalid (what the CRD would refuse) or unsupported ' +
        '(domainNames); each rule they touch fails closed.',
      labelNames: ['kind'] as const,
      registers: [registry],
    });
    this.gauge.set({ kind: 'invalid' }, 0);
    this.gauge.set({ kind: 'unsupported' }, 0);
  }

  ready(): string | undefined {
    return undefined;
  }

  pass(): void {
    const problems = clusterPolicyProblems(this.informer.list());
    const now = new Map(problems.map((p) => [keyOf(p), p]));
    for (const [key, p] of now) {
      if (this.said.has(key)) continue;
      const what = p.kind === 'invalid' ? 'invalid' : 'unsupported';
      const message = `ClusterNetworkPolicy ${p.policy}: ${what} ${p.field}: ${p.reason}`;
      this.log.warn({ policy: p.policy, field: p.field, kind: p.kind, reason: p.reason }, message);
    }
    for (const [key, p] of this.said) {
      if (now.has(key)) continue;
      this.log.info(
        { policy: p.policy, field: p.field, kind: p.kind },
        `ClusterNetworkPolicy ${p.policy}: ${p.field} no longer reported`,
      );
    }
    this.said = now;
    this.gauge.set({ kind: 'invalid' }, problems.filter((p) => p.kind === 'invalid').length);
    this.gauge.set({ kind: 'unsupported' }, problems.filter((p) => p.kind === 'unsupported').length);
  }
}
