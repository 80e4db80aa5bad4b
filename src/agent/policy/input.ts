// The one builder of the NetworkPolicy compiler's input (issue 15): the informers' caches, the pods
// fetched by GET for a pod-start notice the informer has not shown yet, the notices' addresses, and
// this node's own addresses. The enforcer's passes, `strand status` and `strand explain` all compile
// from it, so they judge alike.
//
// A pod whose status names an address that is not one (podIP "999.1.1.1") keeps its other addresses
// and loses that one (the compiler skips it); it is said once per pod and value (issue 16 item 6:
// the README promises bad objects are logged and skipped), not on every pass.
import type { Logger } from '../../log.ts';
import type { CompiledPolicy, CompileInput, PolicyPod } from '../../policy/index.ts';
import { clusterPodOf } from '../../policy/cluster.ts';
import type { Clock } from '../clock.ts';
import type { ClusterCache } from '../../k8s/cluster-cache.ts';
import { anyMalformedPodIps, malformedPodIps, type PodInfo } from '../../k8s/objects.ts';
import { podKey, type PodStartNotices } from '../pod-notices.ts';

/** A pod fetched by GET is kept this long for the informer to show it. */
export const FETCHED_TTL_MS = 60_000;

export interface PolicyInputOptions {
  nodeName: string;
  cache: Pick<ClusterCache, 'pods' | 'namespaces' | 'networkPolicies' | 'clusterNetworkPolicies' | 'nodes'>;
  notices: PodStartNotices;
  /** This node's own addresses (node-addresses.ts), always allowed to its pods (R11). */
  nodeAddresses: () => string[];
  clock: Clock;
  log: Logger;
}

export class PolicyInput {
  private readonly opts: PolicyInputOptions;
  private readonly fetched = new Map<string, { pod: PodInfo; at: number }>();
  /** "namespace/name ip" of the bad addresses said already. */
  private readonly badIpsSaid = new Set<string>();
  /** The pods of the last build (a list of its own, never changed). */
  private lastPods: readonly PodInfo[] = [];

  constructor(opts: PolicyInputOptions) {
    this.opts = opts;
  }

  /** A pod the API served to a GET, for the informer to catch up with. */
  addFetched(pod: PodInfo): void {
    this.fetched.set(podKey(pod.metadata.namespace ?? '', pod.metadata.name), { pod, at: this.opts.clock.now() });
  }

  fetchedPod(key: string): PodInfo | undefined {
    return this.fetched.get(key)?.pod;
  }

  build(): CompileInput {
    const c = this.opts.cache;
    const now = this.opts.clock.now();
    const pods: PodInfo[] = [...c.pods.list()];
    for (const [key, f] of this.fetched) {
      const [namespace, name] = key.split('/') as [string, string];
      if (c.pods.get(name, namespace) || now - f.at > FETCHED_TTL_MS) {
        this.fetched.delete(key);
        continue;
      }
      pods.push({ ...f.pod, spec: { ...f.pod.spec, nodeName: f.pod.spec.nodeName ?? this.opts.nodeName } });
    }
    this.sayBadAddresses(pods, true);
    this.lastPods = pods;
    const extraPodIps = new Map<string, readonly string[]>();
    for (const [key, n] of this.opts.notices.list()) if (n.namespace && n.name) extraPodIps.set(key, n.ips);
    return { ...this.facts(), pods, extraPodIps };
  }

  /**
   * Everything the compiler reads but the pods and the notices' addresses: this node's facts and
   * every tier's policies. One place for build() and forPod(), so that a tier added to the one is in
   * the other (forPod once lacked the ClusterNetworkPolicies: a pod only a CNP isolates was bound with
   * no chain and answered open, issue 19).
   */
  private facts(): Omit<CompileInput, 'pods' | 'extraPodIps'> {
    const c = this.opts.cache;
    return {
      nodeName: this.opts.nodeName,
      nodeAddresses: this.opts.nodeAddresses(),
      namespaces: c.namespaces.list(),
      policies: c.networkPolicies.list(),
      clusterNetworkPolicies: c.clusterNetworkPolicies.list(),
      // For ClusterNetworkPolicy `nodes` peers (their labels and addresses).
      nodes: c.nodes.list(),
    };
  }

  /**
   * The input of the pod-start fast path (policy/bind.ts) for one pod: this node's facts, the
   * namespaces and every tier's policies, the pod (the informer's, else the one a GET fetched) and its notice's
   * addresses; not the cluster's other pods, which the bind never reads. Undefined when the pod is not
   * known. `last`: an input built since the last event, whose facts are taken instead of the caches'.
   */
  forPod(key: string, last?: CompileInput): { input: CompileInput; pod: PolicyPod } | undefined {
    const c = this.opts.cache;
    const [namespace, name] = key.split('/') as [string, string];
    const fetched = this.fetched.get(key)?.pod;
    const pod =
      c.pods.get(name, namespace) ??
      (fetched && { ...fetched, spec: { ...fetched.spec, nodeName: fetched.spec.nodeName ?? this.opts.nodeName } });
    if (!pod) return undefined;
    this.sayBadAddresses([pod]);
    const notice = this.opts.notices.get(key);
    const extraPodIps = new Map<string, readonly string[]>(notice ? [[key, notice.ips]] : []);
    // The informers' lists are copied on every call (1,000 policies, every namespace and node): the
    // caller's last input has the same ones when no event came since (the bind's condition). This
    // node's addresses are asked again: they change without an event, and the bind compares them.
    // Every field but the pods and notices, as build() took them from facts(): no tier left out.
    let facts: Omit<CompileInput, 'pods' | 'extraPodIps'>;
    if (last) {
      const { pods: _pods, extraPodIps: _extra, ...kept } = last;
      facts = { ...kept, nodeName: this.opts.nodeName, nodeAddresses: this.opts.nodeAddresses() };
    } else facts = this.facts();
    const input: CompileInput = { ...facts, pods: [], extraPodIps };
    return { input, pod };
  }

  private sayBadAddresses(pods: readonly PodInfo[], whole = false): void {
    // Every pod comes from slimPod (the informer's, or a GET's), which noted its bad addresses as it
    // slimmed it (k8s/objects.ts): when it never saw one, there is nothing to look at. Otherwise the
    // informers' list keeps an unchanged object in its place: one pointer comparison each, and a
    // look-up only for the objects that moved or are new.
    if (!anyMalformedPodIps()) return;
    const last = whole ? this.lastPods : [];
    for (let i = 0; i < pods.length; i++) {
      const pod = pods[i] as PodInfo;
      if (pod === last[i]) continue;
      for (const ip of malformedPodIps(pod) ?? []) this.sayBadAddress(pod, ip);
    }
  }

  private sayBadAddress(pod: PodInfo, ip: string): void {
    const pk = podKey(pod.metadata.namespace ?? '', pod.metadata.name);
    const said = `${pk} ${ip}`;
    if (this.badIpsSaid.has(said)) return;
    // Bounded: past this many, a bad address may be said again rather than remembered forever.
    if (this.badIpsSaid.size >= 10_000) this.badIpsSaid.clear();
    this.badIpsSaid.add(said);
    this.opts.log.warn(
      { pod: pk, podIP: ip },
      `pod ${pk} has a malformed address ${JSON.stringify(ip)}: NetworkPolicy skips that address`,
    );
  }
}

/**
 * The compiler reads the same: the informers replace an object on every change, so the same objects
 * in the same order (pointer comparisons, no serialisation) and the same notices and node addresses
 * mean the same result.
 */
export function sameInput(a: CompileInput, b: CompileInput): boolean {
  const same = <T>(x: readonly T[] | undefined, y: readonly T[] | undefined) =>
    x === y || (x !== undefined && y !== undefined && x.length === y.length && x.every((v, i) => v === y[i]));
  if (a.nodeName !== b.nodeName || !same(a.nodeAddresses, b.nodeAddresses)) return false;
  if (!same(a.pods, b.pods) || !same(a.policies, b.policies) || !same(a.namespaces, b.namespaces)) return false;
  if (!same(a.clusterNetworkPolicies, b.clusterNetworkPolicies) || !same(a.nodes, b.nodes)) return false;
  const ea = a.extraPodIps ?? new Map<string, readonly string[]>();
  const eb = b.extraPodIps ?? new Map<string, readonly string[]>();
  if (ea.size !== eb.size) return false;
  for (const [k, v] of ea) if (!same(v, eb.get(k))) return false;
  return true;
}

/**
 * The compiler's result is the same: sameInput, except that some pod objects were replaced by ones
 * the compiler sees alike (clusterPodOf: the same labels, addresses with the notices', named ports,
 * node). Kubelet's status update of a pod whose addresses the pod-start notice bound already is one:
 * a comparison, not a compile (issue 17). A pod the compiler skips (no address, host network, ended)
 * counts as alike only off this node: this node's waiting pods have their binds prepared by a pass.
 */
export function samePolicyInput(a: CompileInput, b: CompileInput): boolean {
  if (sameInput(a, b)) return true;
  if (a.pods.length !== b.pods.length || !sameInput({ ...a, pods: b.pods }, b)) return false;
  for (let i = 0; i < a.pods.length; i++) {
    const x = a.pods[i] as PolicyPod;
    const y = b.pods[i] as PolicyPod;
    if (x !== y && !samePolicyPod(x, y, a, b)) return false;
  }
  return true;
}

function samePolicyPod(x: PolicyPod, y: PolicyPod, a: CompileInput, b: CompileInput): boolean {
  if (x.metadata.name !== y.metadata.name || x.metadata.namespace !== y.metadata.namespace) return false;
  const cx = clusterPodOf(x, a.nodeName, a.extraPodIps);
  const cy = clusterPodOf(y, b.nodeName, b.extraPodIps);
  if (!cx || !cy) return !cx && !cy && x.spec.nodeName !== a.nodeName && y.spec.nodeName !== b.nodeName;
  const p = cx.pod;
  const q = cy.pod;
  if (cx.fromNotice !== cy.fromNotice || p.local !== q.local) return false;
  if (p.ips.length !== q.ips.length || p.ips.some((ip, i) => ip !== q.ips[i])) return false;
  if (p.ports.length !== q.ports.length) return false;
  for (let i = 0; i < p.ports.length; i++) {
    const u = p.ports[i];
    const v = q.ports[i];
    if (u?.name !== v?.name || u?.containerPort !== v?.containerPort || u?.protocol !== v?.protocol) return false;
  }
  const lx = Object.keys(p.labels);
  if (lx.length !== Object.keys(q.labels).length) return false;
  return lx.every((k) => Object.hasOwn(q.labels, k) && q.labels[k] === p.labels[k]);
}

/** This node's pods that `compiled` lacks and that wait for their ADD (no address yet): their binds
 * are prepared ahead (policy/bind.ts prepareBinds). */
export function waitingLocalPods(input: CompileInput, compiled: CompiledPolicy): PolicyPod[] {
  const have = new Set(compiled.pods.map((p) => podKey(p.namespace, p.name)));
  return input.pods.filter(
    (p) =>
      p.spec.nodeName === input.nodeName &&
      !p.spec.hostNetwork &&
      p.status.podIPs.length === 0 &&
      p.status.phase !== 'Succeeded' &&
      p.status.phase !== 'Failed' &&
      !have.has(podKey(p.metadata.namespace ?? '', p.metadata.name)),
  );
}
