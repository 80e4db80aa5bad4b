// What a container runtime does with a configuration list, after libcni (containernetworking/cni
// libcni/conf.go and api.go), for tests that run a conflist the way a node runs it:
//   - the version: the highest of {cniVersion} ∪ cniVersions that the runtime's libcni implements
//     (libcni 1.2+, which implements 1.1.0); an older libcni (containerd 1.6/1.7) takes cniVersion;
//   - ADD: each plugin in order, with name and cniVersion injected, the previous plugin's result as
//     prevResult, and runtimeConfig holding only the capabilities the plugin declares;
//   - DEL: each plugin in reverse order, with the cached ADD result as prevResult from 0.4.0 on.
// Plus a chained test plugin that speaks only the versions it is given, as a plugin built against an
// old libcni does.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CniCall, CniOutcome } from './cni.ts';

const semver = (v: string) => v.split('.').map(Number) as [number, number, number];
function compare(a: string, b: string): number {
  const [pa, pb] = [semver(a), semver(b)];
  return pa[0] - pb[0] || pa[1] - pb[1] || pa[2] - pb[2];
}

export interface Conflist {
  name: string;
  cniVersion?: string;
  cniVersions?: string[];
  plugins: Record<string, unknown>[];
}

/**
 * The version a runtime runs the list at. `libcniVersion` is the newest version the runtime's libcni
 * implements; `readsCniVersions` false is a libcni before 1.2, which knows no cniVersions.
 */
export function libcniPick(list: Conflist, libcniVersion = '1.1.0', readsCniVersions = true): string {
  if (!readsCniVersions || list.cniVersions === undefined) return list.cniVersion ?? '0.1.0';
  const all = [...list.cniVersions, ...(list.cniVersion ? [list.cniVersion] : [])].filter(
    (v) => compare(v, libcniVersion) <= 0,
  );
  all.sort(compare);
  const best = all.at(-1);
  if (best === undefined)
    throw new Error(`no version of ${JSON.stringify(list.cniVersions)} is at most ${libcniVersion}`);
  return best;
}

/** One plugin's stdin as libcni builds it (buildOneConfig). */
export function pluginConfig(
  list: Conflist,
  plugin: Record<string, unknown>,
  version: string,
  prevResult: unknown,
  runtimeConfig: Record<string, unknown>,
): Record<string, unknown> {
  const caps = (plugin.capabilities ?? {}) as Record<string, boolean>;
  const rc = Object.fromEntries(Object.entries(runtimeConfig).filter(([k]) => caps[k] === true));
  return {
    ...plugin,
    name: list.name,
    cniVersion: version,
    ...(prevResult !== undefined ? { prevResult } : {}),
    ...(Object.keys(rc).length > 0 ? { runtimeConfig: rc } : {}),
  };
}

export type PluginRunner = (plugin: string, call: CniCall) => CniOutcome;

export interface ChainCall {
  list: Conflist;
  version: string;
  /** Where each plugin type's executable is. */
  binary: (type: string) => string;
  run: PluginRunner;
  netns: string;
  containerId: string;
  ifname?: string;
  runtimeConfig?: Record<string, unknown>;
}

/** ADD through the whole chain; the result is the last plugin's (or the first failure). */
export function addChain(c: ChainCall): { outcome: CniOutcome; calls: { type: string; outcome: CniOutcome }[] } {
  let prev: unknown;
  const calls: { type: string; outcome: CniOutcome }[] = [];
  for (const plugin of c.list.plugins) {
    const type = plugin.type as string;
    const config = pluginConfig(c.list, plugin, c.version, prev, c.runtimeConfig ?? {});
    const outcome = c.run(c.binary(type), {
      command: 'ADD',
      config,
      netns: c.netns,
      containerId: c.containerId,
      ifname: c.ifname ?? 'eth0',
    });
    calls.push({ type, outcome });
    if (outcome.code !== 0) return { outcome, calls };
    prev = outcome.json;
  }
  return { outcome: calls.at(-1)?.outcome as CniOutcome, calls };
}

/** DEL through the whole chain in reverse, with the ADD result as prevResult (0.4.0 and later). */
export function delChain(c: ChainCall, addResult: unknown): { type: string; outcome: CniOutcome }[] {
  const withPrev = compare(c.version, '0.4.0') >= 0;
  const calls: { type: string; outcome: CniOutcome }[] = [];
  for (const plugin of [...c.list.plugins].reverse()) {
    const type = plugin.type as string;
    const config = pluginConfig(c.list, plugin, c.version, withPrev ? addResult : undefined, c.runtimeConfig ?? {});
    calls.push({
      type,
      outcome: c.run(c.binary(type), {
        command: 'DEL',
        config,
        netns: c.netns,
        containerId: c.containerId,
        ifname: c.ifname ?? 'eth0',
      }),
    });
  }
  return calls;
}

/**
 * Writes an executable `name` into `dir`: a chained plugin that supports only `versions` (VERSION
 * lists them; ADD, DEL and CHECK at any other version fail with code 1 "incompatible CNI versions"
 * as the reference skel does). ADD needs a prevResult and passes it on; each call is appended to
 * `<dir>/<name>.calls` as "COMMAND cniVersion".
 */
export function writeVersionedPlugin(dir: string, name: string, versions: readonly string[]): string {
  const path = join(dir, name);
  const code = `
const fs = require('node:fs');
const versions = ${JSON.stringify(versions)};
const cmd = process.env.CNI_COMMAND;
let input = '';
try { input = fs.readFileSync(0, 'utf8'); } catch {}
const conf = input.trim() ? JSON.parse(input) : {};
fs.appendFileSync(${JSON.stringify(`${path}.calls`)}, cmd + ' ' + (conf.cniVersion ?? '') + '\\n');
const fail = (code, msg, details) => { process.stdout.write(JSON.stringify({ cniVersion: conf.cniVersion, code, msg, details })); process.exit(1); };
if (cmd === 'VERSION') { process.stdout.write(JSON.stringify({ cniVersion: versions.at(-1), supportedVersions: versions })); process.exit(0); }
if (!versions.includes(conf.cniVersion)) fail(1, 'incompatible CNI versions', 'config is "' + conf.cniVersion + '", plugin supports ' + JSON.stringify(versions));
if (cmd === 'ADD') {
  if (!conf.prevResult) fail(7, 'missing prevResult');
  if (conf.prevResult.cniVersion !== conf.cniVersion) fail(1, 'prevResult version ' + conf.prevResult.cniVersion + ' is not ' + conf.cniVersion);
  process.stdout.write(JSON.stringify(conf.prevResult));
}
process.exit(0);
`;
  writeFileSync(path, `#!${process.execPath}\n${code}`, { mode: 0o755 });
  chmodSync(path, 0o755);
  return path;
}
