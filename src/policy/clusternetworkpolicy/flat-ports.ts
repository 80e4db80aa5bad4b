// The port half of a flat ClusterNetworkPolicy tier (flat.ts): within one address class, which rule
// decides each (protocol, destination port), computed once instead of walking the class's rules per
// connection. The first rule in the class's order that covers a port wins; ports no rule covers fall
// through to the tier's fall-through.
import { PROTOCOLS, type PortRange, type Protocol } from '../types.ts';

/** What a rule contributes to an address: its numeric ports (or every port of every protocol), or the
 * (protocol, port) points of its egress named ports at that one address. */
export interface PortSpec {
  /** The rule's index in the flat tier's `rules` (evaluation order). */
  rule: number;
  ports: 'all' | readonly PortRange[];
}

/** Destination ports `from`..`to` (inclusive) of `protocol` decided by rule number `rule`. */
export interface PortSegment {
  protocol: Protocol;
  from: number;
  to: number;
  rule: number;
}

export interface PortDecisions {
  /** Sorted by protocol (PROTOCOLS' order), then port; disjoint; adjacent segments of one rule merged.
   * A port in no segment falls through. */
  ports: PortSegment[];
  /** The rule deciding packets of a protocol without ports (ICMP, …): the first whose ports are 'all'. */
  other: number | undefined;
}

const MAX_PORT = 65535;

/** First match per port segment over specs in evaluation order (rule index, then spec order). */
export function decidePorts(specs: readonly PortSpec[]): PortDecisions {
  const ports: PortSegment[] = [];
  for (const protocol of PROTOCOLS) ports.push(...decideProtocol(specs, protocol));
  const all = specs.find((s) => s.ports === 'all');
  return { ports, other: all?.rule };
}

function decideProtocol(specs: readonly PortSpec[], protocol: Protocol): PortSegment[] {
  const ranges = (s: PortSpec): readonly { from: number; to: number }[] =>
    s.ports === 'all' ? [{ from: 0, to: MAX_PORT }] : s.ports.filter((r) => r.protocol === protocol);
  // Elementary segments: a boundary at every range start and after every range end.
  const cuts = new Set<number>([0]);
  for (const s of specs)
    for (const r of ranges(s)) {
      cuts.add(r.from);
      if (r.to < MAX_PORT) cuts.add(r.to + 1);
    }
  const starts = [...cuts].sort((a, b) => a - b);
  const decided: (number | undefined)[] = new Array(starts.length).fill(undefined);
  let open = starts.length;
  // Paint in evaluation order: a segment takes the first rule that covers it, later ones skip it.
  for (const s of specs) {
    for (const r of ranges(s)) {
      for (let i = lowerBound(starts, r.from); i < starts.length && (starts[i] as number) <= r.to; i++) {
        if (decided[i] !== undefined) continue;
        decided[i] = s.rule;
        open--;
      }
    }
    if (open === 0) break;
  }
  const out: PortSegment[] = [];
  for (let i = 0; i < starts.length; i++) {
    const rule = decided[i];
    if (rule === undefined) continue;
    const from = starts[i] as number;
    const to = i + 1 < starts.length ? (starts[i + 1] as number) - 1 : MAX_PORT;
    const last = out[out.length - 1];
    if (last && last.rule === rule && last.to + 1 === from) last.to = to;
    else out.push({ protocol, from, to, rule });
  }
  return out;
}

/** The first index whose value is >= x (values sorted ascending). */
export function lowerBound(values: readonly number[], x: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((values[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The rule deciding `port` of `protocol` in one class's decisions, or undefined (fall through). */
export function portDecision(d: PortDecisions, protocol: Protocol | 'other', port: number): number | undefined {
  if (protocol === 'other') return d.other;
  let lo = 0;
  let hi = d.ports.length - 1;
  const order = (p: Protocol) => PROTOCOLS.indexOf(p);
  const want = order(protocol);
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const s = d.ports[mid] as PortSegment;
    const c = order(s.protocol) - want || (s.to < port ? -1 : s.from > port ? 1 : 0);
    if (c === 0) return s.rule;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}
