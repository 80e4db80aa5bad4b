// The flow cutter's choice of what to walk (flow-cutter.ts, conntrack-record.ts): the first cut looks
// at the whole table and starts the record; a pod-start bind looks only at its pods' addresses, in
// their family only, and not at all at an address the record shows no entry can carry.
import { describe, expect, it } from 'vitest';
import { ConntrackRecord } from '../../src/agent/policy/conntrack-record.ts';
import { cutDeniedFlows } from '../../src/agent/policy/flow-cutter.ts';
import type { ConntrackEntry } from '../../src/kernel/conntrack.ts';
import type { NetworkPolicyInfo, PodInfo } from '../../src/k8s/objects.ts';
import { silentLogger } from '../../src/log.ts';
import { compilePolicy, type CompileInput } from '../../src/policy/index.ts';

const TCP = 6;
const pod = (name: string, ip: string, app: string): PodInfo => ({
  metadata: { name, namespace: 'x', uid: `x-${name}`, labels: { app } },
  spec: { nodeName: 'n1', containers: [] },
  status: { phase: 'Running', podIPs: [{ ip }] },
});
// x/a and x/new are isolated for ingress; nothing allows x/peer in.
const isolate: NetworkPolicyInfo = {
  metadata: { name: 'isolate', namespace: 'x' },
  spec: { podSelector: {}, policyTypes: ['Ingress'] },
};
const input = (pods: PodInfo[]): CompileInput => ({
  nodeName: 'n1',
  nodeAddresses: ['198.18.0.11'],
  namespaces: [{ metadata: { name: 'x', labels: { 'kubernetes.io/metadata.name': 'x' } } }],
  pods,
  policies: [isolate],
});
const flow = (src: string, dst: string, dport: number, family: 4 | 6 = 4): ConntrackEntry => ({
  family,
  orig: { src, dst, proto: TCP, sport: 40000, dport },
  reply: { src: dst, dst: src, proto: TCP, sport: dport, dport: 40000 },
});

function fakeConntrack(entries: ConntrackEntry[]) {
  const table = [...entries];
  const listed: number[] = [];
  let opened = 0;
  return {
    table,
    listed,
    opened: () => opened,
    open: () => {
      opened++;
      return {
        list: (family: 4 | 6) => {
          listed.push(family);
          return table.filter((e) => e.family === family);
        },
        get: () => undefined,
        delete: (e: ConntrackEntry) => {
          const i = table.indexOf(e);
          if (i >= 0) table.splice(i, 1);
          return i >= 0;
        },
        close: () => {},
      };
    },
  };
}

const metrics = { conntrackDeleted: { inc: () => {} }, conntrackErrors: { inc: () => {} } } as never;

describe('cutDeniedFlows: what it walks', () => {
  it('starts the record at the first cut, then walks nothing for a bind of a clean address and one family for another', () => {
    const a = pod('a', '10.244.1.2', 'a');
    // An entry of a pod gone before the agent's first look, whose address the next pod gets.
    const stale = flow('10.244.2.9', '10.244.1.7', 80);
    const ct = fakeConntrack([flow('10.244.2.9', '10.244.1.2', 80), stale]);
    const record = new ConntrackRecord();
    const opts = { log: silentLogger, metrics, open: ct.open, record };
    const first = compilePolicy(input([a]));
    expect(record.clean('10.244.1.9')).toBe(false); // nothing is clean before the first look
    cutDeniedFlows(opts, undefined, first);
    expect(ct.listed).toEqual([4, 6]);
    expect(ct.table).toEqual([stale]); // x/a is isolated: its flow from x/peer is cut
    record.held(first.pods.flatMap((p) => p.ips));
    expect(record.clean('10.244.1.2')).toBe(false);
    expect(record.clean('10.244.1.7')).toBe(false);
    expect(record.clean('10.244.1.9')).toBe(true);

    // A bind of an address no entry carried and no pod held: no socket, no walk.
    const fresh = compilePolicy(input([a, pod('new', '10.244.1.9', 'n')]));
    const opened = ct.opened();
    cutDeniedFlows(opts, first, fresh, ['10.244.1.9']);
    expect(ct.opened()).toBe(opened);

    // A bind of the stale entry's address: its family only, and the stale flow into it is cut.
    ct.listed.length = 0;
    const reused = compilePolicy(input([a, pod('new', '10.244.1.9', 'n'), pod('re', '10.244.1.7', 'n')]));
    cutDeniedFlows(opts, fresh, reused, ['10.244.1.7']);
    expect(ct.listed).toEqual([4]);
    expect(ct.table).toEqual([]);
  });

  it('walks as before without a record: every bound address, nothing is clean', () => {
    const a = pod('a', '10.244.1.2', 'a');
    const ct = fakeConntrack([flow('10.244.2.9', '10.244.1.9', 80), flow('fd00::9', 'fd00::2', 80, 6)]);
    const before = compilePolicy(input([a]));
    const after = compilePolicy(input([a, pod('new', '10.244.1.9', 'n')]));
    cutDeniedFlows({ log: silentLogger, metrics, open: ct.open }, before, after, ['10.244.1.9']);
    expect(ct.listed).toEqual([4]);
    expect(ct.table.map((e) => e.family)).toEqual([6]);
  });
});
