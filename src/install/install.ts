// Over 400 lines: install and uninstall are one inventory of node files, read together.
// `strand install` and `strand uninstall`: what the DaemonSet's init container runs on each node.
// Install puts three things on the node and nothing else:
//   <cni-bin-dir>/strand               a copy of the CNI executable (cni/strand beside this one), 0755
//   <cni-bin-dir>/strand-ipam          a symbolic link to "strand" (the IPAM role, DESIGN.md)
//   <cni-conf-dir>/10-strand.conflist  the network configuration list (contracts/conflist.ts), at the
//                                      versions strand and the chained plugins in the bin dir all
//                                      support (conflist-versions.ts; a missing one is left out, with
//                                      a warning on stderr)
// Each is replaced atomically (a temporary file or link beside it, fsync, rename, fsync of the
// directory): a runtime starting a pod meanwhile execs the old or the new executable and reads the
// old or the new configuration, never half of one. Running it again changes nothing that is already
// right. Uninstall removes exactly those three (and temporary files of an install that was killed),
// and only when they are Strand's. Both compute a plan first; --dry-run prints it without acting.
import {
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  type Stats,
} from 'node:fs';
import { isSea } from 'node:sea';
import { dirname, join } from 'node:path';
import { fsyncDir, TEMP_PREFIX, tempPathFor, writeFileAtomic } from '../util/atomic-file.ts';
import { EXECUTABLE_MARKER } from '../version.ts';
import {
  CHAINED_PLUGINS,
  CONFLIST_FILE,
  isStrandConflist,
  MANAGED_KEY,
  NETWORK_NAME,
  renderConflist,
  type ConflistOptions,
} from '../contracts/conflist.ts';
import { planConflist } from './conflist-versions.ts';

export const EXECUTABLE = 'strand';
export const IPAM_LINK = 'strand-ipam';

// Uninstall removes a `strand` in the bin dir only if it carries this string (src/version.ts).
export { EXECUTABLE_MARKER };

export type Action = 'create' | 'replace' | 'unchanged' | 'remove' | 'absent' | 'keep';

export interface Step {
  path: string;
  action: Action;
  /** Why, for 'keep', or something the operator should know. */
  note?: string;
}

export interface InstallOptions {
  cniBinDir: string;
  cniConfDir: string;
  /** The executable to install; by default this one (process.execPath in the single executable). */
  source?: string;
  conflist?: ConflistOptions;
  dryRun?: boolean;
}

export interface UninstallOptions {
  cniBinDir: string;
  cniConfDir: string;
  dryRun?: boolean;
}

/**
 * The CNI executable shipped with the running one: `cni/strand` in this executable's directory (the
 * build's dist/cni/strand, the image's /usr/local/bin/cni/strand). The agent and command line run on
 * Node; the pod path is a separate Bun-compiled executable (docs/architecture.md), and that is what
 * the runtime must find as `strand` in the CNI bin dir.
 */
export function defaultSource(): string {
  if (!isSea()) {
    throw new Error(
      `not running as the strand executable (this is ${process.execPath}): pass --source with the file to install`,
    );
  }
  const cni = join(dirname(process.execPath), 'cni', EXECUTABLE);
  if (!existsSync(cni))
    throw new Error(
      `the CNI executable ${cni} is missing (it ships beside ${process.execPath}): pass --source with the file to install`,
    );
  return cni;
}

// ---- install ---------------------------------------------------------------------------------------

export interface InstallResult {
  steps: Step[];
  /** Plugins of the conflist that did not answer VERSION or are missing (left out of the list). */
  warnings: string[];
}

export async function install(opts: InstallOptions): Promise<InstallResult> {
  const source = opts.source ?? defaultSource();
  const sourceStat = statOrThrow(source, 'the executable to install');
  if (!sourceStat.isFile()) throw new Error(`${source} is not a regular file`);
  const exe = join(opts.cniBinDir, EXECUTABLE);
  const link = join(opts.cniBinDir, IPAM_LINK);
  const conf = join(opts.cniConfDir, CONFLIST_FILE);
  // The versions every plugin of the list supports: strand is asked as the file about to be
  // installed, the chained plugins where the runtime will find them (conflist-versions.ts).
  const plan = await planConflist({ binDirs: [opts.cniBinDir], chained: CHAINED_PLUGINS, strandSource: source });
  const conflistText = renderConflist({ ...opts.conflist, versions: plan.versions, chained: plan.chained });

  const steps: Step[] = [
    ...dirSteps([opts.cniBinDir, opts.cniConfDir]),
    ...leftoverSteps(opts.cniBinDir, [EXECUTABLE, IPAM_LINK]),
    ...leftoverSteps(opts.cniConfDir, [CONFLIST_FILE]),
    executableStep(source, exe),
    linkStep(link),
    conflistStep(conf, conflistText),
  ];
  const shadow = shadowingConfig(opts.cniConfDir);
  if (shadow) {
    const step = steps[steps.length - 1] as Step;
    step.note = appendNote(
      step.note,
      `${shadow} sorts before ${CONFLIST_FILE}: runtimes use the first configuration, so pods will not get Strand's`,
    );
  }
  if (opts.dryRun) return { steps, warnings: plan.problems };

  for (const step of steps) {
    if (step.action === 'unchanged' || step.action === 'absent' || step.action === 'keep') continue;
    if (step.action === 'remove') rmSync(step.path, { force: true });
    else if (step.path === opts.cniBinDir || step.path === opts.cniConfDir)
      mkdirSync(step.path, { recursive: true, mode: 0o755 });
    else if (step.path === exe) copyExecutable(source, exe);
    else if (step.path === link) replaceWithSymlink(EXECUTABLE, link);
    else if (step.path === conf) writeFileAtomic(conf, conflistText, { mode: 0o644 });
  }
  fsyncDir(opts.cniBinDir);
  fsyncDir(opts.cniConfDir);
  return { steps, warnings: plan.problems };
}

function dirSteps(dirs: string[]): Step[] {
  const out: Step[] = [];
  for (const dir of new Set(dirs)) {
    const st = lstatOrUndefined(dir);
    if (!st) out.push({ path: dir, action: 'create' });
    else if (!st.isDirectory() && !statOrUndefined(dir)?.isDirectory())
      throw new Error(`${dir} exists and is not a directory`);
  }
  return out;
}

function executableStep(source: string, exe: string): Step {
  const st = lstatOrUndefined(exe);
  if (!st) return { path: exe, action: 'create' };
  if (st.isDirectory()) throw new Error(`${exe} is a directory`);
  if (st.isFile() && (st.mode & 0o7777) === 0o755 && (sameFile(source, exe) || sameContent(source, exe)))
    return { path: exe, action: 'unchanged' };
  return { path: exe, action: 'replace' };
}

function linkStep(link: string): Step {
  const st = lstatOrUndefined(link);
  if (!st) return { path: link, action: 'create' };
  if (st.isDirectory()) throw new Error(`${link} is a directory`);
  if (st.isSymbolicLink() && readlinkSync(link) === EXECUTABLE) return { path: link, action: 'unchanged' };
  return { path: link, action: 'replace' };
}

function conflistStep(conf: string, text: string): Step {
  const st = lstatOrUndefined(conf);
  if (!st) return { path: conf, action: 'create' };
  if (st.isDirectory()) throw new Error(`${conf} is a directory`);
  const current = readTextOrUndefined(conf);
  if (current === text) return { path: conf, action: 'unchanged' };
  if (current !== undefined && !isStrandConflist(current)) {
    return { path: conf, action: 'replace', note: 'the current file was not written by Strand' };
  }
  return { path: conf, action: 'replace' };
}

/** Copies `source` to `target` atomically with mode 0755 (the umask does not decide it). */
function copyExecutable(source: string, target: string): void {
  const tmp = tempPathFor(target);
  try {
    // copy_file_range where the filesystem has it; the temporary name is new (EXCL).
    copyFileSync(source, tmp, constants.COPYFILE_EXCL);
    chmodSync(tmp, 0o755);
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // rename(2) over a file being executed is fine (ETXTBSY is only for writing into it).
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new Error(`installing ${source} as ${target}: ${(err as Error).message}`, { cause: err });
  }
}

function replaceWithSymlink(to: string, link: string): void {
  const tmp = tempPathFor(link);
  try {
    symlinkSync(to, tmp);
    renameSync(tmp, link);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new Error(`linking ${link} to ${to}: ${(err as Error).message}`, { cause: err });
  }
}

/** The first configuration file of the directory in the runtime's order, when it is not Strand's. */
function shadowingConfig(confDir: string): string | undefined {
  let names: string[];
  try {
    names = readdirSync(confDir);
  } catch {
    return undefined;
  }
  // libcni ConfFiles: .conf, .conflist and .json files, sorted by name; the runtime takes the first.
  const configs = names.filter((n) => /\.(conf|conflist|json)$/.test(n) && !n.startsWith('.')).sort();
  const first = configs[0];
  return first !== undefined && first < CONFLIST_FILE ? first : undefined;
}

// ---- uninstall -------------------------------------------------------------------------------------

export function uninstall(opts: UninstallOptions): Step[] {
  const exe = join(opts.cniBinDir, EXECUTABLE);
  const link = join(opts.cniBinDir, IPAM_LINK);
  const conf = join(opts.cniConfDir, CONFLIST_FILE);
  const steps: Step[] = [
    executableRemoval(exe),
    linkRemoval(link, exe),
    conflistRemoval(conf),
    ...leftoverSteps(opts.cniBinDir, [EXECUTABLE, IPAM_LINK]),
    ...leftoverSteps(opts.cniConfDir, [CONFLIST_FILE]),
  ];
  if (opts.dryRun) return steps;
  for (const step of steps) if (step.action === 'remove') rmSync(step.path, { force: true });
  if (steps.some((s) => s.action === 'remove')) {
    for (const dir of new Set([opts.cniBinDir, opts.cniConfDir]))
      if (statOrUndefined(dir)?.isDirectory()) fsyncDir(dir);
  }
  return steps;
}

function executableRemoval(exe: string): Step {
  const st = lstatOrUndefined(exe);
  if (!st) return { path: exe, action: 'absent' };
  if (!st.isFile())
    return { path: exe, action: 'keep', note: 'not a regular file, so not the executable Strand installs' };
  if (!containsMarker(exe)) return { path: exe, action: 'keep', note: 'not a Strand executable' };
  return { path: exe, action: 'remove' };
}

function linkRemoval(link: string, exe: string): Step {
  const st = lstatOrUndefined(link);
  if (!st) return { path: link, action: 'absent' };
  if (!st.isSymbolicLink()) return { path: link, action: 'keep', note: `not a symbolic link to ${EXECUTABLE}` };
  const to = readlinkSync(link);
  if (to === EXECUTABLE || to === exe) return { path: link, action: 'remove' };
  return { path: link, action: 'keep', note: `links to ${to}, not to ${EXECUTABLE}` };
}

function conflistRemoval(conf: string): Step {
  const st = lstatOrUndefined(conf);
  if (!st) return { path: conf, action: 'absent' };
  const text = st.isFile() ? readTextOrUndefined(conf) : undefined;
  if (text !== undefined && isStrandConflist(text)) return { path: conf, action: 'remove' };
  return { path: conf, action: 'keep', note: `not Strand's: no "name": "${NETWORK_NAME}" with "${MANAGED_KEY}": true` };
}

/**
 * Temporary files of an install that was killed before its rename (util/atomic-file.ts names them
 * "<TEMP_PREFIX><name>.<pid>.<random>"): removed by install and uninstall alike.
 */
function leftoverSteps(dir: string, names: string[]): Step[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .filter((e) => names.some((n) => e.startsWith(`${TEMP_PREFIX}${n}.`)))
    .sort()
    .map((e) => ({ path: join(dir, e), action: 'remove' as const, note: 'left by an interrupted install' }));
}

// ---- files -----------------------------------------------------------------------------------------

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(realpathSync(path));
  } catch {
    return undefined;
  }
}

function statOrThrow(path: string, what: string): Stats {
  const st = statOrUndefined(path);
  if (!st) throw new Error(`${what}, ${path}, does not exist`);
  return st;
}

function readTextOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

const CHUNK = 1 << 20;

function sameContent(a: string, b: string): boolean {
  const sa = statOrUndefined(a);
  const sb = statOrUndefined(b);
  if (!sa || !sb || sa.size !== sb.size) return false;
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  try {
    const ba = Buffer.allocUnsafe(CHUNK);
    const bb = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const na = readSync(fa, ba, 0, CHUNK, null);
      const nb = readSync(fb, bb, 0, CHUNK, null);
      if (na !== nb) return false;
      if (na === 0) return true;
      if (!ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

/** Whether the file contains EXECUTABLE_MARKER (read in chunks that overlap by the marker's length). */
function containsMarker(path: string): boolean {
  const marker = Buffer.from(EXECUTABLE_MARKER);
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK + marker.length);
    let carry = 0;
    for (;;) {
      const n = readSync(fd, buf, carry, CHUNK, null);
      if (n === 0) return false;
      const end = carry + n;
      if (buf.subarray(0, end).includes(marker)) return true;
      carry = Math.min(marker.length - 1, end);
      buf.copy(buf, 0, end - carry, end);
    }
  } finally {
    closeSync(fd);
  }
}

function appendNote(note: string | undefined, more: string): string {
  return note ? `${note}; ${more}` : more;
}

/** One line per step: "created /opt/cni/bin/strand", or "would create …" in a dry run. */
export function describeSteps(steps: Step[], dryRun: boolean): string {
  const done: Record<Action, string> = {
    create: 'created',
    replace: 'replaced',
    unchanged: 'unchanged',
    remove: 'removed',
    absent: 'absent',
    keep: 'kept',
  };
  const planned: Record<Action, string> = {
    create: 'would create',
    replace: 'would replace',
    unchanged: 'unchanged',
    remove: 'would remove',
    absent: 'absent',
    keep: 'would keep',
  };
  return steps.map((s) => `${(dryRun ? planned : done)[s.action]} ${s.path}${s.note ? ` (${s.note})` : ''}\n`).join('');
}
