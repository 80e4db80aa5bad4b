// The cluster the conntrack-cut tests judge flows in (flow-cutter, cut-queue): one namespace x on
// node n1 whose pods a NetworkPolicy isolates for ingress, and TCP flows between addresses.
import type { ConntrackEntry } from '../../src/kernel/conntrack.ts';
import type { NetworkPolicyInfo, PodInfo } from '../../src/k8s/objects.ts';
import type { CompileInput } from '../../src/policy/index.ts';

const TCP = 6;

/** A running pod of namespace x on n1. */
export const pod = (name: string, ip: string, app = name): PodInfo => ({
  metadata: { name, namespace: 'x', uid: `x-${name}`, labels: { app } },
  spec: { nodeName: 'n1', containers: [] },
  status: { phase: 'Running', podIPs: [{ ip }] },
});

const isolate: NetworkPolicyInfo = {
  metadata: { name: 'isolate', namespace: 'x' },
  spec: { podSelector: {}, policyTypes: ['Ingress'] },
};

/** The compile input: namespace x, its pods, and the policy isolating them all for ingress. */
export const input = (pods: PodInfo[]): CompileInput => ({
  nodeName: 'n1',
  nodeAddresses: ['198.18.0.11'],
  namespaces: [{ metadata: { name: 'x', labels: { 'kubernetes.io/metadata.name': 'x' } } }],
  pods,
  policies: [isolate],
});

/** A TCP flow src → dst:dport as conntrack lists it (its reply the other way round). */
export const flow = (src: string, dst: string, dport = 80, family: 4 | 6 = 4): ConntrackEntry => ({
  family,
  orig: { src, dst, proto: TCP, sport: 40000, dport },
  reply: { src: dst, dst: src, proto: TCP, sport: dport, dport: 40000 },
});

/**
 * An in-memory conntrack table behind the cutter's socket interface: `events` records each open,
 * list (with its family) and close; `failNextList` makes the next dump throw, as an interrupted one.
 */
export function fakeConntrack(entries: ConntrackEntry[]) {
  const table = [...entries];
  const events: string[] = [];
  let failNext = false;
  return {
    table,
    events,
    /** The families dumped, in order. */
    listed: () => events.filter((e) => e.startsWith('list ')).map((e) => Number(e.slice(5))),
    opened: () => events.filter((e) => e === 'open').length,
    failNextList: () => {
      failNext = true;
    },
    open: () => {
      events.push('open');
      return {
        list: (family: 4 | 6) => {
          events.push(`list ${family}`);
          if (failNext) {
            failNext = false;
            throw new Error('dump interrupted');
          }
          return table.filter((e) => e.family === family);
        },
        get: () => undefined,
        delete: (e: ConntrackEntry) => {
          const i = table.indexOf(e);
          if (i >= 0) table.splice(i, 1);
          return i >= 0;
        },
        close: () => events.push('close'),
      };
    },
  };
}
