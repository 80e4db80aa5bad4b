// The agent's NetworkPolicy step (issue 10): from the informers' caches to this node's rules in
// `inet strand`, on every NetworkPolicy, Pod and Namespace event and on every pass, and the answer to
// the plugin's pod-start notice once that pod's rules are in.
//
//   caches + notices ──compilePolicy──▶ CompiledPolicy ──renderPolicy──▶ DesiredPolicyTable
//        ──PolicyApplier (diff, or one-transaction rebuild)──▶ kernel
//        ──flows the change denies──▶ conntrack entries deleted
//
// Choices (README "NetworkPolicy", "Enforcement"):
//  - The step has its own short debounce (POLICY_DEBOUNCE_MS) and runs apart from the node pass, so
//    a policy change is not held up by node set-up or the 100 ms debounce of the main loop.
//  - Nothing is applied before every informer has listed: rules compiled from half-filled caches
//    would open isolated pods. Until then the table stays as the last agent left it.
//  - A pod known only from the plugin's notice (the Pod informer has not shown it yet) is fetched
//    with a GET (the ClusterRole grants get on pods), so its labels decide its isolation at once; the
//    notice's addresses are merged with the API's (kubelet reports them only after ADD).
//  - The pod-start notice is answered ok only once an apply that includes the pod with its addresses
//    has succeeded, within the bound the plugin waits for; else "not ready" (the ADD fails with
//    try-again-later and the runtime retries): a pod a policy isolates is never started open.
import type { Registry } from 'prom-client';
import type { Logger } from '../log.ts';
import { Conntrack, describeTuple, IPPROTO, type ConntrackEntry } from '../kernel/conntrack.ts';
import type { Nft } from '../nft/transaction.ts';
import type { TableState } from '../nft/objects.ts';
import { PolicyApplier, PolicyApplyError, type PolicyLayout } from '../policy/applier.ts';
import {
  compilePolicy,
  diffPolicy,
  evaluatePolicy,
  fullBuildPolicy,
  podChainName,
  policyDrift,
  POLICY_PREFIX,
  renderPolicy,
  verdictMapName,
  type CompiledPolicy,
  type CompileInput,
  type DesiredPolicyTable,
  type LocalPod,
  type Protocol,
} from '../policy/model.ts';
import { ApiRequestError, describeError, type KubeClient } from '../k8s/client.ts';
import type { ClusterCache } from '../k8s/cluster-cache.ts';
import { slimPod, type PodInfo } from '../k8s/objects.ts';
import { createPolicyMetrics, type PolicyMetrics } from './policy-metrics.ts';
import { readPolicyCounters } from './policy-counters.ts';

/** Policy events arriving within this window make one policy pass. */
export const POLICY_DEBOUNCE_MS = 5;
/** The marker chain of the applier (outside the compiler's prefix, which it replaces wholesale). */
export const POLICY_MARKER_CHAIN = 'agent-policy-generation';
/** The kernel's counters are read at most this often; scrapes in between get the last reading (one
 * read lists the whole table: 0.5 s of nft with 10,000 rules here). */
export const COUNTER_READ_MS = 30_000;
/** Drift (a table flushed or deleted by hand) is looked for this often (the agent's timer), apart
 * from the passes that apply changes: the look costs 60–90 ms of nft with 10,000 rules, and compiles
 * nothing. */
export const DRIFT_CHECK_MS = 10_000;
/** A pod fetched by GET is kept this long for the informer to show it. */
const FETCHED_TTL_MS = 60_000;

export interface PolicyEnforcerOptions {
  nodeName: string;
  nft: Nft;
  cache: ClusterCache;
  kube: KubeClient;
  log: Logger;
  registry: Registry;
  /** This node's addresses (InternalIP, underlay, the bridge's gateways): always allowed to its pods (R11). */
  nodeAddresses: () => string[];
  /** Delete the conntrack entries of flows a change denies (--policy-conntrack). */
  cutDeniedFlows: boolean;
  /** Log denied new connections, rate-limited (--policy-log-denied): nft `log` before each deny. */
  logDenied: boolean;
  /** Called after each rebuild (the first one follows the informers' first lists): the agent gives
   * the garbage of compiling everything back to the system. */
  onRebuilt?: () => void;
}

interface PodNotice {
  namespace: string;
  name: string;
  uid?: string;
  ips: string[];
  at: number;
}

interface PodWaiter {
  key: string;
  ips: string[];
  resolve: (ok: boolean) => void;
}

/** The compiler's rendered table as the applier reads it. */
export const POLICY_LAYOUT: PolicyLayout<DesiredPolicyTable> = {
  prefix: POLICY_PREFIX,
  diff: (from, to) => diffPolicy(from, to),
  fullBuild: (to, remaining) => fullBuildPolicy(to, remaining),
  inventory: (t) => ({ chains: [...t.chains.values()].map((c) => ({ chain: c.chain, rules: c.rules.length })), sets: [...t.sets.values()] }),
  compare: (applied, actual) => policyDrift(applied, actual),
};

/** --policy-log-denied: at most this many log lines a second per pod and direction (bursts of twice that). */
export const DENY_LOG_PER_SECOND = 10;

function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export class PolicyEnforcer {
  readonly metrics: PolicyMetrics;
  private readonly opts: PolicyEnforcerOptions;
  private readonly log: Logger;
  private readonly applier: PolicyApplier<DesiredPolicyTable>;
  private compiled: CompiledPolicy | undefined;
  private readonly notices = new Map<string, PodNotice>();
  private readonly fetched = new Map<string, { pod: PodInfo; at: number }>();
  private readonly fetching = new Set<string>();
  private readonly waiters = new Set<PodWaiter>();
  /** The first event not yet followed by an applied pass. */
  private pendingSince: number | undefined;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private lastErrors = '';
  private counterRead: { at: number; promise: Promise<void> } | undefined;
  private driftDue = false;
  /** For `strand status` (inspect.ts): the last event-to-rules latency and the last nft refusal. */
  private lastProgrammed: { ms: number; at: number } | undefined;
  private lastFailureAt: number | undefined;

  constructor(opts: PolicyEnforcerOptions) {
    this.opts = opts;
    this.log = opts.log.child({ component: 'policy' });
    this.metrics = createPolicyMetrics(opts.registry, () => this.collectCounters());
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
          this.lastFailureAt = Date.now();
          m.nftFailures.inc({ kind });
        },
      },
    });
  }

  /** Why this node's policy rules are not (known to be) in the kernel; undefined when they are. */
  get problem(): string | undefined {
    if (!this.opts.cache.synced) return undefined;
    return this.applier.problem;
  }

  /** The model last applied (undefined before the first apply), its last latency and nft refusal. */
  get programming(): { compiled: CompiledPolicy | undefined; lastProgrammed?: { ms: number; at: number }; lastFailureAt?: number } {
    return { compiled: this.compiled, lastProgrammed: this.lastProgrammed, lastFailureAt: this.lastFailureAt };
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const w of this.waiters) w.resolve(false);
    this.waiters.clear();
  }

  /**
   * Asks for a policy pass soon; `seenAt` is when the API event (or notice) that calls for it was
   * seen, for the programming-latency histogram (none for resyncs and drift checks).
   */
  request(seenAt?: number): void {
    if (this.stopped) return;
    if (seenAt !== undefined) this.pendingSince = Math.min(this.pendingSince ?? seenAt, seenAt);
    this.dirty = true;
    this.schedule();
  }

  /** Asks for a look for drift, in the policy loop (never during an apply); it compiles nothing. */
  requestDriftCheck(): void {
    if (this.stopped) return;
    this.driftDue = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.running) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running ??= this.runPasses().finally(() => {
        this.running = undefined;
        if (this.dirty || this.driftDue) this.schedule();
      });
    }, POLICY_DEBOUNCE_MS);
  }

  /** Waits for the policy pass in progress or asked for, if any. */
  async settle(): Promise<void> {
    while (this.running || this.timer) await (this.running ?? new Promise((r) => setTimeout(r, POLICY_DEBOUNCE_MS)));
  }

  private async runPasses(): Promise<void> {
    while ((this.dirty || this.driftDue) && !this.stopped) {
      if (this.driftDue) {
        this.driftDue = false;
        await this.checkDrift();
      }
      if (this.dirty) {
        this.dirty = false;
        await this.pass();
      }
    }
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
    this.dirty = true;
  }

  /**
   * The plugin's pod-start notice: resolves true once this pod's rules (with the notice's addresses)
   * are applied, false when that did not happen within timeoutMs.
   */
  async podStarted(notice: { namespace?: string; name?: string; uid?: string; ips: string[] }, timeoutMs: number): Promise<{ ok: boolean; message?: string }> {
    if (!notice.namespace || !notice.name) return { ok: true };
    const key = podKey(notice.namespace, notice.name);
    const started = Date.now();
    this.notices.set(key, { namespace: notice.namespace, name: notice.name, ...(notice.uid ? { uid: notice.uid } : {}), ips: notice.ips, at: started });
    const deadline = started + timeoutMs;
    // The pod's labels: from the informer, else from the API.
    if (!this.podFromApi(key, notice.uid)) {
      const found = await this.fetchPod(notice.namespace, notice.name, notice.uid, deadline);
      if (found === 'absent') {
        // The API has no such pod: no policy can select it. (A runtime's ADD outside Kubernetes.)
        this.log.info({ pod: key }, 'pod-start notice for a pod the API does not know: no policy applies to it');
        this.notices.delete(key);
        return { ok: true };
      }
    }
    const ok = await new Promise<boolean>((resolve) => {
      const waiter: PodWaiter = { key, ips: notice.ips, resolve };
      const timer = setTimeout(() => finish(false), Math.max(0, deadline - Date.now()));
      const finish = (v: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(v);
      };
      waiter.resolve = finish;
      this.waiters.add(waiter);
      this.request(started);
    });
    if (ok) return { ok: true };
    this.metrics.podStartTimeouts.inc();
    const why = this.problem ?? (this.opts.cache.synced ? 'the rules were not applied in time' : `not synced with the API server yet: ${this.opts.cache.unsynced.join(', ')}`);
    this.log.warn({ pod: key, ips: notice.ips, waitedMs: Date.now() - started }, `the policy rules of pod ${key} were not in place within ${timeoutMs} ms: ${why}`);
    return { ok: false, message: `the NetworkPolicy rules of pod ${key} are not in place yet (${why})` };
  }

  /**
   * The pod of the notice as the informer (or an earlier GET) shows it. With the notice's uid, an
   * object of another uid is another incarnation of the name (a StatefulSet's pod recreated): the
   * informer's may be stale, so it does not count, and the API is asked.
   */
  private podFromApi(key: string, uid?: string): PodInfo | undefined {
    const [namespace, name] = key.split('/') as [string, string];
    const pod = this.opts.cache.pods.get(name, namespace);
    if (pod && (!uid || !pod.metadata.uid || pod.metadata.uid === uid)) return pod;
    return this.fetched.get(key)?.pod;
  }

  /** GETs a pod the informer does not show, retrying until `deadline`; 'absent' on a 404. */
  private async fetchPod(namespace: string, name: string, uid: string | undefined, deadline: number): Promise<'found' | 'absent' | 'failed'> {
    const key = podKey(namespace, name);
    if (this.fetching.has(key)) return 'failed';
    this.fetching.add(key);
    try {
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) return 'failed';
        try {
          const raw = await this.opts.kube.request('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`, { timeoutMs: left });
          const slim = slimPod(raw);
          if (!slim.ok) {
            this.log.warn({ pod: key, reason: slim.reason }, 'the API served a malformed pod');
            return 'failed';
          }
          // Another uid than the notice's: the API's current pod of that name, whose labels are the best
          // there is (never "absent": that would start the pod without its rules).
          if (uid && slim.value.metadata.uid && slim.value.metadata.uid !== uid) this.log.info({ pod: key, noticeUid: uid, apiUid: slim.value.metadata.uid }, 'the API shows another uid for the pod of a pod-start notice; using its labels');
          this.fetched.set(key, { pod: slim.value, at: Date.now() });
          return 'found';
        } catch (err) {
          if (err instanceof ApiRequestError && err.statusCode === 404) {
            // The informer may have it by now (a watch event overtook the GET).
            return this.opts.cache.pods.get(name, namespace) ? 'found' : 'absent';
          }
          this.log.debug({ pod: key, err: describeError(err) }, 'could not fetch the pod; retrying');
          if (this.podFromApi(key, uid)) return 'found';
          await new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, deadline - Date.now()))));
        }
      }
    } finally {
      this.fetching.delete(key);
    }
  }

  /** The compiler's input from the caches, the notices and the pods fetched. */
  compileInput(): CompileInput {
    const c = this.opts.cache;
    const now = Date.now();
    const pods: PodInfo[] = [...c.pods.list()];
    for (const [key, f] of this.fetched) {
      const [namespace, name] = key.split('/') as [string, string];
      if (c.pods.get(name, namespace) || now - f.at > FETCHED_TTL_MS) {
        this.fetched.delete(key);
        continue;
      }
      pods.push({ ...f.pod, spec: { ...f.pod.spec, nodeName: f.pod.spec.nodeName ?? this.opts.nodeName } });
    }
    const extraPodIps = new Map<string, readonly string[]>();
    for (const [key, n] of this.notices) {
      if (now - n.at > FETCHED_TTL_MS) {
        const [namespace, name] = key.split('/') as [string, string];
        const pod = c.pods.get(name, namespace);
        // The API reports the addresses by now (or the pod is gone): the notice has done its job.
        if (!pod || pod.status.podIPs.length > 0) {
          this.notices.delete(key);
          continue;
        }
      }
      extraPodIps.set(key, n.ips);
    }
    return {
      nodeName: this.opts.nodeName,
      nodeAddresses: this.opts.nodeAddresses(),
      namespaces: c.namespaces.list(),
      pods,
      policies: c.networkPolicies.list(),
      extraPodIps,
    };
  }

  /**
   * Before the first apply of this agent: the addresses of local pods the API shows without any yet
   * (kubelet reports them a moment after ADD) and no notice names (it went to the previous agent),
   * read back from the verdict maps the previous agent left (an isolated pod's address jumps to its
   * chain, named by the pod). Without them the adoption would drop those pods' rules until kubelet
   * reports their addresses: an agent restart must not open an isolated pod.
   */
  private async recoverAddresses(): Promise<void> {
    const c = this.opts.cache;
    const waiting = c.pods.list().filter((p) => p.spec.nodeName === this.opts.nodeName && !p.spec.hostNetwork && p.status.podIPs.length === 0 && !this.notices.has(podKey(p.metadata.namespace ?? '', p.metadata.name)));
    if (waiting.length === 0) return;
    const maps = (['ingress', 'egress'] as const).flatMap((d) => [verdictMapName(d, 4), verdictMapName(d, 6)]);
    let listed: TableState;
    try {
      listed = await this.opts.nft.list({ sets: maps });
    } catch (err) {
      this.log.warn({ err: describeError(err) }, `could not read the policy verdict maps the previous agent left: ${describeError(err)}`);
      return;
    }
    const byChain = new Map<string, string[]>();
    for (const name of maps) {
      for (const e of listed.maps.get(name)?.elements ?? []) {
        const chain = /^(?:jump|goto) (\S+)$/.exec(e.value?.[0] ?? '')?.[1];
        const ip = e.key[0];
        if (!chain || !ip) continue;
        byChain.set(chain, [...(byChain.get(chain) ?? []), ip]);
      }
    }
    const now = Date.now();
    for (const p of waiting) {
      const namespace = p.metadata.namespace ?? '';
      const ips = [...new Set((['ingress', 'egress'] as const).flatMap((d) => byChain.get(podChainName({ namespace, name: p.metadata.name }, d)) ?? []))];
      if (ips.length === 0) continue;
      this.notices.set(podKey(namespace, p.metadata.name), { namespace, name: p.metadata.name, ...(p.metadata.uid ? { uid: p.metadata.uid } : {}), ips, at: now });
      this.log.info({ pod: podKey(namespace, p.metadata.name), ips }, 'addresses of a pod the API shows without any yet, kept from the rules the previous agent left');
    }
  }

  private async pass(): Promise<void> {
    const c = this.opts.cache;
    if (!c.synced) return;
    if (!this.applier.current && !this.compiled) await this.recoverAddresses();
    const since = this.pendingSince;
    this.pendingSince = undefined;
    let compiled: CompiledPolicy;
    let table: DesiredPolicyTable;
    try {
      compiled = compilePolicy(this.compileInput());
      table = renderPolicy(compiled, this.opts.logDenied ? { logDenied: { perSecond: DENY_LOG_PER_SECOND } } : {});
    } catch (err) {
      // The compiler does not throw on what the API serves; should it anyway, the rules stay as they are.
      this.log.error({ err }, `compiling the NetworkPolicies failed: ${describeError(err)}; the rules stay as they are`);
      this.retrySoon(since);
      return;
    }
    this.logPolicyErrors(compiled);
    try {
      // Drift is looked for on its own timer (checkDrift), not on the path of a change.
      const r = await this.applier.apply(table, { checkDrift: false });
      if (r.kind !== 'none') this.log.debug({ kind: r.kind, reason: r.reason, commands: r.lines, bytes: r.bytes, ms: Math.round(r.ms * 10) / 10 }, 'policy rules applied');
      if (r.kind === 'rebuild') this.opts.onRebuilt?.();
    } catch (err) {
      if (!(err instanceof PolicyApplyError)) this.log.error({ err }, `applying the policy rules failed: ${describeError(err)}`);
      this.retrySoon(since);
      return;
    }
    if (since !== undefined) {
      const ms = Date.now() - since;
      this.metrics.programming.observe(ms / 1000);
      this.lastProgrammed = { ms, at: Date.now() };
    }
    const before = this.compiled;
    this.compiled = compiled;
    this.wakeWaiters(compiled);
    // At start (nothing compiled before), every local pod's flows are looked at: a policy may have
    // changed while no agent ran.
    if (this.opts.cutDeniedFlows) this.cutDeniedFlows(before, compiled);
  }

  private retrySoon(since: number | undefined): void {
    if (this.stopped) return;
    setTimeout(() => this.request(since), 1_000).unref();
  }

  private logPolicyErrors(compiled: CompiledPolicy): void {
    const text = JSON.stringify(compiled.errors);
    if (text === this.lastErrors) return;
    this.lastErrors = text;
    for (const e of compiled.errors) {
      this.log.warn({ policy: `${e.namespace}/${e.name}`, path: e.path, reason: e.message }, `NetworkPolicy ${e.namespace}/${e.name}: ${e.path}: ${e.message}; the policy isolates its pods and this part allows nothing`);
    }
    for (const w of compiled.warnings) this.log.warn({ warning: w }, w);
  }

  private wakeWaiters(compiled: CompiledPolicy): void {
    if (this.waiters.size === 0) return;
    const byKey = new Map(compiled.pods.map((p) => [podKey(p.namespace, p.name), p]));
    for (const w of [...this.waiters]) {
      const pod = byKey.get(w.key);
      if (pod && w.ips.every((ip) => pod.ips.includes(ip))) w.resolve(true);
    }
  }

  // ---- existing connections ----------------------------------------------------------------------

  /**
   * Deletes the conntrack entries of flows that the new policy denies, for the local pods whose
   * policy changed; flows it still allows are left alone. Orig is the connection's first packet; its
   * real destination (after a Service's DNAT) is the reply's source (R9).
   */
  private cutDeniedFlows(before: CompiledPolicy | undefined, after: CompiledPolicy): void {
    const changed = before ? changedPodAddresses(before, after) : new Set(after.pods.flatMap((p) => p.ips));
    if (changed.size === 0) return;
    const started = performance.now();
    let ct: Conntrack | undefined;
    let deleted = 0;
    let examined = 0;
    try {
      ct = Conntrack.open();
      for (const family of [4, 6] as const) {
        for (const e of ct.list(family)) {
          const protocol = protocolName(e.orig.proto);
          if (!protocol || e.reply.sport === undefined) continue;
          const dst = e.reply.src;
          if (!changed.has(e.orig.src) && !changed.has(dst)) continue;
          examined++;
          const v = evaluatePolicy(after, { src: e.orig.src, dst, protocol, dport: e.reply.sport });
          if (v.allowed) continue;
          if (this.deleteEntry(ct, e)) deleted++;
        }
      }
    } catch (err) {
      this.metrics.conntrackErrors.inc();
      this.log.warn({ err: describeError(err) }, `could not cut the flows a policy change denies: ${describeError(err)}`);
    } finally {
      ct?.close();
    }
    if (deleted > 0) this.metrics.conntrackDeleted.inc(deleted);
    if (examined > 0) this.log.info({ examined, deleted, ms: Math.round((performance.now() - started) * 10) / 10 }, 'conntrack entries of flows the policy change denies deleted');
  }

  private deleteEntry(ct: Conntrack, e: ConntrackEntry): boolean {
    try {
      const gone = ct.delete(e);
      this.log.debug({ flow: describeTuple(e.orig) }, 'deleted the conntrack entry of a denied flow');
      return gone;
    } catch (err) {
      this.metrics.conntrackErrors.inc();
      this.log.warn({ flow: describeTuple(e.orig), err: describeError(err) }, 'could not delete a conntrack entry');
      return false;
    }
  }

  // ---- counters ----------------------------------------------------------------------------------

  /** Reads the rules' counters into the per-pod and per-policy metrics (at most every COUNTER_READ_MS). */
  private collectCounters(): Promise<void> {
    const now = Date.now();
    if (this.counterRead && now - this.counterRead.at < COUNTER_READ_MS) return this.counterRead.promise;
    const promise = this.readCounters().catch((err: unknown) => this.log.debug({ err: describeError(err) }, 'could not read the policy counters'));
    this.counterRead = { at: now, promise };
    return promise;
  }

  private async readCounters(): Promise<void> {
    const table = this.applier.current;
    if (!table) return;
    const state: TableState = await this.opts.nft.list();
    const { pods, policies } = readPolicyCounters(state, table);
    const m = this.metrics;
    m.podPackets.reset();
    m.policyPackets.reset();
    for (const p of pods) m.podPackets.inc({ namespace: p.namespace, pod: p.name, direction: p.direction, verdict: p.verdict }, p.packets);
    for (const p of policies) m.policyPackets.inc({ namespace: p.namespace, policy: p.name, direction: p.direction }, p.packets);
  }
}

function protocolName(proto: number): Protocol | undefined {
  return proto === IPPROTO.TCP ? 'TCP' : proto === IPPROTO.UDP ? 'UDP' : proto === IPPROTO.SCTP ? 'SCTP' : undefined;
}

/**
 * The addresses of local pods whose policy may judge a flow differently now: their own compiled
 * directions changed, or a peer set or named-port set their rules name changed its members.
 */
export function changedPodAddresses(before: CompiledPolicy, after: CompiledPolicy): Set<string> {
  const out = new Set<string>();
  const old = new Map(before.pods.map((p) => [podKey(p.namespace, p.name), p]));
  const memberText = (c: CompiledPolicy, kind: 'peers' | 'namedPorts', id: string) => JSON.stringify(kind === 'peers' ? c.peers.get(id) : c.namedPorts.get(id));
  const refs = (p: LocalPod) => {
    const ids: { kind: 'peers' | 'namedPorts'; id: string }[] = [];
    for (const d of [p.ingress, p.egress]) {
      for (const r of d?.rules ?? []) {
        if (r.peers !== 'all') for (const id of r.peers) ids.push({ kind: 'peers', id });
        for (const id of r.namedPorts) ids.push({ kind: 'namedPorts', id });
      }
    }
    return ids;
  };
  for (const p of after.pods) {
    const prev = old.get(podKey(p.namespace, p.name));
    const differs =
      !prev ||
      JSON.stringify([prev.ingress, prev.egress]) !== JSON.stringify([p.ingress, p.egress]) ||
      refs(p).some(({ kind, id }) => memberText(before, kind, id) !== memberText(after, kind, id));
    if (differs) for (const ip of p.ips) out.add(ip);
  }
  return out;
}
