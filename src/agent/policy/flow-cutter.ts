// The policy step's flow cutter (--policy-conntrack): after a change is applied, the conntrack entries
// of flows the new policy denies are deleted for the local pods whose policy changed; flows it still
// allows are left alone. Orig is the connection's first packet; its real destination (after a
// Service's DNAT) is the reply's source (R9).
import { Conntrack, describeTuple, IPPROTO, type ConntrackEntry } from '../../kernel/conntrack.ts';
import type { Logger } from '../../log.ts';
import { evaluatePolicy, type CompiledPolicy, type LocalPod, type Protocol } from '../../policy/index.ts';
import { describeError } from '../../k8s/client.ts';
import { podKey } from '../pod-notices.ts';
import type { PolicyMetrics } from '../policy-metrics.ts';

export interface FlowCutterOptions {
  log: Logger;
  metrics: Pick<PolicyMetrics, 'conntrackDeleted' | 'conntrackErrors'>;
  /** Opens the conntrack socket (injected: a test cuts against a fake table). */
  open?: () => Pick<Conntrack, 'list' | 'delete' | 'close'>;
}

/** Cuts the flows `after` denies among those of the pods whose policy differs from `before` (all
 * local pods when there is no `before`: a policy may have changed while no agent ran). */
export function cutDeniedFlows(opts: FlowCutterOptions, before: CompiledPolicy | undefined, after: CompiledPolicy): void {
  const { log, metrics } = opts;
  const changed = before ? changedPodAddresses(before, after) : new Set(after.pods.flatMap((p) => p.ips));
  if (changed.size === 0) return;
  const started = performance.now();
  let ct: Pick<Conntrack, 'list' | 'delete' | 'close'> | undefined;
  let deleted = 0;
  let examined = 0;
  try {
    ct = (opts.open ?? (() => Conntrack.open()))();
    for (const family of [4, 6] as const) {
      for (const e of ct.list(family)) {
        const protocol = protocolName(e.orig.proto);
        if (!protocol || e.reply.sport === undefined) continue;
        const dst = e.reply.src;
        if (!changed.has(e.orig.src) && !changed.has(dst)) continue;
        examined++;
        const v = evaluatePolicy(after, { src: e.orig.src, dst, protocol, dport: e.reply.sport });
        if (v.allowed) continue;
        if (deleteEntry(opts, ct, e)) deleted++;
      }
    }
  } catch (err) {
    metrics.conntrackErrors.inc();
    log.warn({ err: describeError(err) }, `could not cut the flows a policy change denies: ${describeError(err)}`);
  } finally {
    ct?.close();
  }
  if (deleted > 0) metrics.conntrackDeleted.inc(deleted);
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
 * The addresses of local pods whose policy may judge a flow differently now: their own compiled
 * directions changed, or a peer set or named-port set their rules name changed its members.
 */
export function changedPodAddresses(before: CompiledPolicy, after: CompiledPolicy): Set<string> {
  const out = new Set<string>();
  const old = new Map(before.pods.map((p) => [podKey(p.namespace, p.name), p]));
  const memberText = (c: CompiledPolicy, kind: 'peers' | 'namedPorts', id: string) =>
    JSON.stringify(kind === 'peers' ? c.peers.get(id) : c.namedPorts.get(id));
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
