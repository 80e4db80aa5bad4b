// Runs commands for test set-up and inspection (tests may use ip, nft, ping; src/ may not).
import { execFileSync, spawnSync } from 'node:child_process';

export function sh(cmd: string, args: string[], opts: { input?: string } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Like sh, but returns the status instead of throwing. */
export function trySh(cmd: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function ipJson<T = unknown>(args: string[], netns?: string): T {
  const full = netns ? ['-n', netns, '-j', ...args] : ['-j', ...args];
  const out = sh('ip', full);
  return (out.trim() === '' ? [] : JSON.parse(out)) as T;
}
