// What the agent answers over its socket (pod-handshake.ts): the plugin's pod-start notice, and the
// command line's `strand status` (inspect) and `strand explain`. Reads the steps; changes nothing but
// the notice store (pod-notices.ts) and what the notice asks of the loops.
import type { NetlinkSocket } from '../kernel/index.ts';
import type { Logger } from '../log.ts';
import { clusterPolicyStatus, compilePolicy, type CompileInput } from '../policy/index.ts';
import { underlayPrefixes } from '../datapath/datapath.ts';
import type { Clock } from './clock.ts';
import type { AgentConfig } from './config.ts';
import { explain, type ExplainAnswer } from './explain.ts';
import { explainPolicy } from './explain-policy.ts';
import {
  buildInspectSnapshot,
  policySummary,
  type ApiConnectionTracker,
  type ClusterPolicySummary,
  type InspectSnapshot,
} from './inspect.ts';
import type { ClusterCache } from '../k8s/cluster-cache.ts';
import type { AgentMetrics } from './metrics.ts';
import { canonicalIp } from './node-addresses.ts';
import type { ExplainQuery, PodStartAnswer, PodStartNotice } from '../contracts/agent-socket.ts';
import type { PodStartNotices } from './pod-notices.ts';
import type { PolicyEnforcer } from './policy/enforcer.ts';
import type { ClusterNetworkStep } from './steps/cluster-network.ts';
import type { LocalPodsStep } from './steps/local-pods.ts';
import type { NodeSetupStep } from './steps/node-setup.ts';
import { clusterPolicyProblems } from './steps/cluster-policy-report.ts';

/** The longest a pod-start notice waits for the node state before the answer is "not ready". */
export const NOTICE_WAIT_MS = 30_000;
/** The agent answers a pod-start notice this long before the plugin stops waiting for the answer, so
 * the plugin hears "not ready" (and fails the ADD) rather than giving up and starting the pod open. */
const NOTICE_ANSWER_MARGIN_MS = 250;

export interface AnswersOptions {
  config: AgentConfig;
  log: Logger;
  clock: Clock;
  cache: ClusterCache;
  metrics: AgentMetrics;
  api: ApiConnectionTracker;
  apiServer: string;
  startedAt: number;
  notices: PodStartNotices;
  policy: PolicyEnforcer;
  nodeSetup: NodeSetupStep;
  clusterNetwork: ClusterNetworkStep;
  localPods: LocalPodsStep;
  openNetlink: () => NetlinkSocket;
  readiness: () => { ready: boolean; reasons: string[] };
  lastPass: () => number | undefined;
  /** A main pass soon (the notice's pod is listed, the node set up if it can be). */
  requestPass: () => void;
}

export class AgentAnswers {
  private readonly opts: AnswersOptions;
  private readonly nodeLevelWaiters = new Set<() => void>();
  private readonly answering = new Set<Promise<PodStartAnswer>>();
  private stopping = false;

  constructor(opts: AnswersOptions) {
    this.opts = opts;
  }

  /** The node state or the routes changed: the notices waiting for them look again. */
  nodeLevelChanged(): void {
    for (const wake of [...this.nodeLevelWaiters]) wake();
  }

  /** Refuses every waiting notice (and every later one); resolves once all of them are answered. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.nodeLevelChanged();
    this.opts.policy.stop();
    await Promise.allSettled([...this.answering]);
  }

  /**
   * The answer to the plugin's pod-start notice: ok once this node's level of the network is in
   * place, the node state (the pod got its address from it) and the routes to the other nodes, and
   * the pod's NetworkPolicy rules are applied (R16: isolated before any container starts). The whole
   * answer comes within the wait the plugin is configured with (podStartWaitMs), less a margin.
   */
  podReady(notice: PodStartNotice): Promise<PodStartAnswer> {
    const started = performance.now();
    const answer = this.answer(notice).then((a) => {
      const ms = performance.now() - started;
      this.opts.metrics.podStartAnswer.observe({ result: a.ok ? 'ok' : 'refused' }, ms / 1000);
      // The end of a pod start's timeline in a debug log (its start: the notice's info line).
      this.opts.log.debug({ name: notice.name, ok: a.ok, ms: Math.round(ms * 100) / 100 }, 'pod-start notice answered');
      return a;
    });
    this.answering.add(answer);
    void answer.finally(() => this.answering.delete(answer));
    return answer;
  }

  private async answer(notice: PodStartNotice): Promise<PodStartAnswer> {
    const { clock, config } = this.opts;
    const { namespace, name, uid, containerId, ifname, hostVeth, ips } = notice;
    // Logged a turn of the event loop later: an answer that needs no wait (a bind computed ahead,
    // about a millisecond) goes out first; the line is as early as ever for one that waits.
    setImmediate(() =>
      this.opts.log.info(
        { namespace, name, uid, containerId, ifname, hostVeth, ips },
        'pod-start notice from the plugin',
      ),
    );
    if (this.stopping) return this.refused('the strand agent is stopping');
    const started = clock.now();
    const request = { ...notice, ips: ips.map(canonicalIp) };
    this.opts.notices.record(request);
    this.opts.requestPass();
    const answerWithin = Math.max(0, config.podStartWaitMs - NOTICE_ANSWER_MARGIN_MS);
    if (!(await this.waitForNodeLevel(Math.min(NOTICE_WAIT_MS, answerWithin)))) {
      return this.refused(`the strand agent is not ready: ${this.opts.readiness().reasons.join('; ')}`);
    }
    const bound = Math.max(0, answerWithin - (clock.now() - started));
    const policy = await this.opts.policy.gate.podStarted(request, bound);
    if (!policy.ok) return this.refused(policy.message ?? 'the NetworkPolicy rules are not in place');
    this.opts.metrics.podStartNotices.inc({ result: 'ok' });
    return { ok: true };
  }

  private refused(message: string): PodStartAnswer {
    this.opts.metrics.podStartNotices.inc({ result: 'refused' });
    return { ok: false, message };
  }

  private nodeLevelReady(): boolean {
    return this.opts.nodeSetup.written && this.opts.clusterNetwork.routesReady && !this.stopping;
  }

  private waitForNodeLevel(timeoutMs: number): Promise<boolean> {
    if (this.nodeLevelReady() || this.stopping) return Promise.resolve(this.nodeLevelReady());
    return new Promise((resolve) => {
      const done = () => {
        timer.cancel();
        this.nodeLevelWaiters.delete(done);
        resolve(this.nodeLevelReady());
      };
      const timer = this.opts.clock.after(timeoutMs, done);
      this.nodeLevelWaiters.add(done);
    });
  }

  /** What the agent knows and wants, for `strand status` over its socket (inspect.ts). */
  inspect(): Promise<InspectSnapshot> {
    const { cache, nodeSetup } = this.opts;
    const setUp = nodeSetup.setUp;
    const pods = this.opts.localPods.known().map((p) => ({
      namespace: p.namespace,
      name: p.name,
      ips: p.ips,
      source: p.source,
      ...(p.hostVeth ? { hostVeth: p.hostVeth } : {}),
      ...(p.containerId ? { containerId: p.containerId } : {}),
    }));
    return buildInspectSnapshot(
      {
        config: this.opts.config,
        startedAt: this.opts.startedAt,
        apiServer: this.opts.apiServer,
        readiness: this.opts.readiness(),
        lastPassAt: this.opts.lastPass(),
        informers: cache.all.map((i) => this.opts.api.view(i.resource, i.synced, i.list().length)),
        podCidrs: setUp?.podCidrs,
        underlay: nodeSetup.underlay,
        podMtu: setUp?.mtu,
        podOffload: setUp?.offload,
        nodes: cache.nodes.list(),
        lastReconcile: this.opts.clusterNetwork.lastReconcile,
        pods,
        policy: this.policySummary(),
      },
      this.opts.log,
    );
  }

  /** Policies, the isolated local pods of the model in the kernel (else the one it would apply), its
   * last programming and nft failure. */
  private policySummary(): InspectSnapshot['policy'] {
    const { cache, policy } = this.opts;
    if (!cache.synced) return undefined;
    const programming = policy.programming;
    const input = policy.compileInput();
    const model = programming.compiled ?? compilePolicy(input);
    const isolated = model.pods.filter((p) => p.ingress || p.egress).length;
    return policySummary(
      cache.networkPolicies.list().length,
      isolated,
      programming,
      policy.problem,
      this.clusterPolicies(input),
    );
  }

  /** CNP counts per tier, ambiguous equal priorities and reported fields, for `strand status`. */
  private clusterPolicies(input: CompileInput): ClusterPolicySummary {
    const informer = this.opts.cache.clusterNetworkPolicies;
    const status = clusterPolicyStatus(input);
    return {
      served: !informer.absent,
      admin: status.counts.admin,
      baseline: status.counts.baseline,
      ambiguous: status.ambiguous.map((a) => ({ ...a, policies: [...a.policies], examples: [...a.examples] })),
      problems: clusterPolicyProblems(informer.list()),
    };
  }

  /** `strand explain` over the socket: the path and the verdict between two ends (explain.ts). */
  explain(q: ExplainQuery): Promise<ExplainAnswer> {
    const { cache } = this.opts;
    const underlay = this.opts.nodeSetup.underlay;
    let prefixes: string[] = [];
    if (underlay) {
      const nl = this.opts.openNetlink();
      try {
        prefixes = underlayPrefixes(nl, underlay.name);
      } finally {
        nl.close();
      }
    }
    const caches = {
      nodes: cache.nodes.list(),
      pods: cache.pods.list(),
      namespaces: cache.namespaces.list(),
      policies: cache.networkPolicies.list(),
      clusterNetworkPolicies: cache.clusterNetworkPolicies.list(),
    };
    // enforced: this agent programs what it compiles, so explain's verdicts are what the kernel enforces.
    const policy = (packet: Parameters<typeof explainPolicy>[1], src: string | undefined, dst: string | undefined) =>
      explainPolicy(caches, packet, src, dst, true, this.opts.policy.compileInput());
    const { config } = this.opts;
    return explain(
      {
        config,
        nodes: caches.nodes,
        pods: caches.pods,
        underlayPrefixes: prefixes,
        underlayIface: underlay?.name,
        policy,
      },
      q,
    );
  }
}
