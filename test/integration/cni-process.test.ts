// The executables run as processes: dist/cni/strand as a runtime runs it (the multi-call entry,
// VERSION, the error JSON and exit codes) and dist/strand as the command line.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DIST, runPlugin, STRAND, STRAND_CNI, STRAND_IPAM } from '../support/cni.ts';

const versions = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

describe('dist/cni/strand as a CNI plugin', () => {
  for (const plugin of [STRAND_CNI, STRAND_IPAM]) {
    it(`${plugin.split('/').pop()} answers VERSION with the given cniVersion`, () => {
      const r = runPlugin(plugin, { command: 'VERSION', config: { cniVersion: '0.4.0' } });
      expect(r.code).toBe(0);
      expect(r.json).toEqual({ cniVersion: '0.4.0', supportedVersions: versions });
    });
  }

  it('prints an error JSON on stdout with a non-zero exit for a bad environment', () => {
    const r = runPlugin(STRAND_CNI, {
      command: 'ADD',
      containerId: 'c',
      ifname: 'eth0:1',
      netns: '/run/netns/none',
      config: { cniVersion: '1.0.0', name: 'n', type: 'strand' },
    });
    expect(r.code).not.toBe(0);
    expect(r.json).toMatchObject({ cniVersion: '1.0.0', code: 4 });
    expect(r.json.msg).toContain('eth0:1');
  });

  it('prints an error for malformed JSON', () => {
    const r = runPlugin(STRAND_IPAM, {
      command: 'ADD',
      containerId: 'c',
      ifname: 'eth0',
      netns: '/run/netns/none',
      config: '{"cniVersion":',
    });
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

describe('what the command line loads', () => {
  it('leaves out the generated Kubernetes client and the translations of zod (scripts/build.mjs)', () => {
    // Compiled and run at every start of the agent and the command line: together ~1.4 MB of the
    // bundle and ~90 ms of CPU. Strand reads raw JSON (src/k8s/client.ts) and writes English.
    const text = readFileSync(`${DIST}/cli.cjs`, 'utf8');
    expect(text).toContain('client-node/dist/config.js');
    expect(text).not.toMatch(/client-node\/dist\/gen\/(models|apis|types)\//);
    expect(text).toMatch(/zod\/v4\/locales\/en\.c?js/);
    expect(text).not.toMatch(/zod\/v4\/locales\/(de|fr|ja)\.c?js/);
    expect(statSync(`${DIST}/cli.cjs`).size).toBeLessThan(3.5 * 1024 * 1024);
  });
});

describe('the pod-path executable (dist/cni/strand)', () => {
  it('as strand without CNI_COMMAND prints the about text on stderr', () => {
    const r = spawnSync(STRAND_CNI, [], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^CNI strand plugin /);
  });

  it("takes nothing from the runtime's working directory (.env, bunfig.toml, package.json)", () => {
    const cwd = mkdtempSync(join(tmpdir(), 'stt-cwd-'));
    try {
      const marker = join(cwd, 'preloaded');
      writeFileSync(join(cwd, 'bunfig.toml'), 'preload = ["./preload.js"]\n');
      writeFileSync(join(cwd, 'preload.js'), `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "x");\n`);
      writeFileSync(join(cwd, '.env'), 'STRAND_NATIVE_DIR=/nonexistent/never\n');
      writeFileSync(join(cwd, 'package.json'), '{"type":"module","imports":{"#x":"./x.js"}}\n');
      const r = spawnSync(STRAND_CNI, [], {
        cwd,
        encoding: 'utf8',
        env: { PATH: process.env.PATH, CNI_COMMAND: 'VERSION' },
        input: '{"cniVersion":"1.0.0"}',
      });
      expect(r.status).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ cniVersion: '1.0.0', supportedVersions: versions });
      expect(existsSync(marker)).toBe(false);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('makes its kernel calls with no native module to unpack (bun:ffi, not koffi)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stt-native-'));
    try {
      const native = join(dir, 'native');
      // A kernel call (the namespace check: statfs, then ioctl NS_GET_NSTYPE through the FFI) runs;
      // the pod namespace is the plugin's own, so ADD stops there with the namespace named.
      const r = runPlugin(STRAND_CNI, {
        command: 'ADD',
        containerId: 'c',
        ifname: 'eth0',
        netns: '/proc/self/ns/net',
        config: { cniVersion: '1.0.0', name: 'n', type: 'strand', agentSocket: false, logFile: join(dir, 'cni.log') },
        env: { STRAND_NATIVE_DIR: native },
      });
      expect(r.json).toMatchObject({ code: 4 });
      expect(r.json.msg).toContain("plugin's own network namespace");
      expect(existsSync(native)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
