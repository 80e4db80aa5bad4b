// Step 5, the pods on this node: from the Pod informer, the IPAM store (which container and host veth
// hold an address) and the plugin's pod-start notices (pod-notices.ts, the one store), for `strand
// status`. A pod the plugin told of that the API does not show yet is listed from its notice while
// IPAM holds its addresses; what IPAM holds is handed to the notice store for its expiry rule.
import { ReservationReader } from '../../ipam/reservation-reader.ts';
import { storeDir, type Reservation } from '../../ipam/store.ts';
import { formatIp as formatIpamIp } from '../../ipam/range.ts';
import type { Logger } from '../../log.ts';
import { hostVethName } from '../../plugin/names.ts';
import { NETWORK_NAME } from '../cni-conflist.ts';
import type { AgentConfig } from '../config.ts';
import { podIPs, type PodInfo } from '../../k8s/objects.ts';
import { canonicalIp } from '../node-addresses.ts';
import type { PodStartNotices, StoredNotice } from '../pod-notices.ts';
import type { PassContext, Step } from './step.ts';

/** A pass that finds more new pods than this logs them in one line. */
const LOGGED_PODS = 20;

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

interface Attachment {
  containerId: string;
  ifname: string;
  hostVeth: string;
}

export interface LocalPodsOptions {
  config: AgentConfig;
  /** The pods the API schedules to this node: the Pod informer's subset (k8s/subset.ts), not all of them. */
  pods: { list(): readonly PodInfo[] };
  notices: PodStartNotices;
  log: Logger;
  /** Notices expired in this pass: the policy rules read their addresses (no API event says so). */
  onNoticesExpired?: () => void;
}

export class LocalPodsStep implements Step {
  readonly name = 'local-pods';
  readonly inputs = ['local-pods', 'notice', 'resync'] as const;
  private readonly opts: LocalPodsOptions;
  private pods = new Map<string, KnownPod>();
  private readonly reader: ReservationReader;
  /** The store as read in the last pass that looked (a pass reads it once, for every step). */
  private lastRead: { ctx: PassContext; reservations: readonly Reservation[]; version: number } | undefined;
  /** Attachments by address, built from the reader's list of `version`. */
  private attachmentsBuilt: { version: number; value: Map<string, Attachment> } | undefined;
  /** Each reservation's attachment: the reader keeps an unchanged file's object, so this is per file. */
  private readonly attachmentOf = new WeakMap<Reservation, [string, Attachment]>();

  constructor(opts: LocalPodsOptions) {
    this.opts = opts;
    this.reader = new ReservationReader(storeDir(opts.config.ipamDataDir, NETWORK_NAME));
  }

  /** The IPAM store's directory this step reads. */
  get storeDir(): string {
    return this.reader.dir;
  }

  /**
   * The strand network's reservations, read once per pass (the IPAM gauges' step reads them here
   * too) and, by the reader, only where the store changed.
   */
  reservations(ctx: PassContext): { reservations: readonly Reservation[]; version: number } {
    if (this.lastRead?.ctx !== ctx) this.lastRead = { ctx, ...this.reader.read() };
    return this.lastRead;
  }

  ready(): string | undefined {
    return undefined;
  }

  known(): KnownPod[] {
    return [...this.pods.values()];
  }

  /** IPAM's attachments of the strand network by address: which container and host veth have it. */
  private attachments(ctx: PassContext): Map<string, Attachment> {
    const { reservations, version } = this.reservations(ctx);
    if (this.attachmentsBuilt?.version === version) return this.attachmentsBuilt.value;
    const out = new Map<string, Attachment>();
    for (const r of reservations) {
      let entry = this.attachmentOf.get(r);
      if (!entry) {
        const ifname = r.ifname ?? 'eth0';
        entry = [
          canonicalIp(formatIpamIp(r.ip)),
          { containerId: r.containerID, ifname, hostVeth: hostVethName(NETWORK_NAME, r.containerID, ifname) },
        ];
        this.attachmentOf.set(r, entry);
      }
      out.set(entry[0], entry[1]);
    }
    this.attachmentsBuilt = { version, value: out };
    return out;
  }

  pass(ctx: PassContext): void {
    const { config, log, notices } = this.opts;
    const attachments = this.attachments(ctx);
    const isHeld = (n: StoredNotice) =>
      n.ips.some((ip) => attachments.get(canonicalIp(ip))?.containerId === n.containerId);
    // The held notices first, so that the store's expiry rule sees what IPAM holds now.
    const stored = notices.peek();
    notices.noteHeld(stored.filter(([, n]) => isHeld(n)).map(([key]) => key));
    const current = notices.list();
    if (current.length < stored.length) this.opts.onNoticesExpired?.();
    const byPod = new Map<string, StoredNotice>();
    for (const [, n] of current) if (n.namespace && n.name) byPod.set(`${n.namespace}/${n.name}`, n);

    const next = new Map<string, KnownPod>();
    for (const pod of this.opts.pods.list()) {
      if (pod.spec.nodeName !== config.nodeName || pod.spec.hostNetwork) continue;
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
    for (const [key, n] of current) {
      if (next.has(key) || !isHeld(n)) continue;
      next.set(key, {
        namespace: n.namespace ?? '',
        name: n.name ?? '',
        ...(n.uid ? { uid: n.uid } : {}),
        ips: n.ips.map(canonicalIp),
        ...(n.hostVeth ? { hostVeth: n.hostVeth } : {}),
        ...(n.containerId ? { containerId: n.containerId } : {}),
        source: 'plugin',
      });
    }

    const seen: KnownPod[] = [];
    for (const [key, pod] of next) {
      const before = this.pods.get(key);
      if (
        before &&
        before.ips.join() === pod.ips.join() &&
        before.hostVeth === pod.hostVeth &&
        before.source === pod.source
      )
        continue;
      seen.push(pod);
    }
    // A line a pod, as they come; a first list of hundreds (a node's pods when the agent starts) is
    // one line with the first LOGGED_PODS and the rest at debug: 500 lines written one by one held
    // the loop ~30 ms in the pass after the lists.
    const one = (pod: KnownPod, level: 'info' | 'debug') => {
      const { namespace, name, ips, hostVeth, containerId, source } = pod;
      log[level]({ namespace, name, ips, hostVeth, containerId, source }, 'pod on this node');
    };
    if (seen.length <= LOGGED_PODS) for (const pod of seen) one(pod, 'info');
    else {
      log.info(
        { pods: seen.length, first: seen.slice(0, LOGGED_PODS).map((p) => `${p.namespace}/${p.name}`) },
        `${seen.length} pods on this node (the first ${LOGGED_PODS} named; each at debug level)`,
      );
      if (log.isLevelEnabled('debug')) for (const pod of seen) one(pod, 'debug');
    }
    for (const [key, pod] of this.pods) {
      if (!next.has(key))
        log.info({ namespace: pod.namespace, name: pod.name, ips: pod.ips }, 'pod no longer on this node');
    }
    this.pods = next;
  }
}
