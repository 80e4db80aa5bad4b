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
