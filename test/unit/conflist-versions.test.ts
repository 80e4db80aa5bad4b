// The choice of the conflist's versions and chained plugins from the plugins' VERSION answers, the
// parsing of those answers as libcni parses them, and the cache that asks a plugin again only when
// its file changes (a temp dir with tiny plugins; the real plugins are in
// test/integration/conflist-versions.test.ts).
import { existsSync, mkdtempSync, readFileSync, rmSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  chooseListVersions,
  findPlugin,
  parseVersionAnswer,
  planConflist,
  PluginVersionCache,
  type PluginReport,
} from '../../src/install/conflist-versions.ts';
import { SUPPORTED_VERSIONS } from '../../src/cni/versions.ts';
import { libcniPick } from '../support/libcni.ts';

const strand: PluginReport = {
  type: 'strand',
  path: '/opt/cni/bin/strand',
  answer: { versions: [...SUPPORTED_VERSIONS] },
};
const portmap = (versions: string[]): PluginReport => ({
  type: 'portmap',
  path: '/opt/cni/bin/portmap',
  answer: { versions },
});
const REF_1_1_1 = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0'];
const REF_1_5 = [...REF_1_1_1, '1.1.0'];

describe('chooseListVersions', () => {
  it('reference plugins 1.1.1 (Debian 12, Ubuntu 22.04/24.04): 1.0.0, nothing newer offered', () => {
    const plan = chooseListVersions(strand, [portmap(REF_1_1_1)]);
    expect(plan.versions).toEqual({ cniVersion: '1.0.0', cniVersions: ['0.3.1', '0.4.0', '1.0.0'] });
    expect(plan.chained).toEqual(['portmap']);
    expect(plan.problems).toEqual([]);
  });

  it('reference plugins 1.5+: a runtime with libcni 1.2+ runs 1.1.0, an older one (cniVersion only) 1.0.0', () => {
    const plan = chooseListVersions(strand, [portmap(REF_1_5)]);
    expect(plan.versions).toEqual({ cniVersion: '1.0.0', cniVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    const list = { name: 'strand', plugins: [], ...plan.versions };
    expect(libcniPick(list, '1.1.0')).toBe('1.1.0');
    expect(libcniPick(list, '1.0.0', false)).toBe('1.0.0');
  });

  it('a plugin of 0.3.1 only: 0.3.1 alone', () => {
    const plan = chooseListVersions(strand, [portmap(['0.1.0', '0.2.0', '0.3.0', '0.3.1'])]);
    expect(plan.versions).toEqual({ cniVersion: '0.3.1', cniVersions: ['0.3.1'] });
    expect(plan.chained).toEqual(['portmap']);
  });

  it('a missing, silent or incompatible chained plugin is left out with a reason; strand alone offers every version', () => {
    for (const r of [
      { type: 'portmap', path: undefined, answer: { problem: 'is not in /opt/cni/bin' } },
      { type: 'portmap', path: '/opt/cni/bin/portmap', answer: { problem: 'did not answer VERSION within 2000 ms' } },
      portmap(['0.1.0', '0.2.0']),
    ] satisfies PluginReport[]) {
      const plan = chooseListVersions(strand, [r]);
      expect(plan.chained).toEqual([]);
      expect(plan.versions).toEqual({ cniVersion: '1.0.0', cniVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
      expect(plan.problems).toHaveLength(1);
      expect(plan.problems[0]).toMatch(
        /^CNI plugin portmap .*left out of the configuration list, so what it does \(hostPort mappings\) is missing on this node$/,
      );
    }
  });

  it("an installed strand of fewer versions limits the list; one that does not answer is a problem, with this code's versions", () => {
    const older: PluginReport = {
      type: 'strand',
      path: '/opt/cni/bin/strand',
      answer: { versions: ['0.3.1', '0.4.0', '1.0.0'] },
    };
    expect(chooseListVersions(older, [portmap(REF_1_5)]).versions).toEqual({
      cniVersion: '1.0.0',
      cniVersions: ['0.3.1', '0.4.0', '1.0.0'],
    });
    const broken: PluginReport = {
      type: 'strand',
      path: '/opt/cni/bin/strand',
      answer: { problem: 'failed on VERSION (exit status 1)' },
    };
    const plan = chooseListVersions(broken, [portmap(REF_1_1_1)]);
    expect(plan.versions.cniVersions).toEqual(['0.3.1', '0.4.0', '1.0.0']);
    expect(plan.chained).toEqual(['portmap']);
    expect(plan.problems).toEqual([
      'CNI plugin strand (/opt/cni/bin/strand): failed on VERSION (exit status 1); assuming the versions this build implements',
    ]);
  });
});

describe('parseVersionAnswer (libcni PluginDecoder)', () => {
  it('takes supportedVersions, drops what is no version, and knows 0.2.0 answers without a list', () => {
    expect(parseVersionAnswer('{"cniVersion":"1.0.0","supportedVersions":["0.3.1","1.0.0","x"]}')).toEqual({
      versions: ['0.3.1', '1.0.0'],
    });
    expect(parseVersionAnswer('{"cniVersion":"0.2.0"}')).toEqual({ versions: ['0.1.0', '0.2.0'] });
    expect(parseVersionAnswer('{"cniVersion":"1.0.0"}')).toEqual({
      problem: 'answered VERSION without supportedVersions',
    });
    expect(parseVersionAnswer('{"supportedVersions":["1.0.0"]}')).toMatchObject({
      problem: expect.stringContaining('without a cniVersion'),
    });
    expect(parseVersionAnswer('hello')).toMatchObject({ problem: expect.stringContaining('not JSON') });
  });
});

describe('PluginVersionCache', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'strand-versions-unit-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const plugin = (name: string, body: string) => {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  };

  it('runs a plugin once while its file is unchanged, again when it is replaced or touched', async () => {
    plugin('portmap', `echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","1.0.0"]}'`);
    const cache = new PluginVersionCache();
    expect(await cache.report('portmap', [dir])).toEqual({
      type: 'portmap',
      path: join(dir, 'portmap'),
      answer: { versions: ['0.3.1', '1.0.0'] },
    });
    await cache.report('portmap', [dir]);
    expect(cache.runs).toBe(1);
    // Replaced by rename (a package upgrade): a new inode.
    plugin('portmap.new', `echo '{"cniVersion":"1.1.0","supportedVersions":["0.3.1","1.0.0","1.1.0"]}'`);
    renameSync(join(dir, 'portmap.new'), join(dir, 'portmap'));
    expect((await cache.report('portmap', [dir])).answer).toEqual({ versions: ['0.3.1', '1.0.0', '1.1.0'] });
    expect(cache.runs).toBe(2);
    // Touched only: asked again (same answer).
    utimesSync(join(dir, 'portmap'), new Date(), new Date(Date.now() + 5_000));
    await cache.report('portmap', [dir]);
    expect(cache.runs).toBe(3);
  });

  it('a plugin that hangs is killed at the timeout; a failure is asked again only after a while', async () => {
    plugin('slow', 'sleep 30 & echo $! > "$0.pid"; wait');
    plugin('bad', 'echo \'{"code":4,"msg":"nope"}\'; exit 1');
    plugin('ancient', 'echo \'{"code":4,"msg":"unknown CNI_COMMAND: VERSION"}\'; exit 1');
    const cache = new PluginVersionCache(300);
    const start = Date.now();
    expect((await cache.report('slow', [dir])).answer).toEqual({
      problem: 'did not answer VERSION within 300 ms',
      slow: true,
    });
    expect(Date.now() - start).toBeLessThan(2_000);
    // What it started went with it (its process group was killed).
    const sleeper = Number(readFileSync(join(dir, 'slow.pid'), 'utf8'));
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(`/proc/${sleeper}`) && !readFileSync(`/proc/${sleeper}/stat`, 'utf8').includes(') Z ')).toBe(
      false,
    );
    expect((await cache.report('bad', [dir])).answer).toEqual({
      problem: 'failed on VERSION (exit status 1): {"code":4,"msg":"nope"}',
    });
    expect((await cache.report('ancient', [dir])).answer).toEqual({ versions: ['0.1.0'] });
    const runs = cache.runs;
    await cache.report('bad', [dir]);
    expect(cache.runs).toBe(runs);
    await cache.report('bad', [dir], Date.now() + 61_000);
    expect(cache.runs).toBe(runs + 1);
  });

  it('a plugin too slow to answer is asked again after 2 s, then 4, …, each time allowed twice as long', async () => {
    // Answers only when allowed more than 400 ms (a node too busy to start it in 300).
    plugin('busy', `sleep 0.45; echo '{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}'`);
    const cache = new PluginVersionCache(300);
    const t0 = Date.now();
    expect((await cache.report('busy', [dir], t0)).answer).toMatchObject({ slow: true });
    expect(cache.retryInMs(t0)).toBe(2_000);
    // Not before its backoff ends.
    await cache.report('busy', [dir], t0 + 1_999);
    expect(cache.runs).toBe(1);
    // Then with 600 ms to answer: it does, and nothing waits any more.
    expect((await cache.report('busy', [dir], t0 + 2_000)).answer).toEqual({ versions: ['1.0.0'] });
    expect(cache.runs).toBe(2);
    expect(cache.retryInMs()).toBeUndefined();
    // The plan carries the retry so the agent asks a pass when it is due.
    plugin('strand', `sleep 30`);
    const plan = await planConflist({ binDirs: [dir], chained: [], cache });
    expect(plan.problems[0]).toMatch(/did not answer VERSION within 300 ms/);
    expect(plan.retryInMs).toBeGreaterThan(1_500);
    expect(plan.retryInMs).toBeLessThanOrEqual(2_000);
  });

  it('finds a plugin in the first bin dir that has it, as libcni does; a dir of that name is no plugin', async () => {
    const second = mkdtempSync(join(tmpdir(), 'strand-versions-unit-'));
    try {
      writeFileSync(join(second, 'portmap'), '#!/bin/sh\n', { mode: 0o755 });
      expect(findPlugin('portmap', [dir, second])?.path).toBe(join(second, 'portmap'));
      plugin('portmap', 'true');
      expect(findPlugin('portmap', [dir, second])?.path).toBe(join(dir, 'portmap'));
      rmSync(join(dir, 'portmap'));
      writeFileSync(join(dir, 'x'), '');
      expect(findPlugin('nothing', [dir, second])).toBeUndefined();
      const missing = await new PluginVersionCache().report('nothing', [dir, second]);
      expect(missing).toEqual({ type: 'nothing', path: undefined, answer: { problem: `is not in ${dir}:${second}` } });
    } finally {
      rmSync(second, { recursive: true, force: true });
    }
  });
});
