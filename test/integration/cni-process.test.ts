// dist/strand run as a process, as a runtime runs it: the multi-call entry, VERSION, the error
// JSON and exit codes, and the command line.
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DIST, runPlugin, STRAND, STRAND_IPAM } from '../support/cni.ts';

const versions = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

describe('dist/strand as a CNI plugin', () => {
  for (const plugin of [STRAND, STRAND_IPAM]) {
    it(`${plugin.split('/').pop()} answers VERSION with the given cniVersion`, () => {
      const r = runPlugin(plugin, { command: 'VERSION', config: { cniVersion: '0.4.0' } });
      expect(r.code).toBe(0);
      expect(r.json).toEqual({ cniVersion: '0.4.0', supportedVersions: versions });
    });
  }

  it('prints an error JSON on stdout with a non-zero exit for a bad environment', () => {
    const r = runPlugin(STRAND, { command: 'ADD', containerId: 'c', ifname: 'eth0:1', netns: '/run/netns/none', config: { cniVersion: '1.0.0', name: 'n', type: 'strand' } });
    expect(r.code).not.toBe(0);
    expect(r.json).toMatchObject({ cniVersion: '1.0.0', code: 4 });
    expect(r.json.msg).toContain('eth0:1');
  });

  it('prints an error for malformed JSON', () => {
    const r = runPlugin(STRAND_IPAM, { command: 'ADD', containerId: 'c', ifname: 'eth0', netns: '/run/netns/none', config: '{"cniVersion":' });
    expect(r.code).not.toBe(0);
    expect(r.json.code).toBe(6);
  });

  it('as strand-ipam without CNI_COMMAND prints the about text on stderr', () => {
    const r = spawnSync(STRAND_IPAM, [], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/strand-ipam/);
  });
});

describe('dist/strand as a command line', () => {
  it('prints help', () => {
    const r = spawnSync(STRAND, ['--help'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('strand version');
  });

  it('prints its version and the embedded Node version', () => {
    const r = spawnSync(STRAND, ['version', '--json'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(r.status).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.node).toMatch(/^24\./);
    expect(info.cniVersions).toEqual(versions);
  });

  it('refuses an unknown command with a usage hint', () => {
    const r = spawnSync(STRAND, ['frobnicate'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/strand --help/);
  });

  it('runs with no node_modules and no Node on PATH', () => {
    const r = spawnSync(STRAND, ['version'], { encoding: 'utf8', env: { PATH: '/nonexistent' }, cwd: '/' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^strand /);
  });
});

describe('what CNI mode loads', () => {
  it('starts a script without the command line, the agent or the Kubernetes client', () => {
    // Every CNI invocation scans the whole main script: it must stay small (the agent and
    // @kubernetes/client-node made it 3.4 MB once, and VERSION 20 ms slower).
    const main = `${DIST}/strand.cjs`;
    expect(statSync(main).size).toBeLessThan(1024 * 1024);
    const text = readFileSync(main, 'utf8');
    expect(text).not.toContain('@kubernetes/client-node');
    expect(text).not.toContain('src/agent/agent.ts');
    expect(text).not.toContain('node_modules/yargs');
    // The observing commands (status, ipam, explain) are the command line's, in its own bundle.
    for (const kind of ['StrandStatus', 'StrandIpam', 'StrandExplain']) {
      expect(text).not.toContain(kind);
      expect(readFileSync(`${DIST}/cli.cjs`, 'utf8')).toContain(kind);
    }
  });
});
