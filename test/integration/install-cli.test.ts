// `strand install` and `strand uninstall` run as the DaemonSet's init container runs them: dist/strand
// as a process, into temporary CNI bin and conf dirs that already hold other files. Install then
// uninstall leaves both directories exactly as they were (names, types, modes, contents, links);
// what install put there works; nothing foreign is removed.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CONFLIST_FILE,
  isStrandConflist,
  MANAGED_KEY,
  renderConflist,
  strandConflist,
} from '../../src/contracts/conflist.ts';
import { REFERENCE_CNI_DIR, STRAND, STRAND_CNI } from '../support/cni.ts';
import { writeVersionedPlugin } from '../support/libcni.ts';

let dir: string;
let bin: string;
let conf: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'strand-install-test-'));
  bin = join(dir, 'opt-cni-bin');
  conf = join(dir, 'etc-cni-net.d');
  mkdirSync(bin, { mode: 0o751 });
  mkdirSync(conf, { mode: 0o700 });
  chmodSync(bin, 0o751);
  chmodSync(conf, 0o700);
  // What a node already has: reference plugins, another network's configuration, odd modes.
  writeFileSync(join(bin, 'bridge'), '#!/bin/sh\necho bridge\n', { mode: 0o755 });
  writeFileSync(join(bin, 'host-local'), 'binary', { mode: 0o711 });
  symlinkSync('host-local', join(bin, 'host-local-alias'));
  // Debian's portmap (reference plugins 1.1.1, up to CNI 1.0.0), which the conflist chains.
  symlinkSync(join(REFERENCE_CNI_DIR, 'portmap'), join(bin, 'portmap'));
  writeFileSync(join(conf, '99-loopback.conf'), '{"cniVersion":"1.0.0","name":"lo","type":"loopback"}\n', {
    mode: 0o600,
  });
  mkdirSync(join(conf, 'multus.d'), { mode: 0o750 });
  chmodSync(join(conf, 'multus.d'), 0o750);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function strand(args: string[], exe = STRAND): Run {
  // These tests are about the CNI dirs and run in the root namespace: the node-level clean-up of
  // uninstall is tested in a namespace of its own (uninstall-node.test.ts).
  if (args[0] === 'uninstall') args = [...args, '--keep-datapath'];
  const r = spawnSync(exe, args, { encoding: 'utf8', env: { PATH: process.env.PATH } });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const dirs = () => ['--cni-bin-dir', bin, '--cni-conf-dir', conf];

/** Every entry under `root` with its type, permission bits, size, link target and content hash. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string, rel: string) => {
    const st = lstatSync(p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out[rel] = `link ${mode} -> ${readlinkSync(p)}`;
    else if (st.isDirectory()) {
      out[rel] = `dir ${mode}`;
      for (const name of readdirSync(p).sort()) walk(join(p, name), `${rel}/${name}`);
    } else
      out[rel] = `file ${mode} ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)}`;
  };
  walk(root, '.');
  return out;
}

function fileHash(p: string): string {
  return createHash('sha256').update(readFileSync(p)).digest('hex');
}

describe('the conflist template', () => {
  it('is cni-conf/10-strand.conflist plus the marker', () => {
    const shipped = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../cni-conf/10-strand.conflist'), 'utf8'));
    const made = strandConflist();
    expect(made[MANAGED_KEY]).toBe(true);
    const { [MANAGED_KEY]: _marker, ...rest } = made;
    expect(rest).toEqual(shipped);
    expect(isStrandConflist(renderConflist())).toBe(true);
    expect(isStrandConflist(JSON.stringify(shipped))).toBe(false);
    expect(isStrandConflist('{"name":"other","strand.dev/managed":true}')).toBe(false);
    expect(isStrandConflist('not json')).toBe(false);
  });

  it('fills the paths and the bridge', () => {
    const c = strandConflist({ bridge: 'strand0', stateDir: '/s', ipamDataDir: '/d', logFile: '/l.log' }) as {
      plugins: Record<string, unknown>[];
    };
    expect(c.plugins[0]).toMatchObject({
      bridge: 'strand0',
      stateDir: '/s',
      logFile: '/l.log',
      ipam: { stateDir: '/s', dataDir: '/d', subnet: 'usePodCidr' },
    });
  });
});

describe('strand install / uninstall', () => {
  it('install then uninstall leaves the directories exactly as they were; what install put there works', () => {
    const before = snapshot(dir);
    const r = strand(['install', ...dirs()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`created ${bin}/strand\ncreated ${bin}/strand-ipam\ncreated ${conf}/${CONFLIST_FILE}\n`);

    // The executable: a copy of this build's CNI executable (dist/cni/strand, not the agent's), 0755;
    // strand-ipam a relative link to it.
    expect(lstatSync(join(bin, 'strand')).mode & 0o7777).toBe(0o755);
    expect(lstatSync(join(bin, 'strand')).isFile()).toBe(true);
    expect(fileHash(join(bin, 'strand'))).toBe(fileHash(STRAND_CNI));
    expect(readlinkSync(join(bin, 'strand-ipam'))).toBe('strand');
    expect(JSON.parse(readFileSync(join(conf, CONFLIST_FILE), 'utf8'))).toEqual(strandConflist());
    expect(lstatSync(join(conf, CONFLIST_FILE)).mode & 0o777).toBe(0o644);
    // No temporary file stayed behind.
    expect(readdirSync(bin).sort()).toEqual([
      'bridge',
      'host-local',
      'host-local-alias',
      'portmap',
      'strand',
      'strand-ipam',
    ]);
    // Nothing to warn of: strand and portmap answered VERSION.
    expect(r.stderr).toBe('');

    // The installed link is the IPAM plugin, the installed file the strand plugin.
    const ipam = spawnSync(join(bin, 'strand-ipam'), [], {
      encoding: 'utf8',
      env: { CNI_COMMAND: 'VERSION' },
      input: '',
    });
    expect(ipam.status, ipam.stderr).toBe(0);
    expect(JSON.parse(ipam.stdout)).toMatchObject({
      cniVersion: '1.1.0',
      supportedVersions: expect.arrayContaining(['0.4.0', '1.1.0']),
    });
    const about = spawnSync(join(bin, 'strand-ipam'), [], { encoding: 'utf8', env: { CNI_COMMAND: '' } });
    expect(about.stderr).toMatch(/strand-ipam/);
    const plugin = spawnSync(join(bin, 'strand'), [], {
      encoding: 'utf8',
      env: { CNI_COMMAND: 'VERSION' },
      input: '{"cniVersion":"1.0.0"}',
    });
    expect(JSON.parse(plugin.stdout)).toMatchObject({ cniVersion: '1.0.0' });
    expect(spawnSync(join(bin, 'strand'), [], { encoding: 'utf8', env: {} }).stderr).toMatch(/^CNI strand plugin /);

    const u = strand(['uninstall', ...dirs()]);
    expect(u.code, u.stderr).toBe(0);
    expect(u.stdout).toBe(`removed ${bin}/strand\nremoved ${bin}/strand-ipam\nremoved ${conf}/${CONFLIST_FILE}\n`);
    expect(snapshot(dir)).toEqual(before);

    // Uninstall again: nothing to do, still success.
    const again = strand(['uninstall', ...dirs()]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`absent ${bin}/strand\nabsent ${bin}/strand-ipam\nabsent ${conf}/${CONFLIST_FILE}\n`);
    expect(snapshot(dir)).toEqual(before);
  });

  it('install twice: the second changes nothing; a changed file or a wrong link is put right', () => {
    expect(strand(['install', ...dirs()]).code).toBe(0);
    const once = snapshot(dir);
    const inode = lstatSync(join(bin, 'strand')).ino;
    const r = strand(['install', ...dirs()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      `unchanged ${bin}/strand\nunchanged ${bin}/strand-ipam\nunchanged ${conf}/${CONFLIST_FILE}\n`,
    );
    expect(snapshot(dir)).toEqual(once);
    expect(lstatSync(join(bin, 'strand')).ino).toBe(inode);

    chmodSync(join(bin, 'strand'), 0o700);
    rmSync(join(bin, 'strand-ipam'));
    symlinkSync('host-local', join(bin, 'strand-ipam'));
    writeFileSync(join(conf, CONFLIST_FILE), renderConflist({ bridge: 'changed0' }));
    const fix = strand(['install', ...dirs()]);
    expect(fix.code, fix.stderr).toBe(0);
    expect(fix.stdout).toBe(`replaced ${bin}/strand\nreplaced ${bin}/strand-ipam\nreplaced ${conf}/${CONFLIST_FILE}\n`);
    expect(snapshot(dir)).toEqual(once);
  });

  it('--dry-run prints the plan and changes nothing, for install and uninstall', () => {
    const before = snapshot(dir);
    const r = strand(['install', ...dirs(), '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      `would create ${bin}/strand\nwould create ${bin}/strand-ipam\nwould create ${conf}/${CONFLIST_FILE}\n`,
    );
    expect(snapshot(dir)).toEqual(before);

    expect(strand(['install', ...dirs()]).code).toBe(0);
    const installed = snapshot(dir);
    const u = strand(['uninstall', ...dirs(), '--dry-run']);
    expect(u.code, u.stderr).toBe(0);
    expect(u.stdout).toBe(
      `would remove ${bin}/strand\nwould remove ${bin}/strand-ipam\nwould remove ${conf}/${CONFLIST_FILE}\n`,
    );
    expect(snapshot(dir)).toEqual(installed);

    // A dry run into directories that do not exist yet creates none of them.
    const fresh = join(dir, 'fresh');
    const d = strand([
      'install',
      '--cni-bin-dir',
      join(fresh, 'bin'),
      '--cni-conf-dir',
      join(fresh, 'conf'),
      '--dry-run',
    ]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(new RegExp(`^would create ${fresh}/bin\nwould create ${fresh}/conf\n`));
    expect(existsSync(fresh)).toBe(false);
  });

  it('the flags fill the conflist', () => {
    const r = strand([
      'install',
      ...dirs(),
      '--bridge',
      'strand0',
      '--state-dir',
      '/var/run/s',
      '--ipam-data-dir',
      '/data/ipam',
      '--log-file',
      '/logs/cni.log',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const written = readFileSync(join(conf, CONFLIST_FILE), 'utf8');
    expect(written).toBe(
      renderConflist({
        bridge: 'strand0',
        stateDir: '/var/run/s',
        ipamDataDir: '/data/ipam',
        logFile: '/logs/cni.log',
      }),
    );
  });

  it("writes the versions strand and the bin dir's portmap support; without portmap, a list without it and a warning", () => {
    // Debian's portmap: the shipped file's versions (strandConflist's defaults), 1.1.0 left out.
    expect(strand(['install', ...dirs()]).code).toBe(0);
    expect(JSON.parse(readFileSync(join(conf, CONFLIST_FILE), 'utf8'))).toMatchObject({
      cniVersion: '1.0.0',
      cniVersions: ['0.3.1', '0.4.0', '1.0.0'],
    });

    // A portmap that speaks only 0.3.1: the list follows it.
    rmSync(join(bin, 'portmap'));
    writeVersionedPlugin(bin, 'portmap', ['0.3.0', '0.3.1']);
    const old = strand(['install', ...dirs()]);
    expect(old.code, old.stderr).toBe(0);
    expect(old.stdout).toContain(`replaced ${conf}/${CONFLIST_FILE}`);
    expect(JSON.parse(readFileSync(join(conf, CONFLIST_FILE), 'utf8'))).toEqual(
      strandConflist({ versions: { cniVersion: '0.3.1', cniVersions: ['0.3.1'] } }),
    );

    // None: strand alone (every version it offers), and a warning naming portmap and what is lost.
    rmSync(join(bin, 'portmap'));
    rmSync(join(bin, 'portmap.calls'));
    const none = strand(['install', ...dirs()]);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stderr).toMatch(
      new RegExp(
        `^strand install: warning: CNI plugin portmap is not in ${bin}: left out of the configuration list, so what it does \\(hostPort mappings\\) is missing on this node\n$`,
      ),
    );
    const alone = JSON.parse(readFileSync(join(conf, CONFLIST_FILE), 'utf8'));
    expect(alone).toEqual(
      strandConflist({
        versions: { cniVersion: '1.0.0', cniVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] },
        chained: [],
      }),
    );
  });

  it('refuses a bad bridge name, an empty dir, an unknown flag with a message (exit 2), changing nothing', () => {
    const before = snapshot(dir);
    const r = strand(['install', ...dirs(), '--bridge', 'a-bridge-name-too-long']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--bridge "a-bridge-name-too-long" is longer than 15 characters/);
    const e = strand(['install', '--cni-bin-dir', '', '--cni-conf-dir', conf]);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/--cni-bin-dir must not be empty/);
    // A mistyped or incomplete flag stops the command: it must not run with the defaults.
    const typo = strand(['install', ...dirs(), '--cni-conf-dri', conf]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toBe('strand install: unknown flag --cni-conf-dri\n');
    expect(strand(['install', ...dirs(), '--bridge']).code).toBe(2);
    expect(strand(['uninstall', ...dirs(), '--bogus']).code).toBe(2);
    expect(snapshot(dir)).toEqual(before);
  });

  it("uninstall keeps what is not Strand's: a foreign conflist, a foreign strand file, a strand-ipam linking elsewhere", () => {
    writeFileSync(
      join(conf, CONFLIST_FILE),
      JSON.stringify({ cniVersion: '1.0.0', name: 'strand', plugins: [{ type: 'bridge' }] }),
    );
    writeFileSync(join(bin, 'strand'), '#!/bin/sh\necho not strand\n', { mode: 0o755 });
    symlinkSync('bridge', join(bin, 'strand-ipam'));
    const before = snapshot(dir);
    const r = strand(['uninstall', ...dirs()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`kept ${bin}/strand (not a Strand executable)`);
    expect(r.stdout).toContain(`kept ${bin}/strand-ipam (links to bridge, not to strand)`);
    expect(r.stdout).toContain(`kept ${conf}/${CONFLIST_FILE} (not Strand's`);
    expect(snapshot(dir)).toEqual(before);
  });

  it('uninstall after someone edited the installed conflist: removed while it is still marked, kept once the marker is gone', () => {
    expect(strand(['install', ...dirs()]).code).toBe(0);
    const path = join(conf, CONFLIST_FILE);
    const edited = JSON.parse(readFileSync(path, 'utf8'));
    edited.plugins[0].mtu = 1400;
    writeFileSync(path, JSON.stringify(edited));
    expect(strand(['uninstall', ...dirs()]).stdout).toContain(`removed ${path}`);
    expect(existsSync(path)).toBe(false);

    expect(strand(['install', ...dirs()]).code).toBe(0);
    delete edited[MANAGED_KEY];
    writeFileSync(path, JSON.stringify(edited));
    expect(strand(['uninstall', ...dirs()]).stdout).toContain(`kept ${path}`);
    expect(existsSync(path)).toBe(true);
  });

  it('install replaces a foreign 10-strand.conflist and says so; it warns when another configuration sorts first', () => {
    writeFileSync(join(conf, CONFLIST_FILE), '{"name":"mine"}');
    writeFileSync(join(conf, '05-other.conflist'), '{"name":"other"}');
    const r = strand(['install', ...dirs()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `replaced ${conf}/${CONFLIST_FILE} (the current file was not written by Strand; 05-other.conflist sorts before ${CONFLIST_FILE}`,
    );
  });

  it('temporary files of an interrupted install are removed; nothing else of that shape is', () => {
    writeFileSync(join(bin, '.strand-tmp-strand.4242.abcdefgh'), 'half an executable');
    symlinkSync('strand', join(bin, '.strand-tmp-strand-ipam.4242.abcdefgh'));
    writeFileSync(join(conf, `.strand-tmp-${CONFLIST_FILE}.4242.abcdefgh`), '{');
    writeFileSync(join(conf, '.strand-tmp-other.conflist.1.x'), 'not ours');
    const r = strand(['install', ...dirs()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`removed ${bin}/.strand-tmp-strand.4242.abcdefgh (left by an interrupted install)`);
    expect(readdirSync(bin).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(readdirSync(conf).filter((n) => n.startsWith('.'))).toEqual(['.strand-tmp-other.conflist.1.x']);
  });

  it('replacing the executable while it is being run: every run starts (no ETXTBSY, no missing file)', async () => {
    // Two different builds to alternate between: this one, and a copy with a byte appended.
    const other = join(dir, 'strand-other');
    copyFileSync(STRAND_CNI, other);
    appendFileSync(other, '\0');
    chmodSync(other, 0o755);
    expect(strand(['install', ...dirs()]).code).toBe(0);

    let stop = false;
    let runs = 0;
    const failures: string[] = [];
    const runner = (async () => {
      while (!stop) {
        const r = await new Promise<{ code: number | null; out: string }>((res) => {
          const c = spawn(join(bin, 'strand-ipam'), [], {
            env: { CNI_COMMAND: 'VERSION' },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let out = '';
          c.stdout.on('data', (d: Buffer) => (out += d.toString()));
          c.on('error', (err) => res({ code: -1, out: String(err) }));
          c.on('close', (code) => res({ code, out }));
        });
        runs++;
        if (r.code !== 0) failures.push(`${r.code}: ${r.out}`);
      }
    })();
    for (let i = 0; i < 4; i++) {
      const source = i % 2 === 0 ? other : STRAND_CNI;
      const r = await new Promise<number | null>((res) =>
        spawn(STRAND, ['install', ...dirs(), '--source', source], { stdio: 'ignore' }).on('close', res),
      );
      expect(r).toBe(0);
      expect(fileHash(join(bin, 'strand'))).toBe(fileHash(source));
    }
    stop = true;
    await runner;
    expect(failures).toEqual([]);
    expect(runs).toBeGreaterThan(0);
  });
});
