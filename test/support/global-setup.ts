// Runs once before the suite: the tests need root (network namespaces) and a built dist/strand.
// It also removes what an earlier, killed run left behind (names start with "stt"), before and after
// the run, but only when no other test run is active: every run holds a shared flock on RUN_LOCK,
// and the sweep needs it exclusively, so concurrent runs never delete each other's namespaces.
import { closeSync, existsSync, openSync } from 'node:fs';
import { flock, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN } from '../../src/kernel/libc.ts';
import { DIST } from './cni.ts';
import { TEST_PREFIX } from './names.ts';
import { trySh } from './sh.ts';

const RUN_LOCK = '/run/strand-test-runs.lock';

function sweep(): void {
  const ns = trySh('ip', ['netns', 'list'])
    .stdout.split('\n')
    .map((l) => l.split(' ')[0] ?? '');
  for (const name of ns) if (name.startsWith(TEST_PREFIX)) trySh('ip', ['netns', 'del', name]);
  const links = trySh('ip', ['-o', 'link', 'show']).stdout.split('\n');
  for (const line of links) {
    const name = line.split(': ')[1]?.split('@')[0];
    if (name?.startsWith(TEST_PREFIX)) trySh('ip', ['link', 'del', name]);
  }
}

/** Sweeps if this is the only run; returns holding the shared lock either way. */
function sweepIfAlone(fd: number): void {
  if (flock(fd, LOCK_EX | LOCK_NB) === 0) sweep();
  flock(fd, LOCK_SH);
}

export function setup(): () => void {
  if (process.getuid?.() !== 0) throw new Error('the test suite needs root: it creates network namespaces');
  for (const exe of ['strand', 'cni/strand']) {
    if (!existsSync(`${DIST}/${exe}`))
      throw new Error(`dist/${exe} is missing: run npm run build (scripts/test.sh does)`);
  }
  const fd = openSync(RUN_LOCK, 'a');
  sweepIfAlone(fd);
  return () => {
    sweepIfAlone(fd);
    flock(fd, LOCK_UN);
    closeSync(fd);
  };
}
