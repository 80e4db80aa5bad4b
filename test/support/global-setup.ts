// Runs once before the suite: the tests need root (network namespaces) and a built dist/strand.
// It also removes what an earlier, killed run may have left behind (names start with "stt"), and
// does so again at the end.
import { existsSync } from 'node:fs';
import { TEST_PREFIX } from './names.ts';
import { DIST } from './cni.ts';
import { trySh } from './sh.ts';

function sweep(): void {
  const ns = trySh('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0] ?? '');
  for (const name of ns) if (name.startsWith(TEST_PREFIX)) trySh('ip', ['netns', 'del', name]);
  const links = trySh('ip', ['-o', 'link', 'show']).stdout.split('\n');
  for (const line of links) {
    const name = line.split(': ')[1]?.split('@')[0];
    if (name?.startsWith(TEST_PREFIX)) trySh('ip', ['link', 'del', name]);
  }
}

export function setup(): () => void {
  if (process.getuid?.() !== 0) throw new Error('the test suite needs root: it creates network namespaces');
  if (!existsSync(`${DIST}/strand`)) throw new Error('dist/strand is missing: run npm run build (scripts/test.sh does)');
  sweep();
  return sweep;
}
