// The plugin's pod-start notices (issue 15: one owner, one store, one expiry rule). The local-pods
// step lists a pod the API does not show yet from its notice; the policy input builder adds a notice's
// addresses to its pod before the kubelet reports them (R16); the pod-start gate records them. All
// three read this store, keyed by pod ("namespace/name", or "container/<id>" for a notice without a
// pod name), so a pod has one notice: the latest.
//
// The expiry rule: a notice is kept NOTICE_TTL_MS after it arrived, and after that only while its pod
// still needs it: the API shows the pod on this node without addresses, or (the API does not show the
// pod) IPAM still holds the notice's addresses for its container.
import type { Clock } from './clock.ts';
import type { PodInfo } from '../k8s/objects.ts';

/** How long a notice is kept whatever the API and IPAM say. */
export const NOTICE_TTL_MS = 60_000;

export interface StoredNotice {
  namespace?: string;
  name?: string;
  uid?: string;
  /** The pod's addresses, canonical. */
  ips: string[];
  containerId?: string;
  ifname?: string;
  hostVeth?: string;
  at: number;
}

export function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function noticeKey(n: {
  namespace?: string | undefined;
  name?: string | undefined;
  containerId?: string | undefined;
}): string {
  return n.namespace && n.name ? podKey(n.namespace, n.name) : `container/${n.containerId ?? ''}`;
}

export interface NoticeFacts {
  /** The pod as the API (informer) shows it. */
  apiPod(namespace: string, name: string): PodInfo | undefined;
}

export class PodStartNotices {
  private readonly clock: Clock;
  private readonly facts: NoticeFacts;
  private readonly byKey = new Map<string, StoredNotice>();
  /** Keys of the notices whose addresses IPAM held at the local-pods step's last look. */
  private held = new Set<string>();

  constructor(clock: Clock, facts: NoticeFacts) {
    this.clock = clock;
    this.facts = facts;
  }

  record(n: Omit<StoredNotice, 'at'>): StoredNotice {
    const stored: StoredNotice = { ...n, at: this.clock.now() };
    this.byKey.set(noticeKey(n), stored);
    return stored;
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  /** The stored notice of `key`, expired or not (list() is where expiry is decided). */
  get(key: string): StoredNotice | undefined {
    return this.byKey.get(key);
  }

  /** What IPAM holds, as the local-pods step read it: the keys of notices whose addresses it holds. */
  noteHeld(keys: Iterable<string>): void {
    this.held = new Set(keys);
  }

  /** Every stored notice, expired or not (for the local-pods step to say which IPAM holds). */
  peek(): [string, StoredNotice][] {
    return [...this.byKey];
  }

  /** The notices still in force (the expired ones are forgotten here, the one place that decides). */
  list(): [string, StoredNotice][] {
    const now = this.clock.now();
    for (const [key, n] of this.byKey) if (this.expired(key, n, now)) this.byKey.delete(key);
    return [...this.byKey];
  }

  private expired(key: string, n: StoredNotice, now: number): boolean {
    if (now - n.at <= NOTICE_TTL_MS) return false;
    const pod = n.namespace && n.name ? this.facts.apiPod(n.namespace, n.name) : undefined;
    if (pod) return pod.status.podIPs.length > 0;
    return !this.held.has(key);
  }
}
