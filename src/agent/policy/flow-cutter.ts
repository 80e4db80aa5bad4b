// The policy step's flow cutter (--policy-conntrack): after a change is applied, the conntrack entries
// of flows the new policy denies are deleted for the local pods whose policy changed; flows it still
// allows are left alone. Orig is the connection's first packet; its real destination (after a
// Service's DNAT) is the reply's source (R9). The entries a reply in flight re-makes the other way
// round are deleted by a second look shortly after (reply-cutter.ts).
import { Conntrack, describeTuple, IPPROTO, type ConntrackEntry } from '../../kernel/conntrack.ts';
import type { Logger } from '../../log.ts';
import {
  evaluatePolicy,
  type CompiledPolicy,
  type LocalPod,
  type PodDirection,
  type Protocol,
} from '../../policy/index.ts';
import { describeError } from '../../k8s/client.ts';
import { podKey } from '../pod-notices.ts';
import type { PolicyMetrics } from '../policy-metrics.ts';
import { scheduleReplyCuts } from './reply-cutter.ts';

export interface FlowCutterOptions {
  log: Logger;
  metrics: Pick<PolicyMetrics, 'conntrackDeleted' | 'conntrackErrors'>;
  /** Opens the conntrack socket (injected: a test cuts against a fake table). */
  open?: () => Pick<Conntrack, 'list' | 'get' | 'delete' | 'close'>;
}

/**
 * Cuts the flows `after` denies among those of the pods whose policy differs from `before` (all
 * local pods when there is no `before`: a policy may have changed while no agent ran). `bound`: the
 * change is a pod-start bind (policy/bind.ts) of these addresses, which adds their pods' chains and
 * puts the addresses in sets, so every verdict it changes has one of them at an end: only they are
 * looked for. `also`: addresses looked for as well (earlier binds' whose look waited).
 *
 * A pod whose address nobody held before still needs the look: packets sent to the address before
 * its rules were in passed the forward hook (no chain judged the address yet), made an unreplied
 * entry and wait in the neighbour queue while the pod's host end is down (the plugin keeps it down
 * until the answer); once the pod answers ARP they are delivered, its reply makes the entry
 * established, and the flow would go on past the new rules (test/e2e/cnp-guarantees.test.ts "never
 * reachable" caught a walk skipped for such addresses). The cut deletes those entries while they are
 * unreplied, and the reply cutter the one a reply re-makes.
 */
export function cutDeniedFlows(
  opts: FlowCutterOptions,
  before: CompiledPolicy | undefined,
  after: CompiledPolicy,
  bound?: Iterable<string>,
  also: Iterable<string> = [],
): void {
  const { log, metrics } = opts;
  const changed = bound
    ? new Set(bound)
    : before
      ? changedPodAddresses(before, after)
      : new Set(after.pods.flatMap((p) => p.ips));
  for (const ip of also) changed.add(ip);
  if (changed.size === 0) return;
  const started = performance.now();
  let ct: Pick<Conntrack, 'list' | 'get' | 'delete' | 'close'> | undefined;
  const cut: ConntrackEntry[] = [];
  let examined = 0;
  try {
    ct = (opts.open ?? (() => Conntrack.open()))();
    // Each family is a walk of the whole hash in the kernel: only the families of the addresses.
    const families = ([4, 6] as const).filter((f) => [...changed].some((ip) => ip.includes(':') === (f === 6)));
    for (const family of families) {
      for (const e of ct.list(family)) {
        const dst = e.reply.src;
        const protocol = protocolName(e.orig.proto);
        if (!protocol || e.reply.sport === undefined) continue;
        if (!changed.has(e.orig.src) && !changed.has(dst)) continue;
        examined++;
        const v = evaluatePolicy(after, { src: e.orig.src, dst, protocol, dport: e.reply.sport });
        if (v.allowed) continue;
        if (deleteEntry(opts, ct, e)) cut.push(e);
      }
    }
  } catch (err) {
    metrics.conntrackErrors.inc();
    log.warn({ err: describeError(err) }, `could not cut the flows a policy change denies: ${describeError(err)}`);
  } finally {
    ct?.close();
  }
  const deleted = cut.length;
  if (deleted > 0) metrics.conntrackDeleted.inc(deleted);
  // A reply in flight at the cut re-makes the flow the other way round: looked for again shortly.
  scheduleReplyCuts(
    {
      log,
      onDeleted: (n) => metrics.conntrackDeleted.inc(n),
      onError: () => metrics.conntrackErrors.inc(),
      ...(opts.open ? { open: opts.open } : {}),
    },
    cut,
  );
  if (examined > 0) {
    const ms = Math.round((performance.now() - started) * 10) / 10;
    log.info({ examined, deleted, ms }, 'conntrack entries of flows the policy change denies deleted');
  }
}

function deleteEntry(opts: FlowCutterOptions, ct: Pick<Conntrack, 'delete'>, e: ConntrackEntry): boolean {
  try {
    const gone = ct.delete(e);
    opts.log.debug({ flow: describeTuple(e.orig) }, 'deleted the conntrack entry of a denied flow');
    return gone;
  } catch (err) {
    opts.metrics.conntrackErrors.inc();
    opts.log.warn({ flow: describeTuple(e.orig), err: describeError(err) }, 'could not delete a conntrack entry');
    return false;
  }
}

function protocolName(proto: number): Protocol | undefined {
  return proto === IPPROTO.TCP ? 'TCP' : proto === IPPROTO.UDP ? 'UDP' : proto === IPPROTO.SCTP ? 'SCTP' : undefined;
}

/**
 * The addresses of local pods whose policy may judge a flow differently now: their own compiled rules
 * changed (any tier), or a peer set or named-port set their rules name changed its members. Each set
 * is compared once, whatever the number of pods naming it, and an object the model kept (the
 * pod-start bind keeps what it did not touch) is not compared at all: the work follows the sets and
 * rules, not local pods × cluster pods.
 */
export function changedPodAddresses(before: CompiledPolicy, after: CompiledPolicy): Set<string> {
  const out = new Set<string>();
  const old = new Map(before.pods.map((p) => [podKey(p.namespace, p.name), p]));
  const changedPeers = new Map<string, boolean>();
  const changedPorts = new Map<string, boolean>();
  const peerChanged = (id: string): boolean => {
    let v = changedPeers.get(id);
    if (v === undefined) {
      const a = before.peers.get(id);
      const b = after.peers.get(id);
      v =
        a !== b && (!a || !b || !sameList(a.v4, b.v4) || !sameList(a.v6, b.v6) || !sameList(a.intervals, b.intervals));
      changedPeers.set(id, v);
    }
    return v;
  };
  const portsChanged = (id: string): boolean => {
    let v = changedPorts.get(id);
    if (v === undefined) {
      const a = before.namedPorts.get(id);
      const b = after.namedPorts.get(id);
      v = a !== b && (!a || !b || JSON.stringify([a.v4, a.v6]) !== JSON.stringify([b.v4, b.v6]));
      changedPorts.set(id, v);
    }
    return v;
  };
  for (const p of after.pods) {
    const prev = old.get(podKey(p.namespace, p.name));
    const differs =
      !prev ||
      (prev !== p && (!sameList(prev.ips, p.ips) || rulesText(prev) !== rulesText(p))) ||
      directions(p).some((d) =>
        (d?.rules ?? []).some(
          (r) => (r.peers !== 'all' && r.peers.some(peerChanged)) || r.namedPorts.some(portsChanged),
        ),
      );
    if (differs) for (const ip of p.ips) out.add(ip);
  }
  return out;
}

function directions(p: LocalPod): (PodDirection | undefined)[] {
  return [p.ingress, p.egress, p.admin?.ingress, p.admin?.egress, p.baseline?.ingress, p.baseline?.egress];
}

function rulesText(p: LocalPod): string {
  return JSON.stringify(directions(p));
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
