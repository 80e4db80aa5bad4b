// Step 1, node set-up: wait for this Node's pod CIDR; underlay and pod MTU; bridge and sysctls; the
// node state file and the CNI conflist (each rewritten only when it changes). The steps after it get
// this node's Node through the pass context once it is set up.
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { CHAINED_PLUGINS } from '../../contracts/conflist.ts';
import { planConflist, PluginVersionCache, type ConflistPlan } from '../../install/conflist-versions.ts';
import type { NetlinkSocket, OffloadSizes } from '../../kernel/index.ts';
import type { Logger } from '../../log.ts';
import type { Clock, Timer } from '../clock.ts';
import { agentSocketPath } from '../../contracts/agent-socket.ts';
import { conflistPath, ensureConflist } from '../cni-conflist.ts';
import type { AgentConfig } from '../config.ts';
import type { ClusterCache } from '../../k8s/cluster-cache.ts';
import type { NodeInfo } from '../../k8s/objects.ts';
import { nodePodCidrs } from '../node-addresses.ts';
import {
  desiredNodeState,
  detectUnderlay,
  ensureNodeState,
  podOffload,
  prepareHostNetwork,
  underlayFamily,
  UnderlayError,
  type Underlay,
} from '../node-setup.ts';
import { podMtu } from '../../datapath/mtu.ts';
import type { PassContext, Step } from './step.ts';
import { UnderlayWatch } from './underlay-watch.ts';

/** While the node is not set up, a log line saying why at most this often (unless the reason changes). */
export const WAITING_LOG_MS = 10_000;

export interface NodeSetupOptions {
  config: AgentConfig;
  cache: Pick<ClusterCache, 'nodes'>;
  log: Logger;
  clock: Clock;
  openNetlink: () => NetlinkSocket;
  /** A plugin changed in the CNI bin dir: a pass soon. */
  requestPass: () => void;
  /** The node state and conflist were written for the first time. */
  onSetUp: () => void;
}

export class NodeSetupStep implements Step {
  readonly name = 'node-setup';
  readonly inputs = ['this-node', 'underlay', 'plugins', 'resync'] as const;
  /** This node's Node as the last pass found it usable (undefined while set-up waits). */
  node: NodeInfo | undefined;
  /** What the steps after this one read of its result, as of the last pass. */
  private output = '';
  private readonly opts: NodeSetupOptions;
  /** The node state and the conflist are written (they are written together). */
  written = false;
  waitingFor: string | undefined = 'the first reconcile pass';
  underlay: Underlay | undefined;
  setUp: { podCidrs: string[]; mtu: number; offload: Record<string, number> | undefined } | undefined;
  /** What the last pass chose for the conflist from the plugins' answers. */
  conflistPlan: ConflistPlan | undefined;
  private lastWaitLog: { reason: string; at: number } | undefined;
  private warnedBrNetfilter = false;
  private missingPlugins = '';
  /** The plugins' VERSION answers, asked again only when a plugin's file changes. */
  private readonly pluginVersions = new PluginVersionCache();
  /** Changes in the CNI bin dir (a plugin upgraded, installed or removed) ask for a pass. */
  private binDirWatcher: FSWatcher | undefined;
  /** A plugin too slow to answer VERSION is asked again when its backoff ends (not at the next resync). */
  private slowPluginRetry: Timer | undefined;
  private closed = false;
  /** The socket the periodic underlay look uses. */
  private underlaySocket: NetlinkSocket | undefined;
  /** rtnetlink's notifications: the underlay is read again only after one that can move it. */
  private underlayWatch: UnderlayWatch | undefined;

  constructor(opts: NodeSetupOptions) {
    this.opts = opts;
  }

  ready(): string | undefined {
    return this.written ? undefined : `node state not written yet: waiting for ${this.waitingFor ?? 'the next pass'}`;
  }

  /** The conflist's plugins that did not answer or are left out (a /readyz reason each). */
  pluginProblems(): string[] {
    return this.conflistPlan?.problems ?? [];
  }

  close(): void {
    this.closed = true;
    this.binDirWatcher?.close();
    this.slowPluginRetry?.cancel();
    this.underlaySocket?.close();
    this.underlaySocket = undefined;
    this.underlayWatch?.close();
    this.underlayWatch = undefined;
  }

  /**
   * Whether the underlay's addresses or MTU differ from what the last pass saw (or it cannot be read):
   * an address change on it makes no API event, yet peers must learn it promptly. The underlay is
   * read only when rtnetlink announced a change that can move it (underlay-watch.ts): a look that
   * finds nothing announced is one recv(2). The resync's pass reads it anyway.
   */
  underlayMoved(): boolean {
    const seen = this.underlay;
    if (!seen || this.closed) return false;
    try {
      // One socket for every look (every few seconds, for the agent's life).
      this.underlaySocket ??= this.opts.openNetlink();
      if (this.underlayWatch?.moved(seen.index) === false) return false;
      // Subscribed before the read below, so a change after the read is announced at the next look.
      this.underlayWatch ??= this.openUnderlayWatch(this.underlaySocket.netns);
      return JSON.stringify(detectUnderlay(this.underlaySocket, this.opts.config.iface)) !== JSON.stringify(seen);
    } catch {
      this.underlaySocket?.close();
      this.underlaySocket = undefined;
      this.underlayWatch?.close();
      this.underlayWatch = undefined;
      // Gone or changed beyond recognition: the pass says what.
      return true;
    }
  }

  private openUnderlayWatch(netns: string | undefined): UnderlayWatch | undefined {
    try {
      return UnderlayWatch.open(netns);
    } catch (err) {
      // Only an optimisation: without it every look reads the underlay.
      this.opts.log.debug({ err: String(err) }, 'no rtnetlink notifications: the underlay is read at every look');
      return undefined;
    }
  }

  /** Sets the node up when it can and puts its Node in the context, else logs what it waits for. */
  async pass(ctx: PassContext): Promise<void> {
    const before = this.node;
    ctx.node = this.node = await this.setUpNode();
    // The steps after this one read the Node, the underlay, the pod MTU and offload, and the conflist
    // plan: when any of them changed they are due (the Node's identity says whether it changed: the
    // informer keeps the object of an update that changed nothing kept).
    const output = JSON.stringify([
      this.written,
      this.underlay,
      this.setUp,
      this.conflistPlan?.versions,
      this.conflistPlan?.chained,
    ]);
    if (this.node !== before || output !== this.output) ctx.due.add('node-set-up');
    this.output = output;
  }

  private async setUpNode(): Promise<NodeInfo | undefined> {
    const { config: c, log } = this.opts;
    const nodes = this.opts.cache.nodes;
    if (!nodes.synced) return this.waiting('the list of nodes from the API server');
    const node = nodes.get(c.nodeName);
    if (!node) return this.waiting(`node ${c.nodeName} to exist in the API (is --node-name right?)`);
    if (node.spec.podCIDRs.length === 0) {
      return this.waiting(
        `node ${c.nodeName} to get a pod CIDR (spec.podCIDR/podCIDRs; kube-controller-manager --allocate-node-cidrs assigns it)`,
      );
    }
    const pod = nodePodCidrs(node);
    if ('problem' in pod) return this.waiting(`a usable pod CIDR: ${pod.problem}`);

    let underlay: Underlay;
    let mtu: number;
    let offload: OffloadSizes | undefined;
    const nl = this.opts.openNetlink();
    try {
      try {
        underlay = detectUnderlay(nl, c.iface);
      } catch (err) {
        if (err instanceof UnderlayError) return this.waiting(`the underlay interface: ${err.message}`);
        throw err;
      }
      if (JSON.stringify(underlay) !== JSON.stringify(this.underlay)) {
        log.info(
          { iface: underlay.name, mtu: underlay.mtu, addresses: underlay.addresses, offload: underlay.offload },
          'underlay interface',
        );
        this.underlay = underlay;
      }
      mtu = c.mtu ?? podMtu(c.backend, underlay.mtu, underlayFamily(underlay));
      offload = podOffload(c.backend, c.bigTcp, underlay.offload);
      const host = prepareHostNetwork(nl, { bridge: c.bridge, mtu, podCIDRs: pod.cidrs, podOffload: offload }, log);
      if (host.brNetfilterMissing && !this.warnedBrNetfilter) {
        this.warnedBrNetfilter = true;
        log.warn(
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
    this.setUp = {
      podCidrs: pod.cidrs,
      mtu,
      offload: offload ? ({ ...offload } as Record<string, number>) : undefined,
    };
    if (await ensureNodeState(c.stateDir, state)) {
      const { podCIDRs, clusterCIDRs, podOffload: po, backend } = state;
      log.info(
        { podCIDRs, clusterCIDRs, mtu: state.mtu, podOffload: po, backend, path: c.stateDir },
        'wrote the node state',
      );
    }
    this.checkPluginsInstalled();
    const plan = await this.planConflist();
    if (await ensureConflist(c.cniConfDir, c, plan)) {
      log.info(
        {
          path: conflistPath(c.cniConfDir),
          cniVersion: plan.versions.cniVersion,
          cniVersions: plan.versions.cniVersions,
          plugins: ['strand', ...plan.chained],
        },
        'wrote the CNI configuration list',
      );
    }
    if (!this.written) {
      log.info({ podCIDRs: pod.cidrs, mtu, bridge: c.bridge }, 'node network set up');
      this.written = true;
      this.waitingFor = undefined;
      this.lastWaitLog = undefined;
      this.opts.onSetUp();
    }
    return node;
  }

  /**
   * Asks the conflist's plugins in the CNI bin dir for their versions (a plugin's file that did not
   * change since the last pass is not run again) and says once what changed in their answers: a
   * chained plugin left out is a warning (and a /readyz reason), a version change an info line.
   */
  private async planConflist(): Promise<ConflistPlan> {
    const { config, log } = this.opts;
    this.watchBinDir();
    const before = this.conflistPlan;
    const plan = await planConflist({
      binDirs: [config.cniBinDir],
      chained: CHAINED_PLUGINS,
      cache: this.pluginVersions,
    });
    this.conflistPlan = plan;
    this.slowPluginRetry?.cancel();
    this.slowPluginRetry = undefined;
    if (plan.retryInMs !== undefined && !this.closed) {
      this.slowPluginRetry = this.opts.clock.after(
        plan.retryInMs,
        () => {
          this.slowPluginRetry = undefined;
          this.opts.requestPass();
        },
        { unref: true },
      );
    }
    const answers = Object.fromEntries(plan.reports.map((r) => [r.type, { path: r.path, ...r.answer }]));
    if (JSON.stringify(before?.reports) !== JSON.stringify(plan.reports)) {
      const { cniVersion, cniVersions } = plan.versions;
      log.info(
        { cniBinDir: config.cniBinDir, answers, cniVersion, cniVersions },
        'CNI plugins asked for their versions',
      );
    }
    if (JSON.stringify(before?.problems) !== JSON.stringify(plan.problems)) {
      for (const problem of plan.problems) log.warn({ cniBinDir: config.cniBinDir, answers }, problem);
      if (before && before.problems.length > 0 && plan.problems.length === 0) {
        log.info(
          { plugins: ['strand', ...plan.chained] },
          'every CNI plugin of the configuration list answered and is in it',
        );
      }
    }
    return plan;
  }

  /**
   * Watches the CNI bin dir (inotify), so that a plugin replaced there makes a pass within the
   * debounce rather than at the next resync. Best effort: a dir that does not exist yet is watched
   * from a later pass, and the resync pass stats the plugins anyway.
   */
  private watchBinDir(): void {
    if (this.binDirWatcher || this.closed) return;
    try {
      const w = watch(this.opts.config.cniBinDir, { persistent: false }, () => this.opts.requestPass());
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
    const dir = this.opts.config.cniBinDir;
    const missing = ['strand', 'strand-ipam'].filter((p) => !existsSync(join(dir, p)));
    const key = missing.join();
    if (key === this.missingPlugins) return;
    this.missingPlugins = key;
    if (missing.length > 0)
      this.opts.log.warn(
        { cniBinDir: dir, missing },
        `CNI plugins missing from ${dir}: ${missing.join(', ')} (strand install puts them there)`,
      );
  }

  /** Records and (every WAITING_LOG_MS, or when the reason changes) logs what set-up waits for. */
  private waiting(reason: string): undefined {
    this.waitingFor = reason;
    const now = this.opts.clock.now();
    if (!this.lastWaitLog || this.lastWaitLog.reason !== reason || now - this.lastWaitLog.at >= WAITING_LOG_MS) {
      this.lastWaitLog = { reason, at: now };
      this.opts.log.info({ waitingFor: reason, nodeStateWritten: this.written }, `waiting for ${reason}`);
    }
    return undefined;
  }
}
