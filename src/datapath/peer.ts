// From a Node object (plain JSON, as the informer or the API hands it) to a Peer, and from this node
// to the annotations it publishes. Pure: no kernel, no API calls; a Node that cannot be used yields a
// reason rather than an exception, so one malformed Node never stops the agent's loop.
import { familyOf, normalizeCidr, normalizeIp } from '../net/text.ts';
import { pauseEvery, runToEnd } from '../util/sliced.ts';
import { ANNOTATIONS, type BackendKind, type LocalNode, type Peer } from './types.ts';
import { isUsableVtepMac, normalizeMac } from './vtep-mac.ts';

export type PeerResult = { ok: true; peer: Peer } | { ok: false; name: string | undefined; reason: string };

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(name: string | undefined, reason: string): PeerResult {
  return { ok: false, name, reason };
}

/**
 * Reads a Node:
 * - name: metadata.name;
 * - pod CIDRs: spec.podCIDRs, else spec.podCIDR (at most one per family; host bits cleared);
 * - underlay addresses: the strand.dev/underlay-ip annotation the node's agent published, else
 *   status.addresses of type InternalIP (the first of each family), as kubelet reports them;
 * - VTEP MAC: strand.dev/vtep-mac (optional: a host-gw node has none);
 * - backend: strand.dev/backend (optional);
 * - createdAt: metadata.creationTimestamp (optional: it decides which of two overlapping Nodes wins).
 * A present but malformed annotation makes the Node unusable rather than silently ignored.
 */
export function peerFromNode(node: unknown): PeerResult {
  if (!isObject(node) || !isObject(node.metadata)) return fail(undefined, 'not a Node object (no metadata)');
  const meta = node.metadata;
  const name = typeof meta.name === 'string' && meta.name !== '' ? meta.name : undefined;
  if (name === undefined) return fail(undefined, 'metadata.name is missing');
  const annotations = isObject(meta.annotations) ? meta.annotations : {};
  const annotation = (key: string): string | undefined => {
    const v = annotations[key];
    return typeof v === 'string' ? v.trim() : undefined;
  };

  // Pod CIDRs.
  const spec = isObject(node.spec) ? node.spec : {};
  let rawCidrs: unknown[] = [];
  if (Array.isArray(spec.podCIDRs) && spec.podCIDRs.length > 0) rawCidrs = spec.podCIDRs;
  else if (typeof spec.podCIDR === 'string' && spec.podCIDR !== '') rawCidrs = [spec.podCIDR];
  if (rawCidrs.length === 0) return fail(name, 'no pod CIDR allocated yet (spec.podCIDR and spec.podCIDRs are empty)');
  const podCidrs: string[] = [];
  for (const raw of rawCidrs) {
    const cidr = typeof raw === 'string' ? normalizeCidr(raw) : undefined;
    if (cidr === undefined) return fail(name, `malformed pod CIDR ${JSON.stringify(raw)} in spec.podCIDRs`);
    if (podCidrs.some((c) => familyOf(c) === familyOf(cidr))) {
      return fail(name, `more than one IPv${familyOf(cidr)} pod CIDR in spec.podCIDRs (${JSON.stringify(rawCidrs)})`);
    }
    podCidrs.push(cidr);
  }

  // Underlay addresses.
  let underlayIps: string[];
  const published = annotation(ANNOTATIONS.underlayIp);
  if (published !== undefined) {
    const parsed = parseUnderlayIps(published);
    if (typeof parsed === 'string')
      return fail(name, `annotation ${ANNOTATIONS.underlayIp}=${JSON.stringify(published)}: ${parsed}`);
    underlayIps = parsed;
  } else {
    underlayIps = internalIps(node.status);
    if (underlayIps.length === 0) {
      return fail(
        name,
        `no underlay address: neither annotation ${ANNOTATIONS.underlayIp} nor an InternalIP in status.addresses`,
      );
    }
  }

  const peer: Peer = { name, underlayIps, podCidrs };
  const createdAt = creationTime(meta);
  if (createdAt !== undefined) peer.createdAt = createdAt;

  const mac = annotation(ANNOTATIONS.vtepMac);
  if (mac !== undefined) {
    if (!isUsableVtepMac(mac))
      return fail(name, `annotation ${ANNOTATIONS.vtepMac}=${JSON.stringify(mac)} is not a unicast MAC address`);
    peer.vtepMac = normalizeMac(mac);
  }
  const backend = annotation(ANNOTATIONS.backend);
  if (backend !== undefined && backend !== '') peer.backend = backend;
  return { ok: true, peer };
}

/** metadata.creationTimestamp of an API Node (text, or a Date from client-node), or the slim Node's createdAt. */
function creationTime(meta: Json): string | undefined {
  const t = meta.creationTimestamp ?? meta.createdAt;
  if (typeof t === 'string') return t;
  return t instanceof Date && !Number.isNaN(t.getTime()) ? t.toISOString() : undefined;
}

/** "198.18.0.2" or "198.18.0.2,2001:db8::2" → addresses, or what is wrong with it. */
export function parseUnderlayIps(text: string): string[] | string {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => p === '')) return 'expected one address per family, comma separated';
  const out: string[] = [];
  for (const p of parts) {
    const ip = normalizeIp(p);
    if (ip === undefined) return `${JSON.stringify(p)} is not an IP address`;
    if (out.some((o) => familyOf(o) === familyOf(ip))) return `more than one IPv${familyOf(ip)} address`;
    out.push(ip);
  }
  return out;
}

function internalIps(status: unknown): string[] {
  if (!isObject(status) || !Array.isArray(status.addresses)) return [];
  const out: string[] = [];
  for (const a of status.addresses) {
    if (!isObject(a) || a.type !== 'InternalIP' || typeof a.address !== 'string') continue;
    const ip = normalizeIp(a.address);
    if (ip !== undefined && !out.some((o) => familyOf(o) === familyOf(ip))) out.push(ip);
  }
  return out;
}

/** The annotations this node publishes for its peers. */
export function localAnnotations(
  kind: BackendKind,
  local: Pick<LocalNode, 'underlayIps'>,
  vtepMac?: string,
): Record<string, string> {
  const out: Record<string, string> = {
    [ANNOTATIONS.backend]: kind,
    [ANNOTATIONS.underlayIp]: local.underlayIps.join(','),
  };
  if (vtepMac !== undefined) out[ANNOTATIONS.vtepMac] = vtepMac;
  return out;
}

/** Every Node in the list that is usable as a peer, and why the others are not. */
export function peersFromNodes(nodes: readonly unknown[], localName?: string): PeersFromNodes {
  return runToEnd(peersFromNodesSteps(nodes, localName));
}

export interface PeersFromNodes {
  peers: Peer[];
  unusable: { name: string | undefined; reason: string }[];
}

/** Nodes between two points where peersFromNodesSteps may pause (a Node is a few µs of parsing). */
const NODES_PER_STEP = 64;
const pauseAt = pauseEvery(NODES_PER_STEP);

/** peersFromNodes, pausing every NODES_PER_STEP Nodes (drainSliced gives the loop back there). */
export function* peersFromNodesSteps(nodes: readonly unknown[], localName?: string): Generator<void, PeersFromNodes> {
  const peers: Peer[] = [];
  const unusable: { name: string | undefined; reason: string }[] = [];
  for (const [i, node] of nodes.entries()) {
    if (pauseAt(i)) yield;
    const r = peerFromNode(node);
    if (r.ok) {
      if (r.peer.name !== localName) peers.push(r.peer);
    } else if (r.name === undefined || r.name !== localName) {
      unusable.push({ name: r.name, reason: r.reason });
    }
  }
  return { peers, unusable };
}
