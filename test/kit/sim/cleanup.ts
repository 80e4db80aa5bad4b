// Tearing simulated clusters down when their process ends: on SIGINT/SIGTERM, at exit, and after a
// simulator that died without tearing down (its state file in STATE_DIR; cli.ts down).
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SimCluster } from './cluster.ts';
import { trySh } from './exec.ts';
import { STATE_DIR } from './topology.ts';

/** The clusters of this process not yet destroyed. */
export const live = new Set<SimCluster>();
let exitHookInstalled = false;

export function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) c.destroySync();
  });
}

/**
 * On SIGINT/SIGTERM (Ctrl-C), destroys every live cluster and exits (130/143). For the CLI, the demo
 * and the benchmark; a test runner has its own teardown.
 */
export function installSignalCleanup(): void {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: tearing the simulated cluster down\n`);
      const code = sig === 'SIGINT' ? 130 : 143;
      Promise.allSettled([...live].map((c) => c.destroy())).finally(() => process.exit(code));
      setTimeout(() => process.exit(code), 15_000).unref();
    });
  }
}

/** Whether a process runs (a zombie, dead but not yet reaped, does not). */
function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Cleans up after simulators that died without tearing down (their state files in STATE_DIR):
 * only those whose process is gone, unless `all`. Returns the bases cleaned.
 */
export function cleanupLeftovers(opts: { all?: boolean; prefix?: string } = {}): string[] {
  if (!existsSync(STATE_DIR)) return [];
  const cleaned: string[] = [];
  for (const file of readdirSync(STATE_DIR)) {
    if (!file.endsWith('.json')) continue;
    const path = join(STATE_DIR, file);
    let state: { base: string; pid: number; root: string; namespaces: string[]; pids: number[] };
    try {
      state = JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      rmSync(path, { force: true });
      continue;
    }
    if (opts.prefix !== undefined && !state.base.startsWith(opts.prefix)) continue;
    if (processAlive(state.pid) && !opts.all) continue;
    // Only processes that still run inside this simulator's namespaces are killed: a recorded pid
    // may have been reused by an unrelated process since.
    const inOurNamespaces = new Set<number>();
    for (const ns of state.namespaces) {
      for (const p of trySh('ip', ['netns', 'pids', ns]).stdout.split('\n'))
        if (/^\d+$/.test(p.trim())) inOurNamespaces.add(Number(p));
    }
    for (const pid of inOurNamespaces) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const ns of [...state.namespaces].reverse()) trySh('ip', ['netns', 'del', ns]);
    if (state.root.startsWith(tmpdir())) rmSync(state.root, { recursive: true, force: true });
    rmSync(path, { force: true });
    cleaned.push(state.base);
  }
  return cleaned;
}
