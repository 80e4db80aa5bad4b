// When the cluster network's pass may stop without reading the kernel (src/agent/cluster-network.ts):
// only when the other Node objects are the very ones of the last clean pass.
import { describe, expect, it } from 'vitest';
import { sameOtherNodes } from '../../src/agent/cluster-network.ts';

const node = (name: string, podCIDR = '10.244.1.0/24') => ({ metadata: { name }, spec: { podCIDR } });

describe('sameOtherNodes', () => {
  const me = node('me');
  const a = node('a');
  const b = node('b');

  it('is true for the same objects in the same order, whatever became of this node', () => {
    expect(sameOtherNodes([me, a, b], [me, a, b], 'me')).toBe(true);
    // This node's own Node replaced (its annotations published): its part is the local key's.
    expect(sameOtherNodes([me, a, b], [node('me'), a, b], 'me')).toBe(true);
    expect(sameOtherNodes([], [], 'me')).toBe(true);
  });

  it('is false when another node was replaced, added, removed or moved', () => {
    expect(sameOtherNodes([me, a, b], [me, node('a'), b], 'me')).toBe(false);
    expect(sameOtherNodes([me, a], [me, a, b], 'me')).toBe(false);
    expect(sameOtherNodes([me, a, b], [me, a], 'me')).toBe(false);
    expect(sameOtherNodes([me, a, b], [me, b, a], 'me')).toBe(false);
    // Another node in this node's place (same length) is not this node.
    expect(sameOtherNodes([me, a], [b, a], 'me')).toBe(false);
    expect(sameOtherNodes([a, me], [a, b], 'me')).toBe(false);
  });
});
