// The alignment of two informer lists (src/policy/incremental/align.ts) and what it buys: a pod
// deleted from the middle of the cluster's list is one pod out for the incremental compiler, which
// then looks at no other pod object (issue 18: deletions proportional to the pod, not the cluster).
import { describe, expect, it } from 'vitest';
import { alignLists, copyInto } from '../../src/policy/incremental/align.ts';
import { IncrementalCompiler } from '../../src/policy/incremental/compiler.ts';
import { compilePolicy, type CompileInput, type PolicyPod } from '../../src/policy/index.ts';

const objs = (n: number) => Array.from({ length: n }, (_, i) => ({ i }));

describe('alignLists', () => {
  it('finds objects replaced in place, deleted anywhere and added at the end', () => {
    const prev = objs(10);
    const a = { i: 100 };
    const b = { i: 101 };
    // prev[2] replaced by a, prev[5] and prev[9] deleted, b added.
    const next = [prev[0], prev[1], a, prev[3], prev[4], prev[6], prev[7], prev[8], b];
    const r = alignLists(prev, next, new Set(prev), 10);
    expect(r?.ins).toEqual([a, b]);
    expect(r?.outs).toEqual([prev[2], prev[5], prev[9]]);
    expect(alignLists(prev, [...prev], new Set(prev), 0)).toEqual({ ins: [], outs: [] });
    expect(alignLists(prev, [], new Set(prev), 10)?.outs).toEqual(prev);
  });

  it('gives up on another order, a repeated object or more changes than allowed', () => {
    const prev = objs(6);
    const had = new Set(prev);
    expect(alignLists(prev, [prev[1], prev[0], ...prev.slice(2)], had, 100)).toBeUndefined();
    expect(alignLists(prev, [...prev, prev[3]], had, 100)).toBeUndefined();
    expect(alignLists(prev, [...prev.slice(0, 3), { i: 7 }, { i: 8 }], had, 3)).toBeUndefined();
  });
});

describe('the incremental compiler on a deletion', () => {
  it("looks at the deleted pod's object only, and equals compilePolicy", () => {
    const NS = 20;
    let specReads = 0;
    const pods: PolicyPod[] = [];
    for (let i = 0; i < 2_000; i++) {
      const spec = { nodeName: i % 10 === 0 ? 'n1' : 'n2', containers: [{ ports: [] }] };
      const pod = {
        metadata: { name: `p${i}`, namespace: `ns${i % NS}`, labels: { app: `a${i % 3}` } },
        status: { phase: 'Running', podIPs: [{ ip: `10.1.${Math.floor(i / 250)}.${i % 250}` }] },
      } as unknown as PolicyPod;
      Object.defineProperty(pod, 'spec', {
        get: () => {
          specReads++;
          return spec;
        },
      });
      pods.push(pod);
    }
    const input = (list: PolicyPod[]): CompileInput => ({
      nodeName: 'n1',
      nodeAddresses: ['192.168.0.1'],
      namespaces: Array.from({ length: NS }, (_, n) => ({
        metadata: { name: `ns${n}`, labels: { team: `t${n % 2}` } },
      })),
      pods: list,
      policies: Array.from({ length: NS }, (_, n) => ({
        metadata: { name: 'np', namespace: `ns${n}` },
        spec: {
          podSelector: { matchLabels: { app: 'a0' } },
          ingress: [{ from: [{ podSelector: { matchLabels: { app: 'a1' } } }, { namespaceSelector: {} }] }],
        },
      })),
      extraPodIps: new Map(),
    });
    const compiler = new IncrementalCompiler();
    const first = compiler.compile(input(pods));
    const ns0 = compiler.view?.podsByNs.get('ns0');
    // A remote pod and a local pod deleted from the middle of the list.
    const next = pods.filter((_, i) => i !== 777 && i !== 1_230);
    specReads = 0;
    const after = compiler.compile(input(next));
    expect(specReads).toBeLessThan(10);
    expect(after).toEqual(compilePolicy(input(next)));
    expect(after.pods.length).toBe(first.pods.length - 1);
    // A namespace without a deleted pod keeps its list.
    expect(ns0).toBeDefined();
    expect(compiler.view?.podsByNs.get('ns0')).toBe(ns0);
  });
});

describe('copyInto (the last list kept, refilled in place)', () => {
  it('gives a list equal to the source, reusing the buffer, never the source itself', () => {
    const a = [1, 2, 3, 4];
    const first = copyInto(undefined, a);
    expect(first).toEqual(a);
    expect(first).not.toBe(a);
    const b = [5, 6];
    const second = copyInto(first, b);
    expect(second).toBe(first);
    expect(second).toEqual([5, 6]);
    const c = [7, 8, 9, 10, 11];
    expect(copyInto(second, c)).toEqual(c);
    // The source's own array is copied, not returned: a caller may change it in place afterwards.
    const own = copyInto(c, c);
    expect(own).toEqual(c);
    expect(own).not.toBe(c);
    c.push(12);
    expect(own).toHaveLength(5);
  });
});
