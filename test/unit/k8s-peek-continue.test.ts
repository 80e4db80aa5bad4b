// The list's look-ahead (src/k8s/informer.ts): the next page's token read from the head of an
// answer's text, before it is parsed; anything not in the API server's shape gives no token (the
// informer then asks for the next page after parsing, as before).
import { describe, expect, it } from 'vitest';
import { peekContinue } from '../../src/k8s/informer.ts';

const list = (metadata: Record<string, unknown>, items: unknown[] = [{ metadata: { name: 'a' } }]) =>
  JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata, items });

describe('peekContinue', () => {
  it("reads the token of the API server's list head, as JSON.parse reads it", () => {
    const token = 'eyJydiI6MTIsImFmdGVyIjoiZGVmYXVsdC9wNDk5In0';
    const text = list({ resourceVersion: '12', continue: token, remainingItemCount: 700 });
    expect(peekContinue(text)).toBe(token);
    expect(peekContinue(text)).toBe((JSON.parse(text) as { metadata: { continue: string } }).metadata.continue);
  });

  it('gives nothing for the last page, an empty token, or a token with escapes', () => {
    expect(peekContinue(list({ resourceVersion: '12' }))).toBeUndefined();
    expect(peekContinue(list({ resourceVersion: '12', continue: '' }))).toBeUndefined();
    expect(peekContinue(list({ resourceVersion: '12', continue: 'a"b' }))).toBeUndefined();
  });

  it('ignores a "continue" inside the items, and metadata written after them', () => {
    expect(
      peekContinue(list({ resourceVersion: '1' }, [{ metadata: { name: 'x', labels: { continue: 'no' } } }])),
    ).toBe(undefined);
    const itemsFirst = JSON.stringify({ items: [], metadata: { continue: 'tok' } });
    expect(peekContinue(itemsFirst)).toBeUndefined();
    expect(peekContinue('not json')).toBeUndefined();
  });
});
