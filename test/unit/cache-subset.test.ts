// The informer's subsets (src/k8s/subset.ts): the objects that match, kept as events come, with a
// version that moves only when the subset changes and one array while it does not.
import { describe, expect, it } from 'vitest';
import type { PodInfo } from '../../src/k8s/objects.ts';
import { CacheSubset } from '../../src/k8s/subset.ts';

const pod = (name: string, nodeName?: string): PodInfo =>
  ({
    metadata: { name, namespace: 'ns', resourceVersion: '1' },
    spec: { ...(nodeName ? { nodeName } : {}), containers: [] },
    status: { podIPs: [] },
  }) as unknown as PodInfo;

describe('CacheSubset', () => {
  it('keeps the matching objects as they are added, updated and deleted', () => {
    const s = new CacheSubset<PodInfo>((p) => p.spec.nodeName === 'n1');
    s.put(pod('a', 'n1'));
    s.put(pod('b', 'n2'));
    s.put(pod('c')); // not scheduled yet
    expect(s.list().map((p) => p.metadata.name)).toEqual(['a']);
    // Scheduled to this node: an update that makes it match.
    s.put(pod('c', 'n1'));
    expect(
      s
        .list()
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(['a', 'c']);
    // A watch's DELETED may carry metadata only.
    s.delete({ metadata: { name: 'a', namespace: 'ns' } } as unknown as PodInfo);
    expect(s.list().map((p) => p.metadata.name)).toEqual(['c']);
    // An update that stops matching leaves the subset.
    s.put(pod('c', 'n3'));
    expect(s.size).toBe(0);
  });

  it('moves its version only on a change and hands the same array while nothing changed', () => {
    const s = new CacheSubset<PodInfo>((p) => p.spec.nodeName === 'n1');
    const a = pod('a', 'n1');
    s.put(a);
    const v = s.version;
    const list = s.list();
    s.put(a); // the same object again (a relist keeps it)
    s.put(pod('x', 'n2')); // elsewhere
    s.delete(pod('y', 'n1')); // never held
    expect(s.version).toBe(v);
    expect(s.list()).toBe(list);
    s.put(pod('a', 'n1')); // a new object for the same pod
    expect(s.version).toBe(v + 1);
    expect(s.list()).not.toBe(list);
    s.clear();
    expect(s.list()).toEqual([]);
    expect(s.version).toBe(v + 2);
  });
});
