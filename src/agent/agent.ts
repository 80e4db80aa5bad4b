// Over 400 lines: the wiring of every step and server in one place, so start and stop read top to bottom.
// The node agent: wiring plus steps (kindnet's shape). This file builds the pieces and starts them;
// each job is a step (steps/) run in order by one loop (loop.ts: one debounce, one retry policy) on
// informer events and periodically, so a missed event never matters. A pass runs the steps an event
// made due (each says what it reads: steps/step.ts), in order, level based:
//   node-setup → node-publication → cluster-network → masquerade → local-pods → ipam-metrics → policy
//   → cluster-policy-report
// NetworkPolicy enforcement (policy/enforcer.ts) runs its own instance of the loop with a shorter
// debounce; the pod-start notices (pod-notices.ts) have one store that the local-pods step, the policy
// input and the pod-start gate read. The nft client, the netlink sockets and the clock are injected.
//
// What the agent never does: tear down the data plane. On SIGTERM it answers every waiting pod-start
// notice (refused: the plugin fails the ADD with "try again later"), stops watching and serving, and
// leaves the bridge, the routes, the rules, the node state and the conflist as they are.
import type { KubeConfig } from '@kubernetes/client-node';
import { NetlinkSocket } from '../kernel/index.ts';
import type { Logger } from '../log.ts';
import { createNetlinkTransport } from '../nft/netlink/transport.ts';
import type { Nft } from '../nft/transport.ts';
import { strandVersion } from '../version.ts';
import { AgentAnswers } from './answers.ts';
import { systemClock, type Clock, type Timer } from './clock.ts';
import { agentSocketPath, type PodStartAnswer, type PodStartNotice } from '../contracts/agent-socket.ts';
import { ClusterNetwork } from './cluster-network.ts';
import type { AgentConfig } from './config.ts';
import { startHealthServer, type HealthServer } from './health.ts';
import { ApiConnectionTracker, type InspectSnapshot } from './inspect.ts';
import { ClusterCache } from '../k8s/cluster-cache.ts';
import { describeError, KubeClient } from '../k8s/client.ts';
import { type BackoffOptions, type ResourceName } from '../k8s/informer.ts';
import type { NodeInfo, PodInfo } from '../k8s/objects.ts';
import { Loop } from './loop.ts';
import { createMetrics, type AgentMetrics } from './metrics.ts';
import { nodeAddresses } from './node-addresses.ts';
import { PodHandshakeServer } from './pod-handshake.ts';
import { PodStartNotices } from './pod-notices.ts';
import { DRIFT_CHECK_MS, FULL_COMPILE_MS, PolicyEnforcer } from './policy/enforcer.ts';
import { ClusterNetworkStep } from './steps/cluster-network.ts';
import { LocalPodsStep, type KnownPod } from './steps/local-pods.ts';
import { MasqueradeStep } from './steps/masquerade.ts';
import { memoryMiB, MemoryKeeper, releaseMemory } from './steps/memory.ts';
import { IpamMetricsStep } from './steps/metrics.ts';
import { NodePublicationStep } from './steps/node-publication.ts';
import { NodeSetupStep, WAITING_LOG_MS } from './steps/node-setup.ts';
import { ClusterPolicyReportStep } from './steps/cluster-policy-report.ts';
import { PolicyStep } from './steps/policy.ts';
import { nextTurn } from '../util/sliced.ts';
import { ALL_INPUTS, isDue, type PassContext, type Step, type StepInput } from './steps/step.ts';

export type { KnownPod } from './steps/local-pods.ts';
export { releaseMemory } from './steps/memory.ts';

/**
 * A pass at least this often, whatever happens (every WAITING_LOG_MS while not set up): the
 * level-based repair of what no event reports (a route, neighbour or masquerade rule removed by
 * hand). Calico's Felix refreshes its routes every 90 s and its iptables every 180 s, kube-proxy
 * resyncs every 30 s; every step compares a digest or does its cheapest kernel read (the cluster
 * network reads its rtnetlink queue, and the routes only when it announced a change to them), and the
 * policy rules have their own drift check every 10 s, so a minute is enough and halves what an idle
 * node pays for it (issue 18).
 */
export const RESYNC_MS = 60_000;
/** A cluster-network reconcile that changed this many entries has its garbage released (MemoryKeeper.largePass). */
const LARGE_RECONCILE_ENTRIES = 1_000;
/** Events arriving within this window make one pass. */
export const DEBOUNCE_MS = 100;
/** Alive while a pass finished within this long. */
export const ALIVE_WINDOW_MS = 3 * RESYNC_MS;
/** How often the underlay is looked at between passes: an address or MTU change on it makes no API
 * event, yet peers must learn this node's new address promptly (a link query, an address dump and
 * the /0 routes: about 1 ms, which every 2 s was a tenth of the idle agent's CPU; issue 18). */
export const UNDERLAY_CHECK_MS = 5_000;
/** The resync timer, once the node is set up, waits at least this long (a resync just ran). */
const RESYNC_MIN_WAIT_MS = 1_000;
/** A pass gives the event loop back between its steps once it held it this long. */
const PASS_SLICE_MS = 8;
/** A failed pass is retried after this long (besides the events that trigger passes anyway). */
export const RETRY_MS = 5_000;
/** A rebuild's memory release waits this long at most for the drift check that follows it. */
const REBUILT_RELEASE_WAIT_MS = 2_000;
/** How long after a rebuild's commit its drift check and memory release start. */
const AFTER_REBUILD_MS = 500;

export interface AgentOptions {
  config: AgentConfig;
  kubeConfig: KubeConfig;
  log: Logger;
  /** Injected for tests (the nft fake, a netlink opener, a clock); the real ones by default. */
  nft?: Nft;
  openNetlink?: () => NetlinkSocket;
  clock?: Clock;
  resyncMs?: number;
  backoff?: BackoffOptions;
}

export class Agent {
  readonly config: AgentConfig;
  readonly metrics: AgentMetrics;
  readonly cache: ClusterCache;
  readonly policy: PolicyEnforcer;
  readonly notices: PodStartNotices;
  private readonly log: Logger;
  private readonly kube: KubeClient;
  private readonly clock: Clock;
  private readonly openNetlink: () => NetlinkSocket;
  private readonly resyncMs: number;
  private readonly api = new ApiConnectionTracker();
  private readonly memory: MemoryKeeper;
  private readonly loop: Loop;
  private readonly nodeSetup: NodeSetupStep;
  private readonly clusterNetwork: ClusterNetworkStep;
  private readonly masquerade: MasqueradeStep;
  private readonly localPods: LocalPodsStep;
  private readonly steps: Step[];
  private readonly answers: AgentAnswers;
  private readonly timers: Timer[] = [];
  private health: HealthServer | undefined;
  private handshake: PodHandshakeServer | undefined;
  private stopping = false;
  private readonly startedAt: number;
  private lastPassAt: number;
  private passes = 0;
  /** When the last pass with every step due (`resync`) began. */
  private lastResyncAt: number;
  /** The step inputs that changed since the last pass began (all of them before the first). */
  private pending = new Set<StepInput>(ALL_INPUTS);

  private constructor(opts: AgentOptions) {
    const c = (this.config = opts.config);
    const log = (this.log = opts.log);
    const clock = (this.clock = opts.clock ?? systemClock);
    this.openNetlink = opts.openNetlink ?? (() => NetlinkSocket.open());
    // The table over nf_tables netlink in process: no `nft` process on any of the agent's paths.
    const nft = opts.nft ?? createNetlinkTransport();
    this.startedAt = this.lastPassAt = this.lastResyncAt = clock.now();
    this.resyncMs = opts.resyncMs ?? RESYNC_MS;
    this.metrics = createMetrics();
    this.kube = new KubeClient(opts.kubeConfig);
    this.memory = new MemoryKeeper(clock, log);
    this.loop = new Loop({ clock, debounceMs: DEBOUNCE_MS, retryMs: RETRY_MS, run: () => this.pass() });
    this.cache = new ClusterCache(this.kube, this.cacheHooks(), opts.backoff);
    this.notices = new PodStartNotices(clock, { apiPod: (ns, name) => this.cache.pods.get(name, ns) });
    const ownAddresses = () => nodeAddresses(this.cache.nodes.get(c.nodeName), this.nodeSetup.underlay?.addresses);
    this.policy = new PolicyEnforcer({
      nodeName: c.nodeName,
      nft,
      cache: this.cache,
      kube: this.kube,
      log,
      clock,
      registry: this.metrics.registry,
      notices: this.notices,
      nodeAddresses: ownAddresses,
      cutDeniedFlows: c.policyConntrack,
      logDenied: c.policyLogDenied,
      // A rebuild is followed by one dump of the table that records its chains' digests, part of
      // the rebuild's cost, rather than by the first periodic drift check up to DRIFT_CHECK_MS later
      // (the idle agent's largest cost after start-up, issue 18); checks after it read the generation.
      // The release of the rebuild's garbage waits for that check (at most REBUILT_RELEASE_WAIT_MS):
      // after a rebuild of its own it reads every chain in slices (src/nft/drift.ts), and what it
      // allocates after a release stayed resident (RssAnon settled +8 MiB at 50,000 pods).
      // Both start AFTER_REBUILD_MS after the commit, not at once: the rules are in the kernel, and
      // the answers waiting on them (/readyz, the pod-start notices) go first. At 50,000 pods the
      // check (~110 ms in slices) and the release (~120 ms of marking on this thread) right after
      // the commit held the first /readyz 200 back by ~200 ms.
      onRebuilt: () => {
        const later = setTimeout(() => {
          if (this.stopping) return;
          this.policy.requestDriftCheck();
          let waited: NodeJS.Timeout | undefined;
          void Promise.race([
            this.policy.settle(),
            new Promise<void>((resolve) => {
              waited = setTimeout(resolve, REBUILT_RELEASE_WAIT_MS);
              waited.unref();
            }),
          ]).then(() => {
            clearTimeout(waited);
            if (!this.stopping) this.memory.rebuilt();
          });
        }, AFTER_REBUILD_MS);
        later.unref();
      },
    });
    const wakeNodeLevel = () => this.answers.nodeLevelChanged();
    // A failed patch is retried by the steps that read this node's Node (node publication and the
    // cluster network, which computes the annotations).
    const retry = () => {
      this.pending.add('this-node');
      this.loop.retry();
    };
    const network = new ClusterNetwork(c, log, nft, this.openNetlink, { now: () => clock.now() });
    this.nodeSetup = new NodeSetupStep({
      config: c,
      cache: this.cache,
      log,
      clock,
      openNetlink: this.openNetlink,
      requestPass: () => this.request('plugins'),
      onSetUp: wakeNodeLevel,
    });
    const publication = new NodePublicationStep({
      nodeName: c.nodeName,
      kube: this.kube,
      log,
      clock,
      metrics: this.metrics,
      retry,
    });
    this.clusterNetwork = new ClusterNetworkStep({
      config: c,
      network,
      nodeSetup: this.nodeSetup,
      publication,
      cache: this.cache,
      log,
      metrics: this.metrics,
      onReady: wakeNodeLevel,
      // Thousands of peers set up (a node joining a large cluster) leave tens of MiB of garbage, and
      // at start it comes after the first rebuild's release: released once the pass is done.
      onReconciled: (entries) => {
        if (entries >= LARGE_RECONCILE_ENTRIES) this.memory.largePass();
      },
    });
    this.masquerade = new MasqueradeStep(network);
    // The resync looks at this node's pods, kept apart as events come (not a copy of the cluster's).
    const pods = this.cache.pods.subset((p) => p.spec.nodeName === c.nodeName);
    this.localPods = new LocalPodsStep({
      config: c,
      pods,
      notices: this.notices,
      log,
      onNoticesExpired: () => this.policy.request(),
    });
    this.steps = [
      this.nodeSetup,
      publication,
      this.clusterNetwork,
      this.masquerade,
      this.localPods,
      new IpamMetricsStep(c, this.metrics, this.nodeSetup, this.localPods, log),
      new PolicyStep(this.policy, ownAddresses),
      new ClusterPolicyReportStep(this.cache.clusterNetworkPolicies, this.metrics.registry, log),
    ];
    this.answers = new AgentAnswers({
      config: c,
      log,
      clock,
      cache: this.cache,
      metrics: this.metrics,
      api: this.api,
      apiServer: this.kube.server,
      startedAt: this.startedAt,
      notices: this.notices,
      policy: this.policy,
      nodeSetup: this.nodeSetup,
      clusterNetwork: this.clusterNetwork,
      localPods: this.localPods,
      openNetlink: this.openNetlink,
      readiness: () => this.readiness(),
      lastPass: () => (this.passes > 0 ? this.lastPassAt : undefined),
      // A notice needs the local-pods step's knowledge of its pod; the node level only while it is
      // not in place (the notice waits for it).
      requestPass: () =>
        this.nodeSetup.written && this.clusterNetwork.routesReady
          ? this.request('notice')
          : this.request('notice', 'this-node', 'other-nodes'),
    });
  }

  private cacheHooks(): ConstructorParameters<typeof ClusterCache>[1] {
    return {
      log: this.log,
      onChange: (resource, object) => {
        this.api.event(resource);
        this.memory.activity();
        // Nodes matter to policy only through ClusterNetworkPolicy `nodes` peers.
        if (resource !== 'nodes' || this.cache.clusterNetworkPolicies.list().length > 0)
          this.policy.request(this.clock.now());
        // The steps read the nodes, this node's pods and the ClusterNetworkPolicies: another node's pod,
        // a Namespace or a NetworkPolicy is none of their business (at 50,000 pods, churn elsewhere
        // would run the node pass for nothing).
        const input = this.inputOf(resource, object);
        if (input) this.request(...input);
      },
      onSynced: (resource) => {
        this.api.listed(resource);
        this.synced(resource);
      },
      onRelisted: (resource, objects) => {
        this.api.listed(resource);
        this.log.info({ resource, objects }, `${resource} listed again`);
        this.memory.relisted(objects);
      },
      onApiError: (resource, err) => {
        this.api.failed(resource, err);
        this.metrics.apiErrors.inc({ resource });
      },
      onRestart: (resource) => {
        this.api.reconnected(resource);
        this.metrics.watchRestarts.inc({ resource });
      },
    };
  }

  /** The step inputs an informer event changes. */
  private inputOf(resource: ResourceName, object: unknown): StepInput[] | undefined {
    switch (resource) {
      case 'nodes': {
        const name = (object as NodeInfo | undefined)?.metadata.name;
        if (name === undefined) return ['this-node', 'other-nodes'];
        return name === this.config.nodeName ? ['this-node'] : ['other-nodes'];
      }
      case 'pods':
        return object === undefined || (object as PodInfo).spec.nodeName === this.config.nodeName
          ? ['local-pods']
          : undefined;
      case 'clusternetworkpolicies':
        return ['cluster-policies'];
      default:
        return undefined;
    }
  }

  /** Marks step inputs changed and asks for a pass soon. */
  private request(...inputs: StepInput[]): void {
    for (const i of inputs) this.pending.add(i);
    this.loop.request();
  }

  /** Starts serving and watching; the first pass follows at once. */
  static async start(opts: AgentOptions): Promise<Agent> {
    const agent = new Agent(opts);
    try {
      await agent.begin();
    } catch (err) {
      await agent.stop();
      throw err;
    }
    return agent;
  }

  private async begin(): Promise<void> {
    const c = this.config;
    const { nodeName: node, backend, stateDir, cniConfDir, ipamDataDir, bridge, configFile } = c;
    this.log.info(
      {
        version: strandVersion,
        node,
        backend,
        apiServer: this.kube.server,
        stateDir,
        cniConfDir,
        ipamDataDir,
        bridge,
        configFile,
      },
      'strand agent starting',
    );
    this.health = await startHealthServer({
      addr: c.healthAddr,
      registry: this.metrics.registry,
      alive: () => this.alive(),
      ready: () => this.readiness(),
      log: this.log,
    });
    // The plugin's STATUS asks readiness without the plugins: a chained plugin left out does not stop pods.
    this.handshake = await PodHandshakeServer.start(
      agentSocketPath(c.stateDir),
      (notice) => this.podReady(notice),
      this.log,
      () => this.readiness(false),
      {
        inspect: () => this.answers.inspect(),
        explain: (q) => this.answers.explain(q),
      },
    );
    this.cache.start();
    // Every WAITING_LOG_MS while not set up; then RESYNC_MS after the last pass that ran every step
    // (the one that follows the first lists is one), not a short wait armed before set-up.
    this.every(
      () =>
        this.nodeSetup.written
          ? Math.max(RESYNC_MIN_WAIT_MS, this.lastResyncAt + this.resyncMs - this.clock.now())
          : Math.min(this.resyncMs, WAITING_LOG_MS),
      () => {
        if (!this.nodeSetup.written || this.clock.now() - this.lastResyncAt >= this.resyncMs) this.request('resync');
      },
    );
    // The policy loop is level based through the informers (every Pod, Namespace and NetworkPolicy
    // event asks for a pass) and looks for drift in the kernel every DRIFT_CHECK_MS: a pass on the
    // resync found nothing to do yet built its input from every pod of the cluster each time (the
    // garbage V8's memory reducer then collected twice a minute). It is asked on the long timer of
    // its periodic full compile instead, the check that no event was missed.
    this.every(
      () => FULL_COMPILE_MS,
      () => this.policy.request(),
      true,
    );
    // Both looks read an rtnetlink queue (one recv(2) when nothing changed): the underlay moving, and
    // a route, neighbour or FDB entry to another node changed by hand, repaired now rather than at
    // the next resync.
    this.every(
      () => UNDERLAY_CHECK_MS,
      () => {
        if (this.nodeSetup.underlayMoved()) this.request('underlay');
        if (this.clusterNetwork.drifted()) this.request('kernel-drift');
      },
      true,
    );
    this.every(
      () => DRIFT_CHECK_MS,
      () => this.policy.requestDriftCheck(),
      true,
    );
    this.request(...ALL_INPUTS);
  }

  /** A self-rearming timer, disarmed by stop(). */
  private every(ms: () => number, fn: () => void, unref = false): void {
    const arm = () => {
      if (this.stopping) return;
      const t = this.clock.after(
        ms(),
        () => {
          this.timers.splice(this.timers.indexOf(t), 1);
          fn();
          arm();
        },
        { unref },
      );
      this.timers.push(t);
    };
    arm();
  }

  /**
   * Answers every waiting pod-start notice (refused), stops watching and serving. The data plane,
   * the rules, the node state and the conflist stay as they are.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const t of this.timers.splice(0)) t.cancel();
    this.loop.stop();
    this.memory.stop();
    // Every waiting notice is refused, and the refusals written before the socket's connections drop.
    await this.answers.stop();
    await new Promise((r) => setImmediate(r));
    await Promise.allSettled([this.cache.stop(), this.handshake?.close(), this.health?.close()]);
    await this.loop.settle();
    await this.policy.settle();
    for (const s of this.steps) s.close?.();
    this.log.info('strand agent stopped; the node network is left as it is');
  }

  /** The port the health server listens on. */
  get healthPort(): number | undefined {
    return this.health?.port;
  }

  /** Alive while the main loop turns. */
  alive(): boolean {
    return !this.stopping && this.clock.now() - this.lastPassAt < Math.max(ALIVE_WINDOW_MS, 3 * this.resyncMs);
  }

  /**
   * Ready when the node is set up, routes and masquerade are in place and every informer has listed,
   * and (with `withPlugins`, as /readyz) every plugin of the conflist answered and is in it.
   */
  readiness(withPlugins = true): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    const level = this.nodeSetup.ready() ?? this.clusterNetwork.ready();
    if (level) reasons.push(level);
    const masquerade = this.masquerade.ready();
    if (masquerade) reasons.push(masquerade);
    if (withPlugins) reasons.push(...this.nodeSetup.pluginProblems());
    const unsynced = this.cache.unsynced;
    if (unsynced.length > 0) reasons.push(`not synced with the API server yet: ${unsynced.join(', ')}`);
    const policy = this.policy.problem;
    if (policy) reasons.push(policy);
    return { ready: reasons.length === 0, reasons };
  }

  /** What the agent knows and wants, for `strand status` (answers.ts). */
  inspect(): Promise<InspectSnapshot> {
    return this.answers.inspect();
  }

  /** The plugin's pod-start notice (answers.ts). */
  podReady(notice: PodStartNotice): Promise<PodStartAnswer> {
    return this.answers.podReady(notice);
  }

  /** The pods on this node the agent knows of. */
  knownPods(): KnownPod[] {
    return this.localPods.known();
  }

  /** Asks for a pass of every step soon; events within DEBOUNCE_MS make one pass. */
  requestReconcile(): void {
    this.request(...ALL_INPUTS);
  }

  private synced(resource: ResourceName): void {
    const informer = this.cache.all.find((i) => i.resource === resource);
    const objects = informer?.list().length ?? 0;
    // The format says whether the API server (or a proxy before it) gave protobuf where it was asked for.
    this.log.info({ resource, objects, format: informer?.listFormat }, `${resource} listed`);
    if (this.cache.synced) {
      const counts = Object.fromEntries(this.cache.all.map((i) => [i.resource, i.list().length]));
      this.log.info({ objects: counts, memoryMiB: memoryMiB() }, 'synced with the API server');
      // The lists' garbage goes before the first policy pass builds on top of it, from a task of its
      // own (the health endpoints answer before it).
      void releaseMemory().then((gcMs) =>
        this.log.debug({ gcMs, memoryMiB: memoryMiB() }, 'released the memory of the first lists'),
      );
    }
    // A policy pass: before sync it prepares what the policies listed so far need; at sync it
    // compiles (the last list may bring no object, no CRD or no ClusterNetworkPolicy, hence no
    // change event).
    this.policy.request();
    // The steps that read what was listed (a list is taken whole, without an event per object). Not
    // every step: at 50,000 pods a node pass after each of the five lists ran the routes, the
    // masquerade and the node's publication again for nothing, on the loop the lists need.
    const input = this.inputOf(resource, undefined);
    if (input) this.request(...input);
  }

  /**
   * One pass: the due steps in order; a step that throws ends the pass, which the loop retries with
   * the same inputs due (and whatever changed meanwhile).
   */
  private async pass(): Promise<boolean> {
    const due = this.pending;
    this.pending = new Set();
    if (due.size === 0) return true;
    if (due.has('resync')) this.lastResyncAt = this.clock.now();
    const end = this.metrics.reconcileDuration.startTimer();
    const ctx: PassContext = { node: this.nodeSetup.node, now: this.clock.now(), due };
    try {
      let slice = performance.now();
      for (const step of this.steps) {
        if (!isDue(step, due)) continue;
        // A pass that has held the loop for a slice gives it back before its next step: the first
        // pass after the lists (node set-up, the masquerade, the local pods, each a few to tens of
        // ms) was one task of ~65 ms with its collections at 50,000 pods. A short pass (a pod-start
        // notice's) never waits.
        if (performance.now() - slice >= PASS_SLICE_MS) {
          await nextTurn();
          slice = performance.now();
        }
        const t0 = performance.now();
        try {
          await step.pass(ctx);
        } finally {
          this.metrics.stepSeconds.inc({ step: step.name }, (performance.now() - t0) / 1000);
          this.metrics.stepRuns.inc({ step: step.name });
        }
      }
      this.metrics.reconcileTotal.inc({ result: 'ok' });
      return true;
    } catch (err) {
      for (const i of due) this.pending.add(i);
      this.metrics.reconcileTotal.inc({ result: 'error' });
      this.log.error({ err }, `reconcile pass failed: ${describeError(err)}`);
      return false;
    } finally {
      end();
      this.lastPassAt = this.clock.now();
      this.passes++;
    }
  }
}
