// Over 400 lines: the enforcement loop's passes, fast path and rebuilds share one state machine.
// The agent's NetworkPolicy enforcement (issue 10): from the informers' caches to this node's rules in
// `inet strand`, on every NetworkPolicy, Pod and Namespace event and on every pass. Its parts:
//
//   input.ts (the one builder) ──compilePolicy──▶ CompiledPolicy ──renderPolicy──▶ DesiredPolicyTable
//        ──PolicyApplier (diff, or one-transaction rebuild)──▶ kernel      (this file: compile-and-apply)
//        ──▶ gate.ts: the pod-start notices whose pods are now in are answered
//        ──▶ cut-queue.ts (when, one socket) and flow-cutter.ts (what): conntrack entries of the flows
//            the change denies deleted
//   counter-reader.ts: the rules' counters into the metrics when scraped
//   a pod-start notice alone: bound to the model applied (policy/bind.ts), not compiled again
//
// Choices (README "NetworkPolicy", "Enforcement"):
//  - Its own loop (loop.ts) with a short debounce (POLICY_DEBOUNCE_MS; none for a lone event,
//    POLICY_QUIET_MS), apart from the main pass, so a policy change is not held up by node set-up or
//    the 100 ms debounce of the main loop.
//  - Nothing is applied before every informer has listed: rules compiled from half-filled caches
//    would open isolated pods. Until then the table stays as the last agent left it.
import type { Registry } from 'prom-client';
import type { Logger } from '../../log.ts';
import type { Nft } from '../../nft/transport.ts';
import { PolicyApplier, PolicyApplyError, type PolicyLayout } from '../../policy/applier.ts';
import { BindPreparer, bindLocalPod, NOTHING_PREPARED, type PreparedSets } from '../../policy/bind.ts';
import { IncrementalCompiler } from '../../policy/incremental/compiler.ts';
import { modelDifferences } from '../../policy/incremental/compare.ts';
import { TableRenderer } from '../../policy/incremental/render.ts';
import { diffShared, renderBound } from '../../policy/bind-render.ts';
import {
  compilePolicy,
  fullBuildPolicy,
  fullBuildPolicyAsync,
  policyDrift,
  POLICY_PREFIX,
  renderPolicy,
  type CompiledPolicy,
  type CompileInput,
  type DesiredPolicyTable,
  type PolicyPod,
  type RenderOptions,
} from '../../policy/index.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { ClusterCache } from '../../k8s/cluster-cache.ts';
import type { KubeClient } from '../../k8s/client.ts';
import { Loop } from '../loop.ts';
import { podKey, type PodStartNotices } from '../pod-notices.ts';
import { createPolicyMetrics, type PolicyMetrics } from '../policy-metrics.ts';
import { CounterReader } from './counter-reader.ts';
import { CutQueue } from './cut-queue.ts';
import { PodStartGate } from './gate.ts';
import { BindsAhead, settleAhead } from './bind-ahead.ts';
import { PolicyInput, samePolicyInput, waitingLocalPods } from './input.ts';
import { recoverAddresses } from './adoption.ts';
import { describeError } from '../../k8s/client.ts';
import { nextTurn } from '../../util/sliced.ts';

export { COUNTER_READ_MS } from './counter-reader.ts';

/** Policy events arriving within this window make one policy pass. */
export const POLICY_DEBOUNCE_MS = 5;
/** An event that comes this long after the last one is applied at once, without the debounce: a
 * lone policy, label or namespace change waits for nothing (issue 17: enforced in 10 ms), while the
 * events of a burst, closer together, are still gathered by the debounce. */
export const POLICY_QUIET_MS = 100;
/** A pass's compile and render give the event loop back once a slice took this long: a step between
 * two looks at the clock (2,000 pods walked, 25 rendered) or a collection can add ~20 ms to it, and
 * no task should pass ~30 ms (issue 18: /healthz answers within 100 ms at 50,000 pods). */
export const PASS_SLICE_MS = 10;
/** A failed policy pass is tried again after this long. */
export const POLICY_RETRY_MS = 1_000;
/** The marker chain of the applier (outside the compiler's prefix, which it replaces wholesale). */
export const POLICY_MARKER_CHAIN = 'agent-policy-generation';
/** Drift (a table flushed or deleted by hand) is looked for this often (the agent's timer), apart
 * from the passes that apply changes: the look compiles nothing. */
export const DRIFT_CHECK_MS = 10_000;
/** A pass whose input is the one last compiled (the informers' very objects) compiles nothing, but
 * this often it compiles everything anyway, as the check that nothing was missed (its cost logged). */
export const FULL_COMPILE_MS = 10 * 60_000;
/** --policy-log-denied: at most this many log lines a second per pod and direction (bursts of twice that). */
export const DENY_LOG_PER_SECOND = 10;

export interface PolicyEnforcerOptions {
  nodeName: string;
  nft: Nft;
  cache: ClusterCache;
  kube: Pick<KubeClient, 'request'>;
  log: Logger;
  registry: Registry;
  /** The one store of pod-start notices (pod-notices.ts). */
  notices: PodStartNotices;
  /** This node's addresses (node-addresses.ts): always allowed to its pods (R11). */
  nodeAddresses: () => string[];
  /** Delete the conntrack entries of flows a change denies (--policy-conntrack). */
  cutDeniedFlows: boolean;
  /** Log denied new connections, rate-limited (--policy-log-denied): nft `log` before each deny. */
  logDenied: boolean;
  clock?: Clock;
  /** Called after each rebuild (the first one follows the informers' first lists): the agent gives
   * the garbage of compiling everything back to the system. */
  onRebuilt?: () => void;
  /**
   * Gives the event loop back between the stages of a full pass (default: setImmediate), so that
   * /healthz, /readyz, /metrics and the plugin's notices are served between them (issue 18: a pass at
   * 50,000 pods must not hold the loop for seconds). Injected by tests to see where a pass yields.
   */
  yieldToLoop?: (stage: 'input' | 'compiled' | 'rendered' | 'slice') => Promise<void>;
}

/** The compiler's rendered table as the applier reads it. */
export const POLICY_LAYOUT: PolicyLayout<DesiredPolicyTable> = {
  prefix: POLICY_PREFIX,
  // Tables grown by the pod-start fast path share what did not change: only the rest is compared.
  diff: (from, to) => diffShared(from, to),
  fullBuild: (to, remaining) => fullBuildPolicy(to, remaining),
  fullBuildAsync: (to, remaining, breathe) => fullBuildPolicyAsync(to, remaining, breathe),
  inventory: (t) => ({
    chains: [...t.chains.values()].map((c) => ({ chain: c.chain, rules: c.rules.length })),
    sets: [...t.sets.values()],
  }),
  compare: (applied, actual) => policyDrift(applied, actual),
};

export class PolicyEnforcer {
  readonly metrics: PolicyMetrics;
  readonly gate: PodStartGate;
  readonly input: PolicyInput;
  private readonly opts: PolicyEnforcerOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly applier: PolicyApplier<DesiredPolicyTable>;
  private readonly counters: CounterReader;
  private readonly loop: Loop;
  private compiled: CompiledPolicy | undefined;
  /** Passes compile and render from what the last pass built (issue 18: work follows the change). */
  private compiler = new IncrementalCompiler();
  private renderer = new TableRenderer();
  private readonly preparer = new BindPreparer();
  /** The input `compiled` is the compile of (the last compile's, with the notices bound since), and
   * when the pure compiler last checked the incremental one. */
  private lastInput: CompileInput | undefined;
  private lastFullCompile = 0;
  /** The first event not yet followed by an applied pass. */
  private pendingSince: number | undefined;
  private passDue = false;
  /** Pods of pod-start notices to bind (policy/bind.ts) in the next run, unless a full pass is due. */
  private readonly bindDue = new Set<string>();
  /** The looks for denied flows (cut-queue.ts): a bind's waits for the binds of the notices behind it. */
  private readonly cuts: CutQueue;
  /** This node's pods of an input's pod list by key (for binds ahead of a pass). */
  private readonly localPodsOf = new WeakMap<readonly PolicyPod[], Map<string, PolicyPod>>();
  /** Sets for the pods scheduled here that wait for their ADD, resolved at the last full compile. */
  private prepared: PreparedSets = NOTHING_PREPARED;
  private driftDue = false;
  private lastErrors = '';
  /** For `strand status` (inspect.ts): the last event-to-rules latency and the last nft refusal. */
  private lastProgrammed: { ms: number; at: number } | undefined;
  private lastFailureAt: number | undefined;
  /** When the last event asked for a pass (request with seenAt): a lone one skips the debounce. */
  private lastEventAt = Number.NEGATIVE_INFINITY;
  /** The pod-start binds computed before their notices (bind-ahead.ts). */
  private readonly ahead: BindsAhead;
  /** The ms of the bind being applied (bindModel, renderBound), for applyModel's debug line. */
  private bindTimes: { bindMs: number; renderMs: number } | undefined;

  constructor(opts: PolicyEnforcerOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log.child({ component: 'policy' });
    this.counters = new CounterReader(opts.nft, this.clock, this.log, () => this.applier.current);
    this.metrics = createPolicyMetrics(opts.registry, () => this.counters.collect(this.metrics));
    this.cuts = new CutQueue({ log: this.log, metrics: this.metrics });
    const m = this.metrics;
    this.applier = new PolicyApplier({
      nft: opts.nft,
      layout: POLICY_LAYOUT,
      log: this.log,
      markerChain: POLICY_MARKER_CHAIN,
      hooks: {
        transaction: (kind, lines, bytes) => {
          m.transactions.inc({ kind });
          m.transactionLines.observe({ kind }, lines);
          m.transactionBytes.observe({ kind }, bytes);
        },
        rebuild: (reason) => m.rebuilds.inc({ reason }),
        failure: (kind) => {
          this.lastFailureAt = this.clock.now();
          m.nftFailures.inc({ kind });
        },
      },
    });
    this.input = new PolicyInput({
      nodeName: opts.nodeName,
      cache: opts.cache,
      notices: opts.notices,
      nodeAddresses: opts.nodeAddresses,
      clock: this.clock,
      log: this.log,
    });
    this.gate = new PodStartGate({
      cache: opts.cache,
      kube: opts.kube,
      notices: opts.notices,
      input: this.input,
      clock: this.clock,
      log: this.log,
      requestBind: (pod, seenAt) => this.requestBind(pod, seenAt),
      problem: () => this.problem,
      onTimeout: () => this.metrics.podStartTimeouts.inc(),
    });
    this.loop = new Loop({
      clock: this.clock,
      debounceMs: POLICY_DEBOUNCE_MS,
      retryMs: POLICY_RETRY_MS,
      run: () => this.runDue(),
    });
    this.ahead = new BindsAhead({
      state: () => {
        const table = this.applier.current;
        const { compiled, lastInput, prepared } = this;
        if (!table || !compiled || !lastInput || this.applier.problem) return undefined;
        return { table, compiled, lastInput, prepared };
      },
      busy: () => this.passDue || this.bindDue.size > 0 || this.loop.isStopped,
      forPod: (key, last) => this.input.forPod(key, last),
      renderOptions: () => this.renderOptions(),
      template: (a, b, standins) => this.applier.templateAhead(a, b, standins),
      clock: this.clock,
      log: this.log,
    });
  }

  /** Why this node's policy rules are not (known to be) in the kernel; undefined when they are. */
  get problem(): string | undefined {
    if (!this.opts.cache.synced) return undefined;
    return this.applier.problem;
  }

  /** The model last applied (undefined before the first apply), its last latency and nft refusal. */
  get programming(): {
    compiled: CompiledPolicy | undefined;
    lastProgrammed?: { ms: number; at: number };
    lastFailureAt?: number;
  } {
    return { compiled: this.compiled, lastProgrammed: this.lastProgrammed, lastFailureAt: this.lastFailureAt };
  }

  /** Stops the loop and refuses every waiting pod-start notice; the rules stay in force. */
  stop(): void {
    this.ahead.stop();
    this.loop.stop();
    this.gate.stop();
    this.cuts.close();
  }

  /**
   * Asks for a policy pass soon; `seenAt` is when the API event (or notice) that calls for it was
   * seen, for the programming-latency histogram (none for resyncs and drift checks). An event after
   * POLICY_QUIET_MS without one runs the pass at once; others wait for the debounce.
   */
  request(seenAt?: number): void {
    if (this.loop.isStopped) return;
    if (seenAt !== undefined) this.pendingSince = Math.min(this.pendingSince ?? seenAt, seenAt);
    this.passDue = true;
    // Events of one watch chunk still make one pass: the run starts after the caller's synchronous work.
    const now = this.clock.now();
    const lone = seenAt !== undefined && now - this.lastEventAt >= POLICY_QUIET_MS;
    if (seenAt !== undefined) this.lastEventAt = now;
    if (lone) this.loop.requestNow();
    else this.loop.request();
  }

  /**
   * A pod-start notice waits for its pod's rules: a run at once (no debounce), which binds the
   * notice's addresses to the model last applied when nothing else is due (policy/bind.ts), else
   * compiles everything. Notices that arrive during a run are bound together in the next one.
   */
  requestBind(pod: string, seenAt: number): void {
    if (this.loop.isStopped) return;
    this.pendingSince = Math.min(this.pendingSince ?? seenAt, seenAt);
    this.bindDue.add(pod);
    this.loop.requestNow();
  }

  /** Asks for a look for drift, in the policy loop (never during an apply); it compiles nothing. */
  requestDriftCheck(): void {
    if (this.loop.isStopped) return;
    this.driftDue = true;
    this.loop.request();
  }

  /** Waits for the policy pass in progress or asked for, if any. */
  settle(): Promise<void> {
    return this.loop.settle();
  }

  /** The waiting pods whose pod-start bind is computed ahead now (bind-ahead.ts), by key. */
  get aheadPods(): string[] {
    return this.ahead.pods;
  }

  /** The compiler's input (input.ts), for `strand status` and `strand explain`. */
  compileInput(): CompileInput {
    return this.input.build();
  }

  private async runDue(): Promise<boolean> {
    const ok = await this.runDueOnce();
    // A bind's look for denied flows that waited for the notices behind it: made once none waits.
    if (this.bindDue.size === 0) this.cuts.cutBound(this.compiled);
    return ok;
  }

  private async runDueOnce(): Promise<boolean> {
    if (this.driftDue) {
      this.driftDue = false;
      await this.checkDrift();
    }
    if (!this.passDue && this.bindDue.size === 0) return true;
    const since = this.pendingSince;
    this.pendingSince = undefined;
    if (!this.passDue && this.bindDue.size === 1 && (await this.bindAhead([...this.bindDue][0] as string, since)))
      return true;
    // With a pass due too, the notices are bound first when only other pods changed since the last
    // pass (ahead): the answers then wait for a bind, not for a compile of every change queued.
    const ahead = this.passDue && this.bindDue.size > 0 && this.onlyPodsChanged();
    if (!this.passDue || ahead) {
      const prev = this.compiled;
      const applied = this.applier.current;
      const t0 = performance.now();
      const bound = this.bindModel(ahead);
      if (!bound) this.log.debug('the pod-start notices cannot be bound to the model applied: compiling everything');
      if (bound && prev && applied) {
        let table: DesiredPolicyTable | undefined;
        try {
          const t1 = performance.now();
          table = renderBound(prev, applied, bound.compiled, this.renderOptions());
          this.bindTimes = { bindMs: round1(t1 - t0), renderMs: round1(performance.now() - t1) };
        } catch (err) {
          this.log.error({ err }, `rendering a pod-start bind failed: ${describeError(err)}; compiling everything`);
        }
        // Ahead of a pass, the latency of the events it waits for is the pass's to observe.
        if (table && (await this.applyModel(bound.compiled, ahead ? undefined : since, table, bound.ips))) {
          this.noteBound(bound.ips);
          this.metrics.podStartBinds.inc({ path: 'notice' }, bound.ips.size);
          if (!ahead) return true;
        }
      }
    }
    this.passDue = false;
    if (this.bindDue.size > 0) this.metrics.podStartBinds.inc({ path: 'compile' }, this.bindDue.size);
    this.bindDue.clear();
    if (await this.pass(since)) return true;
    // Retried with the event's time, so the latency histogram counts the wait.
    if (since !== undefined) this.pendingSince = Math.min(this.pendingSince ?? since, since);
    this.passDue = true;
    return false;
  }

  private async checkDrift(): Promise<void> {
    if (!this.applier.current) return;
    let drift: string | undefined;
    try {
      drift = await this.applier.drift();
    } catch (err) {
      this.log.warn({ err: describeError(err) }, `could not look at the policy rules for drift: ${describeError(err)}`);
      return;
    }
    if (!drift) return;
    this.log.warn({ drift }, `policy rules changed behind the agent's back (${drift}): rebuilding them`);
    this.applier.invalidate('drift');
    this.passDue = true;
  }

  /**
   * Whether the events since the last pass can only have been Pod events: the policies of every tier
   * and the namespaces (and the nodes, which ClusterNetworkPolicy `nodes` peers read) the informers
   * hold are those of the last input, object for object. A bind ahead of the pass is then the
   * notices' pods added to that input, as if the notices had come before those events; each bound pod
   * must still be the object the last input had (bindModel), so its own isolation is current.
   */
  private onlyPodsChanged(): boolean {
    const last = this.lastInput;
    const c = this.opts.cache;
    if (!last) return false;
    const same = <T>(x: readonly T[] | undefined, y: readonly T[]) =>
      x !== undefined && x.length === y.length && x.every((v, i) => v === y[i]);
    const cnps = last.clusterNetworkPolicies ?? [];
    return (
      same(last.policies, c.networkPolicies.list()) &&
      same(last.namespaces, c.namespaces.list()) &&
      same(cnps, c.clusterNetworkPolicies.list()) &&
      (cnps.length === 0 || same(last.nodes, c.nodes.list()))
    );
  }

  /** This node's pods of the last input by key (built once per input's pod list). */
  private lastLocalPod(key: string): PolicyPod | undefined {
    const pods = this.lastInput?.pods;
    if (!pods) return undefined;
    let byKey = this.localPodsOf.get(pods);
    if (!byKey) {
      byKey = new Map();
      for (const p of pods)
        if (p.spec.nodeName === this.opts.nodeName) byKey.set(podKey(p.metadata.namespace ?? '', p.metadata.name), p);
      this.localPodsOf.set(pods, byKey);
    }
    return byKey.get(key);
  }

  /**
   * The model last applied with the waiting notices' pods bound to it; undefined when a full pass is
   * needed (nothing applied yet, a failed apply, a pod the bind cannot add alone). `ahead`: Pod events
   * came since the last pass (onlyPodsChanged), so each pod bound must be the last input's object.
   */
  private bindModel(ahead = false): { compiled: CompiledPolicy; ips: Map<string, readonly string[]> } | undefined {
    const keys = [...this.bindDue];
    this.bindDue.clear();
    let model = this.compiled;
    let prepared = this.prepared;
    const bound = new Map<string, readonly string[]>();
    if (!model || !this.applier.current || this.applier.problem || !this.opts.cache.synced) return undefined;
    for (const key of keys) {
      const have = model.pods.find((p) => podKey(p.namespace, p.name) === key);
      // No event since the last pass but Pod events (ahead): its input's facts are current.
      const f = this.input.forPod(key, this.lastInput);
      if (!f) return undefined;
      // Ahead of a pass, a pod changed since the last input (its labels, its node) waits for the pass.
      if (ahead && f.pod !== this.lastLocalPod(key)) return undefined;
      const ips = f.input.extraPodIps?.get(key) ?? [];
      bound.set(key, ips);
      if (have) {
        // Bound already (or the informer's addresses are in): answered by the gate after this run.
        if (ips.every((ip) => have.ips.includes(ip))) continue;
        return undefined;
      }
      const next = bindLocalPod(model, f.input, f.pod, prepared);
      if (!next) return undefined;
      model = next.compiled;
      prepared = next.prepared;
    }
    // Kept only if applied: the next full pass prepares again anyway.
    this.prepared = prepared;
    return { compiled: model, ips: bound };
  }

  /**
   * The notice's bind computed ahead (bind-ahead.ts): its transaction sent and the notice answered,
   * then the bookkeeping (the model and table with the real addresses, which must give the same
   * transaction). False when there is none for the pod or it does not fit (the bind runs as usual),
   * or when the bookkeeping disagreed (the pass that follows rebuilds the rules).
   */
  private async bindAhead(key: string, since: number | undefined): Promise<boolean> {
    const taken = this.ahead.take(key, this.opts.notices.get(key)?.ips);
    if (!taken) return false;
    this.bindDue.delete(key);
    let sent: { lines: number; bytes: number; ms: number };
    try {
      const { template } = taken.ahead;
      // The answer goes out once the kernel holds the bind, before any bookkeeping (of the pod object
      // and input the bind was computed for: an event meanwhile is the next run's).
      sent = await this.applier.applyAhead(taken.diff, template && { ...template, real: taken.real }, () => {
        this.observeProgrammed(since);
        this.gate.bound(key, taken.ips);
      });
    } catch (err) {
      // The kernel is as it was (all or nothing): the bind computed at the notice follows.
      this.log.debug({ pod: key, err: describeError(err) }, 'a bind computed ahead failed; binding at the notice');
      this.bindDue.add(key);
      return false;
    }
    this.metrics.podStartBinds.inc({ path: 'ahead' });
    this.log.debug(
      { kind: 'diff', ahead: true, commands: sent.lines, bytes: sent.bytes, ms: round1(sent.ms) },
      'policy rules applied',
    );
    const settled = settleAhead(taken, this.renderOptions());
    if (!settled) {
      // A bug of the bind ahead: what the kernel holds is not what the model says; rebuilt at once.
      this.log.error(
        { pod: key },
        'a pod-start bind computed ahead differs from the bind at the notice: rebuilding the policy rules',
      );
      this.metrics.podStartBinds.inc({ path: 'mismatch' });
      this.applier.invalidate('retry');
      this.passDue = true;
      return false;
    }
    const { bound, table } = settled;
    const ips = new Map([[key, taken.ips]]);
    this.applier.record(table);
    this.compiled = bound.compiled;
    this.prepared = bound.prepared;
    this.noteBound(ips);
    this.gate.applied(bound.compiled);
    if (this.opts.cutDeniedFlows) {
      this.cuts.defer(ips);
      if (this.bindDue.size === 0) this.cuts.cutBound(bound.compiled);
    }
    this.ahead.schedule();
    return true;
  }

  /**
   * The model applied is now the compile of the last input with these notices' addresses too (the
   * bind's promise; no event came since that input, or no bind would have run): the input it stands
   * for says so, and kubelet's status update that reports those addresses compiles nothing.
   */
  private noteBound(ips: ReadonlyMap<string, readonly string[]>): void {
    for (const list of ips.values()) this.ahead.noteBound(list);
    if (!this.lastInput) return;
    const extraPodIps = new Map(this.lastInput.extraPodIps ?? []);
    for (const [key, list] of ips) extraPodIps.set(key, list);
    this.lastInput = { ...this.lastInput, extraPodIps };
  }

  /** Compiles and applies; false when it should be tried again. */
  private async pass(since: number | undefined): Promise<boolean> {
    const c = this.opts.cache;
    if (!c.synced) {
      await this.prepareAhead();
      return true;
    }
    if (!this.applier.current && !this.compiled) {
      const { nodeName, nft, notices } = this.opts;
      await recoverAddresses({ nodeName, cache: c, nft, notices, log: this.log });
    }
    let compiled: CompiledPolicy;
    let table: DesiredPolicyTable;
    try {
      const input = this.input.build();
      const periodic = this.clock.now() - this.lastFullCompile >= FULL_COMPILE_MS;
      if (
        !periodic &&
        this.compiled &&
        this.applier.current &&
        this.lastInput &&
        samePolicyInput(this.lastInput, input)
      ) {
        // Nothing the compiler reads changed since it last ran: the rules in the kernel are these.
        this.lastInput = input;
        this.observeProgrammed(since);
        this.gate.applied(this.compiled);
        // The binds ahead were computed from the input this one replaces.
        this.ahead.schedule();
        return true;
      }
      await this.breathe('input');
      compiled = await this.compiler.compileAsync(input, () => this.breathe('slice'), PASS_SLICE_MS);
      if (periodic && this.lastFullCompile > 0) compiled = await this.checkCompile(input, compiled);
      await this.breathe('compiled');
      table = await this.renderer.renderAsync(
        compiled,
        this.renderOptions(),
        () => this.breathe('slice'),
        PASS_SLICE_MS,
      );
      await this.breathe('rendered');
      // This node's pods only (the compiler knows where they are in the list), not the cluster's.
      const waiting = waitingLocalPods({ ...input, pods: this.compiler.localInputPods(input) }, compiled);
      this.ahead.setWaiting(waiting.map((p) => podKey(p.metadata.namespace ?? '', p.metadata.name)));
      this.prepared =
        waiting.length === 0 ? NOTHING_PREPARED : this.preparer.prepare(input, compiled, waiting, this.compiler.view);
      this.lastInput = input;
      if (periodic) this.lastFullCompile = this.clock.now();
    } catch (err) {
      // The compiler does not throw on what the API serves; should it anyway, the rules stay as they are.
      this.log.error(
        { err },
        `compiling the NetworkPolicies failed: ${describeError(err)}; the rules stay as they are`,
      );
      return false;
    }
    this.logPolicyErrors(compiled);
    return this.applyModel(compiled, since, table);
  }

  /**
   * Before every informer has listed (nothing is applied then), the compile's work that needs no pod:
   * the NetworkPolicies are listed seconds before the pods at 50,000 pods (issue 18), and parsing
   * 10,000 of them took ~0.45 s between the pods' list and the first rules. In slices, between the
   * list's chunks; the informers' own objects, so the first compile finds them in its memos.
   */
  private async prepareAhead(): Promise<void> {
    const c = this.opts.cache;
    const input = {
      policies: c.networkPolicies.list(),
      namespaces: c.namespaces.list(),
      clusterNetworkPolicies: c.clusterNetworkPolicies.list(),
    };
    const t0 = performance.now();
    try {
      await this.compiler.prepareAsync(input, () => this.breathe('slice'));
    } catch (err) {
      // The compile does the same again (and reports what it finds): nothing is lost here.
      this.log.warn({ err }, `preparing the NetworkPolicies ahead failed: ${describeError(err)}`);
      return;
    }
    this.log.debug(
      { policies: input.policies.length, ms: round1(performance.now() - t0) },
      'NetworkPolicies prepared ahead of the pods',
    );
  }

  /** Renders (unless given) and applies `compiled`; false when it should be tried again. `bound`: the
   * addresses of a pod-start bind's pods, when `compiled` is one (the flow cutter looks only at them). */
  private async applyModel(
    compiled: CompiledPolicy,
    since: number | undefined,
    rendered?: DesiredPolicyTable,
    bound?: ReadonlyMap<string, readonly string[]>,
  ): Promise<boolean> {
    let table: DesiredPolicyTable;
    try {
      table = rendered ?? renderPolicy(compiled, this.renderOptions());
    } catch (err) {
      this.log.error(
        { err },
        `rendering the NetworkPolicies failed: ${describeError(err)}; the rules stay as they are`,
      );
      return false;
    }
    let changedRules = true;
    const bindTimes = this.bindTimes;
    this.bindTimes = undefined;
    try {
      // Drift is looked for on its own timer (checkDrift), not on the path of a change.
      const r = await this.applier.apply(table, { checkDrift: false });
      changedRules = r.kind !== 'none';
      if (r.kind !== 'none') {
        // A bind's debug line has its preparation too (the timeline of a pod start's answer).
        this.log.debug(
          { kind: r.kind, reason: r.reason, commands: r.lines, bytes: r.bytes, ms: round1(r.ms), ...bindTimes },
          'policy rules applied',
        );
      }
      if (r.kind === 'rebuild') this.opts.onRebuilt?.();
    } catch (err) {
      if (!(err instanceof PolicyApplyError))
        this.log.error({ err }, `applying the policy rules failed: ${describeError(err)}`);
      return false;
    }
    this.observeProgrammed(since);
    const before = this.compiled;
    this.compiled = compiled;
    const answered = this.gate.applied(compiled);
    this.ahead.schedule();
    // The kernel's rules did not change: no flow is judged differently, nothing to look for.
    if (this.opts.cutDeniedFlows && (changedRules || !before)) {
      // The answers first: they are due now that the rules are in the kernel, and the cut (a conntrack
      // dump) would hold them for its length. It still ends before this run does, so before the next
      // change is applied; the containers of the answered pods have not started yet.
      if (answered > 0) await nextTurn();
      if (bound && before) {
        // Notices that came meanwhile (the yield above reads them) bind next, at once: their look and
        // this one are then one walk of the table (runDue makes it once no notice waits).
        this.cuts.defer(bound);
        if (this.bindDue.size === 0) this.cuts.cutBound(compiled);
      } else {
        this.cuts.cutChange(before, compiled);
      }
    }
    return true;
  }

  /**
   * The periodic check (FULL_COMPILE_MS): the pure compiler's result against the incremental one's.
   * A difference is a bug of the incremental compiler: said as an error with what differed, and the
   * pure result is applied (the incremental compiler starts over from it).
   */
  private async checkCompile(input: CompileInput, incremental: CompiledPolicy): Promise<CompiledPolicy> {
    await this.breathe('compiled');
    const started = performance.now();
    const pure = compilePolicy(input);
    const ms = Math.round((performance.now() - started) * 10) / 10;
    const differences = modelDifferences(pure, incremental);
    this.log.info(
      { ms, pods: input.pods.length, policies: input.policies.length, differences: differences.length },
      'periodic full compile of the policy rules, compared with the incremental one',
    );
    if (differences.length === 0) return incremental;
    this.log.error(
      { differences: differences.slice(0, 20), count: differences.length },
      `the incremental policy compile differs from the full one (${differences.slice(0, 3).join('; ')}): applying the full one`,
    );
    this.compiler = new IncrementalCompiler();
    this.renderer = new TableRenderer();
    return pure;
  }

  private breathe(stage: 'input' | 'compiled' | 'rendered' | 'slice'): Promise<void> {
    return this.opts.yieldToLoop ? this.opts.yieldToLoop(stage) : nextTurn();
  }

  private observeProgrammed(since: number | undefined): void {
    if (since === undefined) return;
    const ms = this.clock.now() - since;
    this.metrics.programming.observe(ms / 1000);
    this.lastProgrammed = { ms, at: this.clock.now() };
  }

  private renderOptions(): RenderOptions {
    return this.opts.logDenied ? { logDenied: { perSecond: DENY_LOG_PER_SECOND } } : {};
  }

  private logPolicyErrors(compiled: CompiledPolicy): void {
    const text = JSON.stringify(compiled.errors);
    if (text === this.lastErrors) return;
    this.lastErrors = text;
    // ClusterNetworkPolicy errors (cluster-scoped: no namespace) are the cluster-policy report step's.
    for (const e of compiled.errors.filter((x) => x.namespace !== '')) {
      const policy = `${e.namespace}/${e.name}`;
      this.log.warn(
        { policy, path: e.path, reason: e.message },
        `NetworkPolicy ${policy}: ${e.path}: ${e.message}; the policy isolates its pods and this part allows nothing`,
      );
    }
    for (const w of compiled.warnings) this.log.warn({ warning: w }, w);
  }
}

const round1 = (ms: number): number => Math.round(ms * 10) / 10;
