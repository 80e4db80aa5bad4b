// `strand agent`: the node agent's daemon. One main loop, level-based: every pass computes the whole
// desired node state from the informers' caches and the kernel, and applies the difference; passes
// run on informer events (debounced) and periodically, so a missed event never matters (kindnet's
// loop, DESIGN.md "Kubernetes is the datastore"). A pass, in order:
//   1. node set-up: wait for this Node's pod CIDR; underlay and pod MTU; bridge and sysctls; the node
//      state file and the CNI conflist (each rewritten only when it changes);
//   2. the Node's NetworkUnavailable condition, once set up;
//   3. the cluster network: this node's VXLAN device or host-gw set-up, its strand.dev/ annotations,
//      routes, neighbours and FDB entries to every other node, and the egress masquerade
//      (cluster-network.ts);
//   4. the pods on this node (from the Pod informer, the IPAM store and the plugin's notices);
//   5. metrics;
//   6. NetworkPolicy (policy-enforcer.ts): its own loop with a shorter debounce, on every
//      NetworkPolicy, Pod and Namespace event, every pod-start notice, a change of this node's
//      addresses and every periodic pass; podReady() answers the plugin once the pod's rules are in.
//
// What the agent never does: tear down the data plane. On SIGTERM it stops watching and serving and
// leaves the bridge, the routes, the node state and the conflist as they are, so that a DaemonSet
// restart does not disturb running pods. An unreachable API server only pauses updates.
import type { KubeConfig } from '@kubernetes/client-node';
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { hostVethName } from '../plugin/names.ts';
import { NetlinkSocket, type OffloadSizes } from '../kernel/index.ts';
import { firstHost, formatIp, parseCidr } from '../net/ip.ts';
import { readReservations, storeDir } from '../ipam/store.ts';
import { loadKoffi } from '../kernel/libc.ts';
import { formatIp as formatIpamIp } from '../ipam/range.ts';
import { processLogger, type Logger } from '../log.ts';
import { strandVersion } from '../version.ts';
import { CHAINED_PLUGINS } from '../contracts/conflist.ts';
import { planConflist, PluginVersionCache, type ConflistPlan } from '../install/conflist-versions.ts';
import { buildConflist, conflistPath, ensureConflist, NETWORK_NAME } from './cni-conflist.ts';
import { agentSocketPath, type ExplainQuery, type PodStartAnswer, type PodStartNotice } from '../contracts/agent-socket.ts';
import { normalizeIp } from '../net/text.ts';
import { ClusterNetwork } from './cluster-network.ts';
import { ConfigError, loadAgentConfig, type AgentConfig } from './config.ts';
import { startHealthServer, type HealthServer } from './health.ts';
import { describeError, KubeClient, KubeConfigError, loadKubeConfig } from '../k8s/client.ts';
import { ClusterCache } from '../k8s/cluster-cache.ts';
import type { BackoffOptions, ResourceName } from '../k8s/informer.ts';
import { podIPs, type NodeInfo } from '../k8s/objects.ts';
import { createMetrics, updateIpamGauges, type AgentMetrics } from './metrics.ts';
import { markNetworkAvailable, networkMarkedAvailable, patchNodeAnnotations } from '../k8s/node-patch.ts';
import { desiredNodeState, detectUnderlay, ensureNodeState, podOffload, prepareHostNetwork, underlayFamily, UnderlayError, type Underlay } from './node-setup.ts';
import { podMtu } from '../datapath/mtu.ts';
import { explain, type ExplainAnswer } from './explain.ts';
import { explainPolicy } from './explain-policy.ts';
import { ApiConnectionTracker, buildInspectSnapshot, policySummary, type InspectSnapshot } from './inspect.ts';
import { compilePolicy } from '../policy/model.ts';
import { PodHandshakeServer } from './pod-handshake.ts';
import { underlayPrefixes } from '../datapath/datapath.ts';
import { DRIFT_CHECK_MS, PolicyEnforcer } from './policy-enforcer.ts';
import { createNftRunner } from '../nft/runner.ts';

/** A pass at least this often, whatever happens. */
export const RESYNC_MS = 30_000;
/** While the node is not set up, a pass (and a log line saying why) this often. */
export const WAITING_LOG_MS = 10_000;
/** Events arriving within this window make one pass. */
export const DEBOUNCE_MS = 100;
/** Alive while a pass finished within this long. */
export const ALIVE_WINDOW_MS = 3 * RESYNC_MS;
/**
 * How often the underlay interface is looked at between passes. An address or MTU change on it makes
 * no API event, yet peers must learn this node's new address (its annotation) promptly. One netlink
 * dump of one link's addresses: about 0.1 ms.
 */
export const UNDERLAY_CHECK_MS = 2_000;
/** A failed pass is retried after this long (besides the events that trigger passes anyway). */
export const RETRY_MS = 5_000;
/** The longest a pod-start notice waits for the node state before the answer is "not ready"; the
 * answer always comes within the plugin's wait (podStartWaitMs) less NOTICE_ANSWER_MARGIN_MS, so the
 * plugin hears "not ready" (and fails the ADD) rather than giving up and starting the pod open. */
export const NOTICE_WAIT_MS = 30_000;
/** A relist of at least this many objects is followed by releaseMemory(). */
const RELEASE_AFTER_OBJECTS = 1_000;
/** A notice whose addresses IPAM no longer holds is forgotten after this long (the pod was deleted). */
const NOTICE_TTL_MS = 60_000;
/** How often a policy pass runs between passes, to look for drift (policy-enforcer.ts DRIFT_CHECK_MS). */
export const POLICY_DRIFT_CHECK_MS = DRIFT_CHECK_MS;
/** The agent answers a pod-start notice this long before the plugin stops waiting for the answer. */
const NOTICE_ANSWER_MARGIN_MS = 250;

export interface AgentOptions {
  config: AgentConfig;
  kubeConfig: KubeConfig;
  log: Logger;
  /** Test overrides. */
  resyncMs?: number;
  backoff?: BackoffOptions;
}

/** A pod on this node, as the agent knows it. */
export interface KnownPod {
  namespace: string;
  name: string;
  uid?: string;
  ips: string[];
  /** The pod's veth on the bridge, from the IPAM store or the plugin's notice. */
  hostVeth?: string;
  containerId?: string;
  /** Where the agent learned of it: the Pod informer, the plugin's notice, or both. */
  source: 'api' | 'plugin' | 'api+plugin';
}

interface Notice extends PodStartNotice {
  at: number;
}

interface Attachment {
  containerId: string;
  ifname: string;
  hostVeth: string;
}

/** IPv4 and IPv6 text in one canonical form, so the API's and IPAM's addresses compare. */
function canonicalIp(ip: string): string {
  return normalizeIp(ip.split('/')[0] ?? ip) ?? ip;
}

/** Node.spec.podCIDRs checked and normalised: one per family at most, IPv4 first; or why not. */
export function nodePodCidrs(node: NodeInfo): { cidrs: string[] } | { problem: string } {
  const cidrs: string[] = [];
  for (const raw of node.spec.podCIDRs) {
    let c;
    try {
      if (!raw.includes('/')) throw new Error('no prefix length');
      c = parseCidr(raw);
    } catch {
      return { problem: `node ${node.metadata.name} has a malformed pod CIDR ${JSON.stringify(raw)}` };
    }
    const text = `${formatIp(c.bytes)}/${c.prefixLength}`;
    if (cidrs.some((x) => x.includes(':') === text.includes(':'))) {
      return { problem: `node ${node.metadata.name} has more than one IPv${c.family} pod CIDR: ${node.spec.podCIDRs.join(', ')}` };
    }
    cidrs.push(text);
  }
  cidrs.sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')));
  return { cidrs };
}

export class Agent {
  readonly config: AgentConfig;
  readonly metrics: AgentMetrics;
  readonly cache: ClusterCache;
  private readonly log: Logger;
  private readonly kube: KubeClient;
  private readonly resyncMs: number;
  private health: HealthServer | undefined;
  private handshake: PodHandshakeServer | undefined;

  // Main loop.
  private dirty = false;
  private running: Promise<void> | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private underlayTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private releaseTimer: NodeJS.Timeout | undefined;
  private lastRelease = 0;
  private stopping = false;
  private lastPassAt = Date.now();
  private readonly startedAt = Date.now();
  private passes = 0;

  // What `strand status` is told (inspect.ts).
  private readonly api = new ApiConnectionTracker();
  private setUp: { podCidrs: string[]; mtu: number; offload: Record<string, number> | undefined } | undefined;
  private lastReconcile: InspectSnapshot['datapath']['lastReconcile'];

  // What the last passes found.
  private nodeStateWritten = false;
  private conflistWritten = false;
  private waitingFor: string | undefined = 'the first reconcile pass';
  private lastWaitLog: { reason: string; at: number } | undefined;
  private underlay: Underlay | undefined;
  private warnedBrNetfilter = false;
  private missingPlugins = '';
  /** The plugins' VERSION answers, asked again only when a plugin's file changes. */
  private readonly pluginVersions = new PluginVersionCache();
  /** What the last pass chose for the conflist from the plugins' answers. */
  private conflistPlan: ConflistPlan | undefined;
  /** Changes in the CNI bin dir (a plugin upgraded, installed or removed) ask for a pass. */
  private binDirWatcher: FSWatcher | undefined;
  private conditionPatching = false;
  private conditionPatchedAt = 0;
  private readonly nodeStateWaiters = new Set<() => void>();
  private readonly network: ClusterNetwork;
  readonly policy: PolicyEnforcer;
  private policyTimer: NodeJS.Timeout | undefined;
  private policyNodeAddresses = '';
  /** Routes to the other nodes are in place (the first cluster-network pass succeeded). */
  private datapathReady = false;
  private datapathProblem: string | undefined;
  private egressProblem: string | undefined;
  private annotationsPatched = { body: '', at: 0 };
  private unusablePeers = '';

  // Pods.
  private readonly notices = new Map<string, Notice>();
  private pods = new Map<string, KnownPod>();

  private constructor(opts: AgentOptions) {
    this.config = opts.config;
    this.log = opts.log;
    this.resyncMs = opts.resyncMs ?? RESYNC_MS;
    this.metrics = createMetrics();
    this.kube = new KubeClient(opts.kubeConfig);
    this.network = new ClusterNetwork(this.config, this.log);
    this.cache = new ClusterCache(
      this.kube,
      {
        log: this.log,
        onChange: (resource) => {
          this.api.event(resource);
          if (resource !== 'nodes') this.policy.request(Date.now());
          this.requestReconcile();
        },
        onSynced: (resource) => {
          this.api.listed(resource);
          this.synced(resource);
        },
        onRelisted: (resource, objects) => {
          this.api.listed(resource);
          this.relisted(resource, objects);
        },
        onApiError: (resource, err) => {
          this.api.failed(resource, err);
          this.metrics.apiErrors.inc({ resource });
        },
        onRestart: (resource) => {
          this.api.reconnected(resource);
          this.metrics.watchRestarts.inc({ resource });
        },
      },
      opts.backoff,
    );
    this.policy = new PolicyEnforcer({
      nodeName: this.config.nodeName,
      nft: createNftRunner(),
      cache: this.cache,
      kube: this.kube,
      log: this.log,
      registry: this.metrics.registry,
      nodeAddresses: () => this.nodeAddresses(),
      cutDeniedFlows: this.config.policyConntrack,
      logDenied: this.config.policyLogDenied,
      // A rebuild compiles and renders every policy (the first one right after the first lists): its
      // garbage goes as the lists' does, rather than whenever the heap next fills up.
      onRebuilt: () => {
        const gcMs = releaseMemory();
        const m = process.memoryUsage();
        const mib = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;
        this.log.info({ gcMs, memoryMiB: { rss: mib(m.rss), heapUsed: mib(m.heapUsed), heapTotal: mib(m.heapTotal), external: mib(m.external) } }, 'policy rules rebuilt; released the memory of compiling them');
      },
    });
  }

  /**
   * This node's own addresses, from which its pods are always reachable (kubelet probes, R11): the
   * Node's addresses, the underlay's, and the bridge's gateway address in each pod CIDR.
   */
  private nodeAddresses(): string[] {
    const out = new Set<string>();
    const node = this.cache.nodes.get(this.config.nodeName);
    for (const a of node?.status.addresses ?? []) if (a.type === 'InternalIP' || a.type === 'ExternalIP') out.add(canonicalIp(a.address));
    for (const a of this.underlay?.addresses ?? []) out.add(canonicalIp(a));
    if (node) {
      const pod = nodePodCidrs(node);
      if ('cidrs' in pod) for (const c of pod.cidrs) out.add(canonicalIp(firstHost(c)));
    }
    return [...out];
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
    this.log.info(
      {
        version: strandVersion,
        node: c.nodeName,
        backend: c.backend,
        apiServer: this.kube.server,
        stateDir: c.stateDir,
        cniConfDir: c.cniConfDir,
        ipamDataDir: c.ipamDataDir,
        bridge: c.bridge,
        configFile: c.configFile,
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
    // The plugin's STATUS asks this: a chained plugin left out of the conflist does not stop pods.
    this.handshake = await PodHandshakeServer.start(agentSocketPath(c.stateDir), (notice) => this.podReady(notice), this.log, () => this.readiness(false), {
      inspect: () => this.inspect(),
      explain: (q) => this.explain(q),
    });
    this.cache.start();
    this.scheduleTick();
    this.watchUnderlay();
    this.watchPolicyDrift();
    this.requestReconcile();
  }

  /** A look for drift of the policy rules every POLICY_DRIFT_CHECK_MS. */
  private watchPolicyDrift(): void {
    if (this.stopping) return;
    this.policyTimer = setTimeout(() => {
      this.policy.requestDriftCheck();
      this.watchPolicyDrift();
    }, POLICY_DRIFT_CHECK_MS);
    this.policyTimer.unref();
  }

  /** Stops watching and serving. The data plane, node state and conflist stay as they are. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const t of [this.debounceTimer, this.tickTimer, this.underlayTimer, this.retryTimer, this.releaseTimer, this.policyTimer]) clearTimeout(t);
    this.binDirWatcher?.close();
    for (const wake of this.nodeStateWaiters) wake();
    this.policy.stop();
    await this.cache.stop();
    await Promise.allSettled([this.handshake?.close(), this.health?.close()]);
    await this.running;
    await this.policy.settle();
    this.network.close();
    this.log.info('strand agent stopped; the node network is left as it is');
  }

  /** The port the health server listens on. */
  get healthPort(): number | undefined {
    return this.health?.port;
  }

  // ---- health ------------------------------------------------------------------------------------

  /** Alive while the main loop turns. */
  alive(): boolean {
    return !this.stopping && Date.now() - this.lastPassAt < Math.max(ALIVE_WINDOW_MS, 3 * this.resyncMs);
  }

  /**
   * Ready when the node state and the conflist are written and every informer has listed, and (with
   * `withPlugins`, as /readyz) every plugin of the conflist answered and is in it.
   */
  readiness(withPlugins = true): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (!this.nodeStateWritten) reasons.push(`node state not written yet: waiting for ${this.waitingFor ?? 'the next pass'}`);
    else if (!this.conflistWritten) reasons.push('CNI configuration list not written yet');
    else if (!this.datapathReady) reasons.push(`routes to other nodes not set up yet${this.datapathProblem ? `: ${this.datapathProblem}` : ''}`);
    if (this.egressProblem) reasons.push(`egress masquerade not in place: ${this.egressProblem}`);
    if (withPlugins) reasons.push(...(this.conflistPlan?.problems ?? []));
    const unsynced = this.cache.unsynced;
    if (unsynced.length > 0) reasons.push(`not synced with the API server yet: ${unsynced.join(', ')}`);
    const policy = this.policy.problem;
    if (policy) reasons.push(policy);
    return { ready: reasons.length === 0, reasons };
  }

  /** What the agent knows and wants, for `strand status` over its socket (inspect.ts). */
  inspect(): InspectSnapshot {
    return buildInspectSnapshot(
      {
        config: this.config,
        startedAt: this.startedAt,
        apiServer: this.kube.server,
        readiness: this.readiness(),
        lastPassAt: this.passes > 0 ? this.lastPassAt : undefined,
        informers: this.cache.all.map((i) => this.api.view(i.resource, i.synced, i.list().length)),
        podCidrs: this.setUp?.podCidrs,
        underlay: this.underlay,
        podMtu: this.setUp?.mtu,
        podOffload: this.setUp?.offload,
        nodes: this.cache.nodes.list(),
        lastReconcile: this.lastReconcile,
        pods: this.knownPods().map((p) => ({ namespace: p.namespace, name: p.name, ips: p.ips, source: p.source, ...(p.hostVeth ? { hostVeth: p.hostVeth } : {}), ...(p.containerId ? { containerId: p.containerId } : {}) })),
        policy: this.policySummary(),
      },
      this.log,
    );
  }

  /** Policies, the isolated local pods of the model in the kernel (else the one it would apply), its last programming and nft failure. */
  private policySummary(): InspectSnapshot['policy'] {
    if (!this.cache.synced) return undefined;
    const programming = this.policy.programming;
    const model = programming.compiled ?? compilePolicy(this.policy.compileInput());
    const isolated = model.pods.filter((p) => p.ingress || p.egress).length;
    return policySummary(this.cache.networkPolicies.list().length, isolated, programming, this.policy.problem);
  }

  /** `strand explain` over the socket: the path and the verdict between two ends (explain.ts). */
  explain(q: ExplainQuery): ExplainAnswer {
    let prefixes: string[] = [];
    if (this.underlay) {
      const nl = NetlinkSocket.open();
      try {
        prefixes = underlayPrefixes(nl, this.underlay.name);
      } finally {
        nl.close();
      }
    }
    const caches = { nodes: this.cache.nodes.list(), pods: this.cache.pods.list(), namespaces: this.cache.namespaces.list(), policies: this.cache.networkPolicies.list() };
    return explain(
      {
        config: this.config,
        nodes: caches.nodes,
        pods: caches.pods,
        underlayPrefixes: prefixes,
        underlayIface: this.underlay?.name,
        policy: (packet, srcNode, dstNode) => explainPolicy(caches, packet, srcNode, dstNode, this.policyEnforced(), this.policy.compileInput()),
      },
      q,
    );
  }

  /** This agent programs NetworkPolicy (policy-enforcer.ts): explain's verdicts are what the kernel enforces. */
  private policyEnforced(): boolean {
    return true;
  }

  // ---- pod-start handshake -----------------------------------------------------------------------

  /**
   * The answer to the plugin's pod-start notice: ok once this node's level of the network is in
   * place, the node state (the pod got its address from it) and the routes to the other nodes, and
   * the pod's NetworkPolicy rules are applied (R16: isolated before any container starts). The whole
   * answer comes within the wait the plugin is configured with (podStartWaitMs), less a margin.
   */
  async podReady(notice: PodStartNotice): Promise<PodStartAnswer> {
    this.log.info(
      { namespace: notice.namespace, name: notice.name, uid: notice.uid, containerId: notice.containerId, ifname: notice.ifname, hostVeth: notice.hostVeth, ips: notice.ips },
      'pod-start notice from the plugin',
    );
    const started = Date.now();
    this.notices.set(notice.containerId, { ...notice, at: started });
    this.requestReconcile();
    const answerWithin = Math.max(0, this.config.podStartWaitMs - NOTICE_ANSWER_MARGIN_MS);
    if (!(await this.waitForNodeState(Math.min(NOTICE_WAIT_MS, answerWithin)))) {
      this.metrics.podStartNotices.inc({ result: 'refused' });
      return { ok: false, message: `the strand agent is not ready: ${this.readiness().reasons.join('; ')}` };
    }
    const bound = Math.max(0, answerWithin - (Date.now() - started));
    const policy = await this.policy.podStarted({ ...notice, ips: notice.ips.map(canonicalIp) }, bound);
    if (!policy.ok) {
      this.metrics.podStartNotices.inc({ result: 'refused' });
      return { ok: false, message: policy.message ?? 'the NetworkPolicy rules are not in place' };
    }
    this.metrics.podStartNotices.inc({ result: 'ok' });
    return { ok: true };
  }

  private nodeLevelReady(): boolean {
    return this.nodeStateWritten && this.datapathReady;
  }

  private waitForNodeState(timeoutMs: number): Promise<boolean> {
    if (this.nodeLevelReady()) return Promise.resolve(true);
    if (this.stopping) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.nodeStateWaiters.delete(done);
        resolve(this.nodeLevelReady());
      };
      const timer = setTimeout(done, timeoutMs);
      this.nodeStateWaiters.add(done);
    });
  }

  /** The pods on this node the agent knows of. */
  knownPods(): KnownPod[] {
    return [...this.pods.values()];
  }

  // ---- main loop ---------------------------------------------------------------------------------

  /** Asks for a pass soon; events within DEBOUNCE_MS make one pass. */
  requestReconcile(): void {
    this.dirty = true;
    if (this.stopping || this.debounceTimer || this.running) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.running ??= this.runPasses().finally(() => {
        this.running = undefined;
        // Asked for while the last pass was finishing.
        if (this.dirty) this.requestReconcile();
      });
    }, DEBOUNCE_MS);
  }

  private async runPasses(): Promise<void> {
    while (this.dirty && !this.stopping) {
      this.dirty = false;
      await this.pass();
    }
  }

  /** The periodic pass: every resync interval, or every WAITING_LOG_MS while not set up. */
  private scheduleTick(): void {
    if (this.stopping) return;
    const every = this.nodeStateWritten ? this.resyncMs : Math.min(this.resyncMs, WAITING_LOG_MS);
    this.tickTimer = setTimeout(() => {
      this.requestReconcile();
      // Level-based: the policy step too, whatever events it saw.
      this.policy.request();
      this.scheduleTick();
    }, every);
  }

  /** A pass as soon as the underlay's addresses or MTU differ from what the last pass saw. */
  private watchUnderlay(): void {
    if (this.stopping) return;
    this.underlayTimer = setTimeout(() => {
      if (this.underlay) {
        const nl = NetlinkSocket.open();
        try {
          const now = detectUnderlay(nl, this.config.iface);
          if (JSON.stringify(now) !== JSON.stringify(this.underlay)) this.requestReconcile();
        } catch {
          // Gone or changed beyond recognition: the pass says what.
          this.requestReconcile();
        } finally {
          nl.close();
        }
      }
      this.watchUnderlay();
    }, UNDERLAY_CHECK_MS);
    this.underlayTimer.unref();
  }

  private synced(resource: ResourceName): void {
    this.log.info({ resource, objects: this.cacheSize(resource) }, `${resource} listed`);
    if (this.cache.synced) {
      // The first lists leave their JSON text and raw objects behind, several times the size of the
      // slim caches: collect them now rather than whenever the heap next fills up, so the agent's
      // resident memory is that of what it keeps.
      const gcMs = releaseMemory();
      const m = process.memoryUsage();
      const mib = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;
      this.log.info(
        {
          objects: Object.fromEntries(this.cache.all.map((i) => [i.resource, i.list().length])),
          memoryMiB: { rss: mib(m.rss), heapUsed: mib(m.heapUsed), heapTotal: mib(m.heapTotal), external: mib(m.external) },
          gcMs,
        },
        'synced with the API server',
      );
    }
    this.requestReconcile();
  }

  /** After a large relist, its garbage goes as the first list's did (at most once a minute). */
  private relisted(resource: ResourceName, objects: number): void {
    this.log.info({ resource, objects }, `${resource} listed again`);
    if (objects < RELEASE_AFTER_OBJECTS || this.releaseTimer || Date.now() - this.lastRelease < 60_000) return;
    this.releaseTimer = setTimeout(() => {
      this.releaseTimer = undefined;
      this.lastRelease = Date.now();
      this.log.debug({ gcMs: releaseMemory() }, 'released the memory of a relist');
    }, 1_000);
  }

  private cacheSize(resource: ResourceName): number {
    return this.cache.all.find((i) => i.resource === resource)?.list().length ?? 0;
  }

  private async pass(): Promise<void> {
    const end = this.metrics.reconcileDuration.startTimer();
    try {
      await this.reconcile();
      this.metrics.reconcileTotal.inc({ result: 'ok' });
    } catch (err) {
      this.metrics.reconcileTotal.inc({ result: 'error' });
      this.log.error({ err }, `reconcile pass failed: ${describeError(err)}`);
      this.retryLater();
    } finally {
      end();
      this.lastPassAt = Date.now();
      this.passes++;
    }
  }

  private retryLater(): void {
    if (this.stopping || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.requestReconcile();
    }, RETRY_MS);
  }

  /** One pass over the whole desired state. Later issues add their steps here. */
  private async reconcile(): Promise<void> {
    const node = await this.setUpNode();
    if (node) {
      this.ensureNodeCondition(node);
      this.reconcileClusterNetwork(node);
      await this.reconcileEgress();
    }
    this.reconcilePods();
    if (this.nodeStateWritten) this.updateIpamMetrics();
    // Policy follows its own events (pods, namespaces, policies); of the node's, only its addresses
    // matter to it (R11). Node heartbeats would otherwise compile every policy every few seconds.
    const addresses = this.nodeAddresses().sort().join();
    if (addresses !== this.policyNodeAddresses) {
      this.policyNodeAddresses = addresses;
      this.policy.request(Date.now());
    }
  }

  // ---- 1. node set-up ----------------------------------------------------------------------------

  /** Sets the node up when it can; returns its Node when it is set up, else logs what it waits for. */
  private async setUpNode(): Promise<NodeInfo | undefined> {
    const c = this.config;
    if (!this.cache.nodes.synced) return this.waiting('the list of nodes from the API server');
    const node = this.cache.nodes.get(c.nodeName);
    if (!node) return this.waiting(`node ${c.nodeName} to exist in the API (is --node-name right?)`);
    if (node.spec.podCIDRs.length === 0) {
      return this.waiting(`node ${c.nodeName} to get a pod CIDR (spec.podCIDR/podCIDRs; kube-controller-manager --allocate-node-cidrs assigns it)`);
    }
    const pod = nodePodCidrs(node);
    if ('problem' in pod) return this.waiting(`a usable pod CIDR: ${pod.problem}`);

    let underlay: Underlay;
    let mtu: number;
    let offload: OffloadSizes | undefined;
    const nl = NetlinkSocket.open();
    try {
      try {
        underlay = detectUnderlay(nl, c.iface);
      } catch (err) {
        if (err instanceof UnderlayError) return this.waiting(`the underlay interface: ${err.message}`);
        throw err;
      }
      if (JSON.stringify(underlay) !== JSON.stringify(this.underlay)) {
        this.log.info({ iface: underlay.name, mtu: underlay.mtu, addresses: underlay.addresses, offload: underlay.offload }, 'underlay interface');
        this.underlay = underlay;
      }
      mtu = c.mtu ?? podMtu(c.backend, underlay.mtu, underlayFamily(underlay));
      offload = podOffload(c.backend, c.bigTcp, underlay.offload);
      const host = prepareHostNetwork(nl, { bridge: c.bridge, mtu, podCIDRs: pod.cidrs, podOffload: offload }, this.log);
      if (host.brNetfilterMissing && !this.warnedBrNetfilter) {
        this.warnedBrNetfilter = true;
        this.log.warn(
          'br_netfilter is not loaded (/proc/sys/net/bridge is absent): traffic between pods on this bridge bypasses nftables, so NetworkPolicy cannot filter it; the DaemonSet init container loads the module (modprobe br_netfilter)',
        );
      }
    } finally {
      nl.close();
    }

    const state = desiredNodeState({
      nodeName: c.nodeName,
      podCIDRs: pod.cidrs,
      clusterCIDRs: c.clusterCIDRs,
      mtu,
      podOffload: offload,
      backend: c.backend,
      agentSocket: agentSocketPath(c.stateDir),
    });
    this.setUp = { podCidrs: pod.cidrs, mtu, offload: offload ? ({ ...offload } as Record<string, number>) : undefined };
    if (ensureNodeState(c.stateDir, state)) {
      this.log.info({ podCIDRs: state.podCIDRs, clusterCIDRs: state.clusterCIDRs, mtu: state.mtu, podOffload: state.podOffload, backend: state.backend, path: c.stateDir }, 'wrote the node state');
    }
    this.checkPluginsInstalled();
    const plan = await this.planConflist();
    if (ensureConflist(c.cniConfDir, c, plan)) {
      this.log.info(
        { path: conflistPath(c.cniConfDir), cniVersion: plan.versions.cniVersion, cniVersions: plan.versions.cniVersions, plugins: ['strand', ...plan.chained] },
        'wrote the CNI configuration list',
      );
    }
    if (!this.nodeStateWritten) {
      this.log.info({ podCIDRs: pod.cidrs, mtu, bridge: c.bridge }, 'node network set up');
      this.nodeStateWritten = true;
      this.conflistWritten = true;
      this.waitingFor = undefined;
      this.lastWaitLog = undefined;
      for (const wake of [...this.nodeStateWaiters]) wake();
    }
    return node;
  }

  /**
   * Asks the conflist's plugins in the CNI bin dir for their versions (a plugin's file that did not
   * change since the last pass is not run again) and says once what changed in their answers: a
   * chained plugin left out is a warning (and a /readyz reason), a version change an info line.
   */
  private async planConflist(): Promise<ConflistPlan> {
    this.watchBinDir();
    const before = this.conflistPlan;
    const plan = await planConflist({ binDirs: [this.config.cniBinDir], chained: CHAINED_PLUGINS, cache: this.pluginVersions });
    this.conflistPlan = plan;
    const answers = Object.fromEntries(plan.reports.map((r) => [r.type, { path: r.path, ...r.answer }]));
    if (JSON.stringify(before?.reports) !== JSON.stringify(plan.reports)) {
      this.log.info({ cniBinDir: this.config.cniBinDir, answers, cniVersion: plan.versions.cniVersion, cniVersions: plan.versions.cniVersions }, 'CNI plugins asked for their versions');
    }
    if (JSON.stringify(before?.problems) !== JSON.stringify(plan.problems)) {
      for (const problem of plan.problems) this.log.warn({ cniBinDir: this.config.cniBinDir, answers }, problem);
      if (before && before.problems.length > 0 && plan.problems.length === 0) this.log.info({ plugins: ['strand', ...plan.chained] }, 'every CNI plugin of the configuration list answered and is in it');
    }
    return plan;
  }

  /**
   * Watches the CNI bin dir (inotify), so that a plugin replaced there makes a pass within the
   * debounce rather than at the next resync. Best effort: a dir that does not exist yet is watched
   * from a later pass, and the resync pass stats the plugins anyway.
   */
  private watchBinDir(): void {
    if (this.binDirWatcher || this.stopping) return;
    try {
      const w = watch(this.config.cniBinDir, { persistent: false }, () => this.requestReconcile());
      w.on('error', () => {
        w.close();
        if (this.binDirWatcher === w) this.binDirWatcher = undefined;
      });
      this.binDirWatcher = w;
    } catch {
      // Missing or not watchable: the periodic pass notices changes.
    }
  }

  /**
   * The conflist names plugins the runtime looks up in the CNI bin dir; `strand install` (the
   * DaemonSet's init container) puts them there. Their absence is said once, not fixed: pods on this
   * node would fail with "failed to find plugin".
   */
  private checkPluginsInstalled(): void {
    const missing = ['strand', 'strand-ipam'].filter((p) => !existsSync(join(this.config.cniBinDir, p)));
    const key = missing.join();
    if (key === this.missingPlugins) return;
    this.missingPlugins = key;
    if (missing.length > 0) {
      this.log.warn({ cniBinDir: this.config.cniBinDir, missing }, `CNI plugins missing from ${this.config.cniBinDir}: ${missing.join(', ')} (strand install puts them there)`);
    }
  }

  /** Records and (every WAITING_LOG_MS, or when the reason changes) logs what set-up waits for. */
  private waiting(reason: string): undefined {
    this.waitingFor = reason;
    const now = Date.now();
    if (!this.lastWaitLog || this.lastWaitLog.reason !== reason || now - this.lastWaitLog.at >= WAITING_LOG_MS) {
      this.lastWaitLog = { reason, at: now };
      this.log.info({ waitingFor: reason, nodeStateWritten: this.nodeStateWritten }, `waiting for ${reason}`);
    }
    return undefined;
  }

  // ---- 2. NetworkUnavailable ---------------------------------------------------------------------

  private ensureNodeCondition(node: NodeInfo): void {
    if (networkMarkedAvailable(node) || this.conditionPatching) return;
    // The patch was sent: the watch has not shown it yet.
    if (Date.now() - this.conditionPatchedAt < 10_000) return;
    this.conditionPatching = true;
    markNetworkAvailable(this.kube, this.config.nodeName).then(
      () => {
        this.conditionPatching = false;
        this.conditionPatchedAt = Date.now();
        this.log.info({ node: this.config.nodeName }, 'set the node condition NetworkUnavailable=False (StrandIsUp)');
      },
      (err: unknown) => {
        this.conditionPatching = false;
        this.metrics.apiErrors.inc({ resource: 'nodes' });
        this.log.warn({ err: describeError(err) }, 'could not set the node condition NetworkUnavailable=False; retrying');
        this.retryLater();
      },
    );
  }

  // ---- 3. the cluster network --------------------------------------------------------------------

  private reconcileClusterNetwork(node: NodeInfo): void {
    const underlay = this.underlay;
    const pod = nodePodCidrs(node);
    if (!underlay || 'problem' in pod) return;
    let pass;
    try {
      pass = this.network.reconcilePeers(this.config.nodeName, underlay, pod.cidrs, this.cache.nodes.list());
    } catch (err) {
      this.datapathProblem = describeError(err);
      throw err;
    }
    this.datapathProblem = undefined;
    const r = pass.report;
    this.lastReconcile = {
      at: new Date().toISOString(),
      added: r.added.length,
      changed: r.changed.length,
      removed: r.removed.length,
      unchanged: r.unchanged,
      problems: r.problems.map((p) => p.message),
      durationMs: Math.round(r.durationMs * 100) / 100,
    };
    this.ensureAnnotations(node, pass.annotations);
    const unusable = pass.unusable.map((u) => `${u.name ?? '(unnamed)'}: ${u.reason}`).join('; ');
    if (unusable !== this.unusablePeers) {
      this.unusablePeers = unusable;
      // A node whose agent has not published its annotations yet is normal for a moment.
      if (unusable) this.log.info({ unusable: pass.unusable }, `nodes not reachable as peers yet: ${unusable}`);
    }
    if (!this.datapathReady) {
      this.datapathReady = true;
      this.log.info({ backend: this.config.backend, peers: pass.report.unchanged + pass.report.added.length }, 'routes to other nodes in place');
      for (const wake of [...this.nodeStateWaiters]) wake();
    }
  }

  /** Publishes this node's strand.dev/ annotations (backend, underlay address, VTEP MAC) by merge patch. */
  private ensureAnnotations(node: NodeInfo, want: Record<string, string>): void {
    const have = node.metadata.annotations ?? {};
    const differ = Object.fromEntries(Object.entries(want).filter(([k, v]) => have[k] !== v));
    if (Object.keys(differ).length === 0) return;
    // The same patch was sent moments ago and the watch has not shown it yet; a different one goes now.
    const body = JSON.stringify(differ);
    if (body === this.annotationsPatched.body && Date.now() - this.annotationsPatched.at < 10_000) return;
    this.annotationsPatched = { body, at: Date.now() };
    patchNodeAnnotations(this.kube, this.config.nodeName, differ).then(
      () => this.log.info({ annotations: differ }, 'published the node annotations'),
      (err: unknown) => {
        this.annotationsPatched = { body: '', at: 0 };
        this.metrics.apiErrors.inc({ resource: 'nodes' });
        this.log.warn({ err: describeError(err) }, 'could not publish the node annotations; retrying');
        this.retryLater();
      },
    );
  }

  private async reconcileEgress(): Promise<void> {
    try {
      await this.network.reconcileEgress();
      this.egressProblem = undefined;
    } catch (err) {
      this.egressProblem = describeError(err);
      throw err;
    }
  }

  // ---- 4. pods on this node ----------------------------------------------------------------------

  /** IPAM's attachments of the strand network by address: which container and host veth have it. */
  private attachments(): Map<string, Attachment> {
    const out = new Map<string, Attachment>();
    for (const r of readReservations(storeDir(this.config.ipamDataDir, NETWORK_NAME))) {
      const ifname = r.ifname ?? 'eth0';
      out.set(canonicalIp(formatIpamIp(r.ip)), { containerId: r.containerID, ifname, hostVeth: hostVethName(NETWORK_NAME, r.containerID, ifname) });
    }
    return out;
  }

  private reconcilePods(): void {
    const me = this.config.nodeName;
    const attachments = this.attachments();
    const byPod = new Map<string, Notice>();
    for (const n of this.notices.values()) if (n.namespace && n.name) byPod.set(`${n.namespace}/${n.name}`, n);

    const next = new Map<string, KnownPod>();
    for (const pod of this.cache.pods.list()) {
      if (pod.spec.nodeName !== me || pod.spec.hostNetwork) continue;
      if (pod.status.phase === 'Succeeded' || pod.status.phase === 'Failed') continue;
      const namespace = pod.metadata.namespace ?? '';
      const key = `${namespace}/${pod.metadata.name}`;
      const notice = byPod.get(key);
      const ips = podIPs(pod).map(canonicalIp);
      const att = ips.map((ip) => attachments.get(ip)).find((a) => a !== undefined);
      const known: KnownPod = {
        namespace,
        name: pod.metadata.name,
        ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}),
        ips: ips.length > 0 ? ips : (notice?.ips.map(canonicalIp) ?? []),
        source: notice ? 'api+plugin' : 'api',
      };
      const hostVeth = att?.hostVeth ?? notice?.hostVeth;
      const containerId = att?.containerId ?? notice?.containerId;
      if (hostVeth) known.hostVeth = hostVeth;
      if (containerId) known.containerId = containerId;
      next.set(key, known);
    }
    // Pods the plugin told of that the API does not show on this node yet (kubelet reports IPs later).
    const now = Date.now();
    for (const n of this.notices.values()) {
      const held = n.ips.some((ip) => attachments.get(canonicalIp(ip))?.containerId === n.containerId);
      if (!held && now - n.at > NOTICE_TTL_MS) {
        this.notices.delete(n.containerId);
        continue;
      }
      const key = n.namespace && n.name ? `${n.namespace}/${n.name}` : `container/${n.containerId}`;
      if (next.has(key) || !held) continue;
      next.set(key, {
        namespace: n.namespace ?? '',
        name: n.name ?? '',
        ...(n.uid ? { uid: n.uid } : {}),
        ips: n.ips.map(canonicalIp),
        hostVeth: n.hostVeth,
        containerId: n.containerId,
        source: 'plugin',
      });
    }

    for (const [key, pod] of next) {
      const before = this.pods.get(key);
      if (before && before.ips.join() === pod.ips.join() && before.hostVeth === pod.hostVeth && before.source === pod.source) continue;
      this.log.info({ namespace: pod.namespace, name: pod.name, ips: pod.ips, hostVeth: pod.hostVeth, containerId: pod.containerId, source: pod.source }, 'pod on this node');
    }
    for (const [key, pod] of this.pods) {
      if (!next.has(key)) this.log.info({ namespace: pod.namespace, name: pod.name, ips: pod.ips }, 'pod no longer on this node');
    }
    this.pods = next;
  }

  // ---- 5. metrics --------------------------------------------------------------------------------

  private updateIpamMetrics(): void {
    const conflist = buildConflist(this.config, this.conflistPlan);
    const strand = (conflist.plugins as Record<string, unknown>[])[0] as Record<string, unknown>;
    const problems = updateIpamGauges(this.metrics, [{ ...strand, name: conflist.name, cniVersion: conflist.cniVersion }]);
    for (const p of problems) this.log.debug({ network: p.network, problem: p.message }, 'IPAM usage not available');
  }
}

/**
 * Gives memory that is garbage back to the system: a full, compacting collection through V8's gc
 * extension (enabled here, not by a command-line flag; flavor "last-resort" is V8's
 * CollectAllAvailableGarbage, which also releases the emptied heap pages), then glibc's
 * malloc_trim(3) for what V8's compilers and the HTTP client freed on the C heap. Returns the ms it
 * took. Run after the big lists, whose transient garbage is several times the size of what is kept.
 */
export function releaseMemory(): number {
  const start = performance.now();
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (opts?: { type: string; execution: string; flavor: string }) => void;
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  } catch {
    // Only an optimisation.
  }
  try {
    mallocTrim ??= loadKoffi().load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number;
    mallocTrim(0);
  } catch {
    // Not glibc: nothing to trim.
  }
  return Math.round(performance.now() - start);
}

let mallocTrim: ((pad: number) => number) | undefined;

// ---- the command -----------------------------------------------------------------------------------

/** Exit status of a refused configuration (flags, file, kubeconfig). */
export const EXIT_CONFIG = 2;

/**
 * `strand agent`: loads the configuration (a bad one is one line on stderr and exit 2), runs the
 * agent until SIGTERM or SIGINT, stops it and returns 0.
 */
export async function runAgentCommand(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let config: AgentConfig;
  let kubeConfig: KubeConfig;
  try {
    config = await loadAgentConfig({ flags, env });
    kubeConfig = loadKubeConfig(config.kubeconfig, env);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof KubeConfigError) {
      process.stderr.write(`strand agent: ${err.message}\n`);
      return EXIT_CONFIG;
    }
    throw err;
  }
  const log = processLogger(config.logLevel, config.logFile);
  // Listening before anything starts: a SIGTERM during start-up stops the agent as cleanly.
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  let agent: Agent;
  try {
    agent = await Agent.start({ config, kubeConfig, log });
  } catch (err) {
    log.fatal({ err }, `strand agent could not start: ${describeError(err)}`);
    process.stderr.write(`strand agent: could not start: ${describeError(err)}\n`);
    log.flush();
    return 1;
  }
  const signal = await stopSignal;
  log.info({ signal }, 'strand agent stopping');
  await agent.stop();
  log.flush();
  // Everything is closed; should a library still hold a connection open, do not wait for it.
  setTimeout(() => process.exit(), 3_000).unref();
  return 0;
}
