// The peers and egress named ports that compiled rules name, shared by every tier: a rule names a
// peer by the id of what it means (so two rules, of any tier, with the same peer share one set), and
// only the peers some local pod's rule names are resolved against the cluster.
import { knownFamily as familyOf } from '../net/text.ts';
import { addressValue, cidrInterval, intervalToPrefixes, subtract, type Interval } from './cidr.ts';
import { byText, portProtocol, type ClusterPod, type ClusterView } from './cluster.ts';
import { stableId } from './names.ts';
import { selectorMatches } from './selector.ts';
import type { CompiledRule, NamedPort, NamedPortElement, NamedPortSet, PeerMeaning, PeerSet } from './types.ts';

/** Peer ids, memoised on the parsed (and itself memoised) meaning. */
const peerIds = new WeakMap<PeerMeaning, string>();
/** Named-port set ids by peer id, memoised on the ports list (ClusterNetworkPolicy rules are kept
 * across compiles and registered again at each: clusternetworkpolicy/compile.ts). */
const namedPortIds = new WeakMap<readonly NamedPort[], Map<string, string>>();

/** The id of a peer (its meaning's hash), memoised on the meaning. */
function peerId(meaning: PeerMeaning): string {
  let id = peerIds.get(meaning);
  if (id === undefined) {
    id = stableId(meaning);
    peerIds.set(meaning, id);
  }
  return id;
}

export interface NamedPortDef {
  peer?: string;
  ports: NamedPort[];
}

/** What the rules of one compile name; resolved once every tier has compiled. */
export class PeerRegistry {
  private readonly meanings = new Map<string, PeerMeaning>();
  private readonly namedPortDefs = new Map<string, NamedPortDef>();

  /** The id of a peer, registered for resolution. */
  peer(meaning: PeerMeaning): string {
    const id = peerId(meaning);
    this.meanings.set(id, meaning);
    return id;
  }

  /** The id of a set of egress named ports resolved on the pods `peer` matches (undefined: any pod). */
  namedPorts(peer: string | undefined, ports: NamedPort[]): string {
    const def = peer === undefined ? { ports } : { peer, ports };
    let byPeer = namedPortIds.get(ports);
    if (!byPeer) {
      byPeer = new Map();
      namedPortIds.set(ports, byPeer);
    }
    // A peer id is a hash, never empty: '' stands for "any pod".
    let id = byPeer.get(peer ?? '');
    if (id === undefined) {
      id = stableId(def);
      byPeer.set(peer ?? '', id);
    }
    this.namedPortDefs.set(id, def);
    return id;
  }

  /** What was registered: peer meanings and named-port definitions by id (the incremental compiler
   * keeps them for the rules it reuses). */
  get registered(): { meanings: ReadonlyMap<string, PeerMeaning>; namedPorts: ReadonlyMap<string, NamedPortDef> } {
    return { meanings: this.meanings, namedPorts: this.namedPortDefs };
  }

  resolve(view: ClusterView): { peers: Map<string, PeerSet>; namedPorts: Map<string, NamedPortSet> } {
    const peers = new Map<string, PeerSet>();
    const peerPods = new Map<string, ClusterPod[]>();
    for (const id of [...this.meanings.keys()].sort(byText)) {
      const meaning = this.meanings.get(id) as PeerMeaning;
      if (meaning.kind === 'pods') {
        const matched = podsOf(view, meaning);
        peerPods.set(id, matched);
        const ips = [...new Set(matched.flatMap((p) => p.ips))].sort(byText);
        const v4 = ips.filter((ip) => familyOf(ip) === 4);
        peers.set(id, { id, meaning, v4, v6: ips.filter((ip) => familyOf(ip) === 6), intervals: [] });
      } else if (meaning.kind === 'nodes') {
        const ips = [
          ...new Set(view.nodes.filter((n) => selectorMatches(meaning.nodeSelector, n.labels)).flatMap((n) => n.ips)),
        ];
        ips.sort(byText);
        const v4 = ips.filter((ip) => familyOf(ip) === 4);
        peers.set(id, { id, meaning, v4, v6: ips.filter((ip) => familyOf(ip) === 6), intervals: [] });
      } else {
        peers.set(id, { id, meaning, v4: [], v6: [], intervals: blockIntervals(meaning).flatMap(intervalToPrefixes) });
      }
    }
    const namedPorts = new Map<string, NamedPortSet>();
    for (const id of [...this.namedPortDefs.keys()].sort(byText)) {
      const def = this.namedPortDefs.get(id) as NamedPortDef;
      namedPorts.set(id, this.resolveNamedPorts(view, id, def, peerPods));
    }
    return { peers, namedPorts };
  }

  /** R10: egress names resolve on each destination pod the peer matches (or any pod). */
  private resolveNamedPorts(
    view: ClusterView,
    id: string,
    def: NamedPortDef,
    peerPods: Map<string, ClusterPod[]>,
  ): NamedPortSet {
    const meaning = def.peer === undefined ? undefined : this.meanings.get(def.peer);
    const allPods = () => [...view.podsByNs.values()].flat();
    let candidates: ClusterPod[];
    let inBlock: (ip: string) => boolean = () => true;
    if (meaning === undefined) candidates = allPods();
    else if (meaning.kind === 'pods') candidates = peerPods.get(def.peer as string) ?? [];
    else if (meaning.kind === 'nodes')
      candidates = []; // a node has no named ports
    else {
      // An ipBlock destination that is a pod resolves the name on that pod (D23); other addresses
      // have no named ports.
      const ivs = blockIntervals(meaning);
      inBlock = (ip) => {
        const v = addressValue(ip);
        return v !== undefined && ivs.some((iv) => iv.family === v.family && iv.first <= v.value && v.value <= iv.last);
      };
      candidates = allPods();
    }
    const elements = new Map<string, NamedPortElement>();
    for (const p of candidates) {
      for (const cp of p.ports) {
        const protocol = portProtocol(cp.protocol);
        if (protocol === undefined || !def.ports.some((n) => n.name === cp.name && n.protocol === protocol)) continue;
        for (const address of p.ips) {
          if (!inBlock(address)) continue;
          elements.set(`${address} ${protocol} ${cp.containerPort}`, { address, protocol, port: cp.containerPort });
        }
      }
    }
    const sorted = [...elements.values()].sort(
      (a, b) => byText(a.address, b.address) || byText(a.protocol, b.protocol) || a.port - b.port,
    );
    return {
      id,
      ...(def.peer !== undefined ? { peer: def.peer } : {}),
      ports: def.ports,
      v4: sorted.filter((e) => familyOf(e.address) === 4),
      v6: sorted.filter((e) => familyOf(e.address) === 6),
    };
  }
}

function podsOf(view: ClusterView, m: Extract<PeerMeaning, { kind: 'pods' }>): ClusterPod[] {
  const selected = (ns: string) =>
    m.namespaceSelector !== undefined && selectorMatches(m.namespaceSelector, view.labelsOfNs(ns));
  const namespaces = m.namespace !== undefined ? [m.namespace] : view.namespaceNames.filter(selected);
  const out: ClusterPod[] = [];
  for (const ns of namespaces) {
    for (const p of view.podsByNs.get(ns) ?? []) if (selectorMatches(m.podSelector, p.labels)) out.push(p);
  }
  return out;
}

function blockIntervals(m: Extract<PeerMeaning, { kind: 'ipBlock' }>): Interval[] {
  const cidr = cidrInterval(m.cidr) as Interval;
  return subtract(
    cidr,
    m.except.map((e) => cidrInterval(e) as Interval),
  );
}

/** The peer and named-port ids a rule list names, each once; memoised on the list (kept across
 * compiles and shared by the pods the same policies select, so each list is walked once). */
const ruleListIdsMemo = new WeakMap<readonly CompiledRule[], { peers: string[]; namedPorts: string[] }>();
export function ruleListIds(rules: readonly CompiledRule[]): { peers: string[]; namedPorts: string[] } {
  let ids = ruleListIdsMemo.get(rules);
  if (!ids) {
    const peers = new Set<string>();
    const namedPorts = new Set<string>();
    for (const r of rules) {
      if (r.peers !== 'all') for (const id of r.peers) peers.add(id);
      for (const id of r.namedPorts) namedPorts.add(id);
    }
    ids = { peers: [...peers], namedPorts: [...namedPorts] };
    ruleListIdsMemo.set(rules, ids);
  }
  return ids;
}
