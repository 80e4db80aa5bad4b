// docs/architecture.md is the map of the code: every repository path it names in backticks must exist,
// so a move that forgets the map fails here rather than misleading the next reader.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const TOP_FOLDERS = /^(src|test|bench|scripts|bin|deploy|cni-conf|docs)\//;

/** `src/nft/{objects,fake}.ts` → both paths (nested braces too). */
function expand(path: string): string[] {
  const m = /\{([^{}]*)\}/.exec(path);
  if (!m) return [path];
  return m[1]!.split(',').flatMap((alt) => expand(path.slice(0, m.index) + alt + path.slice(m.index + m[0].length)));
}

describe('docs/architecture.md', () => {
  it('names only paths that exist', () => {
    const text = readFileSync(resolve(root, 'docs/architecture.md'), 'utf8');
    const named = [...text.matchAll(/`([^`\s]+)`/g)].map((m) => m[1]!).filter((t) => TOP_FOLDERS.test(t));
    expect(named.length).toBeGreaterThan(50);
    const missing = named
      .flatMap(expand)
      .map((p) => p.replace(/[:,.]+$/, ''))
      .filter((p) => !p.includes('*') && !existsSync(resolve(root, p)));
    expect(missing).toEqual([]);
  });
});
