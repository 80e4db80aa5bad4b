// Which CNI versions 10-strand.conflist may carry, and which of its chained plugins it may name, on
// this node: every plugin of the list is asked for its versions (CNI_COMMAND=VERSION, as a runtime
// asks, CNI 1.1 §2 "VERSION"), and the list says only what all of them speak. A runtime runs the
// whole chain at one version; a chained plugin that does not speak it fails every ADD and DEL with
// "incompatible CNI versions" (portmap of the reference plugins 1.1.1, which Debian 12 and Ubuntu
// 22.04/24.04 ship, stops at 1.0.0).
//
// How a runtime picks the version (libcni ConfListFromBytes, 1.2 and later): the highest of
// {cniVersion} ∪ cniVersions that libcni itself implements (1.1.0). libcni before 1.2 (containerd
// 1.6 and 1.7, CRI-O before 1.30) ignores cniVersions and runs cniVersion, and cannot read a result
// newer than 1.0.0 ("unsupported CNI result version"). So:
//   cniVersions = the versions Strand offers that every plugin supports (a new runtime's choice is
//                 their highest, e.g. 1.1.0 with reference plugins 1.5+);
//   cniVersion  = the highest of those that is at most 1.0.0 (what an older runtime runs).
//
// A chained plugin that is missing from the bin dir(s), does not answer VERSION, or shares no
// version with the others is left out of the list, with a problem the agent logs and puts in
// /readyz: the pods still start (the runtime would fail every pod on a plugin it cannot find),
// only what that plugin adds is missing (portmap: hostPort), as it is on a node whose list never
// had it. The strand plugin itself is never left out.
//
// The answers are cached per file, keyed by its device, inode, size, mtime and ctime: a pass stats
// each plugin and runs VERSION only when a file changed (an upgrade of the reference plugins
// replaces the file, so at least its inode or mtime differs).
import type { ListVersions } from '../contracts/conflist.ts';
import { spawn } from 'node:child_process';
import { statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { compareVersions, CURRENT_VERSION, isSemver, SUPPORTED_VERSIONS } from '../cni/versions.ts';

/** The versions Strand's conflist offers (0.3.0 is implemented but no runtime needs it). */
export const OFFERED_VERSIONS = ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
/** The newest version a runtime without cniVersions support (libcni before 1.2) can run. */
export const LEGACY_RUNTIME_MAX = '1.0.0';
/** How long a plugin may take to answer VERSION (it only prints a constant). */
export const VERSION_TIMEOUT_MS = 2_000;
/** A plugin that failed to answer is asked again after this long even if its file did not change. */
export const FAILED_ANSWER_TTL_MS = 60_000;
/** A plugin too slow to answer (the node busy starting pods, say) is asked again after 2 s, then 4, 8,
 * … up to FAILED_ANSWER_TTL_MS, each time allowed twice as long (up to 8 s): one slow exec at boot
 * must not keep the node not ready for a minute. */
export const SLOW_ANSWER_RETRY_MS = 2_000;
const SLOW_ANSWER_MAX_TIMEOUT_MS = 8_000;
/** The most a VERSION answer may be; anything longer is not one. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** What one plugin said, or why it said nothing usable. */
/** `slow`: the plugin did not answer in time (a loaded node, not a broken plugin): asked again soon. */
export type PluginAnswer = { versions: string[] } | { problem: string; slow?: true };

export interface PluginReport {
  type: string;
  /** The file that answered (undefined: not found in any bin dir). */
  path: string | undefined;
  answer: PluginAnswer;
}

export interface ConflistPlan {
  versions: ListVersions;
  /** The chained plugins (after strand) the list names, in order. */
  chained: string[];
  /** One line per plugin left out or not answering, for the log and /readyz. */
  problems: string[];
  reports: PluginReport[];
  /** Some plugin was too slow to answer: plan again after this long (PluginVersionCache's backoff). */
  retryInMs?: number;
}

/**
 * The list's versions and chained plugins from the plugins' answers (pure). `strand` is the first
 * plugin's answer (its own code's versions stand in when it did not answer); each chained plugin is
 * kept while some offered version remains that it and everything kept before it support.
 */
export function chooseListVersions(strand: PluginReport, chained: readonly PluginReport[]): ConflistPlan {
  const problems: string[] = [];
  let common: string[] = [...OFFERED_VERSIONS];
  const own = strand.answer;
  if ('versions' in own) common = common.filter((v) => own.versions.includes(v));
  else
    problems.push(
      `CNI plugin ${strand.type} (${strand.path ?? 'not installed'}): ${own.problem}; assuming the versions this build implements`,
    );
  if (common.length === 0) {
    problems.push(
      `CNI plugin ${strand.type} (${strand.path}) supports none of ${OFFERED_VERSIONS.join(', ')}; assuming the versions this build implements`,
    );
    common = [...OFFERED_VERSIONS];
  }
  const kept: string[] = [];
  for (const r of chained) {
    if (!('versions' in r.answer)) {
      problems.push(
        `CNI plugin ${r.type} ${r.path === undefined ? r.answer.problem : `(${r.path}) ${r.answer.problem}`}: left out of the configuration list, so what it does (${chainedRole(r.type)}) is missing on this node`,
      );
      continue;
    }
    const supported = r.answer.versions;
    const both = common.filter((v) => supported.includes(v));
    if (both.length === 0) {
      problems.push(
        `CNI plugin ${r.type} (${r.path}) supports ${supported.join(', ')}, none of ${common.join(', ')}: left out of the configuration list, so what it does (${chainedRole(r.type)}) is missing on this node`,
      );
      continue;
    }
    common = both;
    kept.push(r.type);
  }
  common.sort(compareVersions);
  const legacy = common.filter((v) => compareVersions(v, LEGACY_RUNTIME_MAX) <= 0);
  const cniVersion = (legacy.length > 0 ? legacy : common).at(-1) as string;
  return { versions: { cniVersion, cniVersions: common }, chained: kept, problems, reports: [strand, ...chained] };
}

/** What a chained plugin adds, for the messages. */
function chainedRole(type: string): string {
  return type === 'portmap' ? 'hostPort mappings' : `the ${type} plugin's work`;
}

/**
 * Parses a VERSION answer as libcni's PluginDecoder does: cniVersion is required; without
 * supportedVersions only a 0.2.0 answer means something (0.1.0 and 0.2.0). Versions that are no
 * semantic version are dropped.
 */
export function parseVersionAnswer(stdout: string): PluginAnswer {
  const shape = z.object({ cniVersion: z.string().min(1), supportedVersions: z.array(z.string()).optional() });
  let parsed: ReturnType<typeof shape.safeParse>;
  try {
    parsed = shape.safeParse(JSON.parse(stdout));
  } catch {
    return { problem: `answered VERSION with something that is not JSON: ${JSON.stringify(stdout.slice(0, 200))}` };
  }
  if (!parsed.success)
    return { problem: `answered VERSION without a cniVersion string: ${JSON.stringify(stdout.slice(0, 200))}` };
  const listed = parsed.data.supportedVersions;
  if (listed === undefined || listed.length === 0) {
    if (parsed.data.cniVersion === '0.2.0') return { versions: ['0.1.0', '0.2.0'] };
    return { problem: 'answered VERSION without supportedVersions' };
  }
  return { versions: listed.filter(isSemver) };
}

/** The first bin dir holding a file of that name, as libcni's FindInPath looks (undefined: none). */
export function findPlugin(type: string, binDirs: readonly string[]): { path: string; stat: Stats } | undefined {
  for (const dir of binDirs) {
    const path = join(dir, type);
    try {
      const stat = statSync(path);
      if (stat.isFile()) return { path, stat };
    } catch {
      // Not in this dir.
    }
  }
  return undefined;
}

/**
 * Runs `path` with CNI_COMMAND=VERSION as libcni's GetVersionInfo does: the runtime's environment
 * plus the command and dummy values that plugins built with an old skel require, and
 * {"cniVersion": <the newest version Strand implements>} on stdin. A plugin that does not answer
 * within `timeoutMs` is killed, with its process group.
 */
export function askVersion(
  path: string,
  binDirs: readonly string[],
  timeoutMs = VERSION_TIMEOUT_MS,
): Promise<PluginAnswer> {
  return new Promise((resolve) => {
    const env = {
      ...process.env,
      CNI_COMMAND: 'VERSION',
      CNI_CONTAINERID: '',
      CNI_NETNS: 'dummy',
      CNI_IFNAME: 'dummy',
      CNI_PATH: binDirs.join(':'),
      CNI_ARGS: '',
    };
    // A process group of its own, so that a hung plugin is killed with whatever it started.
    const child = spawn(path, [], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const kill = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    let stdout = '';
    let stderr = '';
    let settled = false;
    const done = (a: PluginAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(a);
    };
    const timer = setTimeout(() => {
      kill();
      done({ problem: `did not answer VERSION within ${timeoutMs} ms`, slow: true });
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (stdout.length > MAX_ANSWER_BYTES) {
        kill();
        done({ problem: `answered VERSION with more than ${MAX_ANSWER_BYTES} bytes` });
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 1000) stderr += d;
    });
    child.on('error', (err) => done({ problem: `could not be run: ${err.message}` }));
    child.on('close', (code, signal) => {
      if (code === 0) return done(parseVersionAnswer(stdout));
      // libcni: a plugin from before VERSION existed supports only 0.1.0.
      if (/unknown CNI_COMMAND: VERSION/.test(stdout + stderr)) return done({ versions: ['0.1.0'] });
      const said = (stdout || stderr).trim().slice(0, 300);
      done({
        problem: `failed on VERSION (${signal ? `signal ${signal}` : `exit status ${code}`})${said ? `: ${said}` : ''}`,
      });
    });
    child.stdin.on('error', () => {
      // The plugin did not read its stdin: the exit status says the rest.
    });
    child.stdin.end(JSON.stringify({ cniVersion: CURRENT_VERSION }));
  });
}

function stampOf(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

interface Cached {
  stamp: string;
  answer: PluginAnswer;
  at: number;
  /** Slow answers in a row for this file (the backoff's exponent). */
  slow: number;
}

/** VERSION answers per plugin file, asked again only when the file changes (or a failure ages). */
export class PluginVersionCache {
  private readonly answers = new Map<string, Cached>();
  /** How many times a plugin was run (for tests and the log). */
  runs = 0;

  constructor(private readonly timeoutMs = VERSION_TIMEOUT_MS) {}

  /** The plugin `type` as the runtime would find it in `binDirs`, and what it answers. */
  async report(type: string, binDirs: readonly string[], now = Date.now()): Promise<PluginReport> {
    const found = findPlugin(type, binDirs);
    if (!found) return { type, path: undefined, answer: { problem: `is not in ${binDirs.join(':')}` } };
    return { type, path: found.path, answer: await this.answerOf(found.path, found.stat, binDirs, now) };
  }

  /** The answer of the file at `path` (stat given), from the cache while the file is unchanged. */
  async answerOf(path: string, stat: Stats, binDirs: readonly string[], now = Date.now()): Promise<PluginAnswer> {
    const stamp = stampOf(stat);
    const hit = this.answers.get(path);
    const same = hit !== undefined && hit.stamp === stamp;
    if (same && now < this.dueAt(hit)) return hit.answer;
    const slow = same && 'slow' in hit.answer ? hit.slow : 0;
    this.runs++;
    const answer = await askVersion(path, binDirs, Math.min(this.timeoutMs * 2 ** slow, SLOW_ANSWER_MAX_TIMEOUT_MS));
    this.answers.set(path, { stamp, answer, at: now, slow: 'slow' in answer ? slow + 1 : 0 });
    return answer;
  }

  /** How long until the earliest slow answer is asked again (undefined: none is waiting). */
  retryInMs(now = Date.now()): number | undefined {
    let soonest: number | undefined;
    for (const c of this.answers.values())
      if ('slow' in c.answer) soonest = Math.min(soonest ?? Infinity, Math.max(0, this.dueAt(c) - now));
    return soonest;
  }

  /** When a cached answer is asked again: never for versions, soon for a slow one, later for a failure. */
  private dueAt(c: Cached): number {
    if ('versions' in c.answer) return Infinity;
    if ('slow' in c.answer) return c.at + Math.min(SLOW_ANSWER_RETRY_MS * 2 ** (c.slow - 1), FAILED_ANSWER_TTL_MS);
    return c.at + FAILED_ANSWER_TTL_MS;
  }
}

export interface PlanOptions {
  binDirs: readonly string[];
  /** The chained plugins the list would name after strand, in order. */
  chained: readonly string[];
  cache?: PluginVersionCache;
  /**
   * The strand executable to ask instead of the bin dir's (install: the file it is about to put
   * there). Without one, and with no strand in the bin dirs, the versions this code implements.
   */
  strandSource?: string;
}

/** Asks the list's plugins and chooses its versions and chained plugins (chooseListVersions). */
export async function planConflist(opts: PlanOptions): Promise<ConflistPlan> {
  const cache = opts.cache ?? new PluginVersionCache();
  let strand: PluginReport;
  if (opts.strandSource !== undefined) {
    const stat = statSync(opts.strandSource);
    strand = {
      type: 'strand',
      path: opts.strandSource,
      answer: await cache.answerOf(opts.strandSource, stat, opts.binDirs),
    };
  } else {
    strand = await cache.report('strand', opts.binDirs);
    // Not installed yet (the init container puts it there): this code is what will be installed.
    if (strand.path === undefined)
      strand = { type: 'strand', path: undefined, answer: { versions: [...SUPPORTED_VERSIONS] } };
  }
  const chained: PluginReport[] = [];
  for (const type of opts.chained) chained.push(await cache.report(type, opts.binDirs));
  const plan = chooseListVersions(strand, chained);
  const retryInMs = cache.retryInMs();
  return retryInMs === undefined ? plan : { ...plan, retryInMs };
}
