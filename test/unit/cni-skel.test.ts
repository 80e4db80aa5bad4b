import { describe, expect, it } from 'vitest';
import { CniError, ErrorCode } from '../../src/cni/errors.ts';
import { runCni, type CniIo, type CniPlugin, type Invocation } from '../../src/cni/skel.ts';

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
  calls: { verb: string; inv: Invocation }[];
}

function plugin(calls: Captured['calls'], fail?: CniError): CniPlugin {
  const handle = (verb: string) => async (inv: Invocation) => {
    calls.push({ verb, inv });
    if (fail) throw fail;
  };
  return {
    add: async (inv) => {
      calls.push({ verb: 'ADD', inv });
      if (fail) throw fail;
      return { ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1' }] };
    },
    del: handle('DEL'),
    check: handle('CHECK'),
    gc: handle('GC'),
    status: handle('STATUS'),
  };
}

async function run(env: NodeJS.ProcessEnv, stdin: string, fail?: CniError): Promise<Captured> {
  const out: Captured = { code: -1, stdout: '', stderr: '', calls: [] };
  const io: CniIo = {
    env,
    readStdin: () => stdin,
    writeStdout: (s) => (out.stdout += s),
    writeStderr: (s) => (out.stderr += s),
  };
  out.code = await runCni('CNI test plugin', async () => plugin(out.calls, fail), io);
  return out;
}

const attach = { CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
const conf = (v: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: v, name: 'net', type: 'test', ...extra });

describe('runCni', () => {
  it('prints the about text on stderr and exits 0 without CNI_COMMAND', async () => {
    const r = await run({}, '');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('CNI test plugin');
    expect(r.stderr).toContain('1.1.0');
  });

  it('VERSION echoes the given cniVersion and lists the versions', async () => {
    const r = await run({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}');
    expect(JSON.parse(r.stdout)).toEqual({
      cniVersion: '0.4.0',
      supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
    const empty = await run({ CNI_COMMAND: 'VERSION' }, '');
    expect(JSON.parse(empty.stdout).cniVersion).toBe('1.1.0');
  });

  it('ADD prints the result in the requested version', async () => {
    const r = await run({ CNI_COMMAND: 'ADD', ...attach }, conf('0.3.1'));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      cniVersion: '0.3.1',
      ips: [{ version: '4', address: '10.0.0.2/24', gateway: '10.0.0.1' }],
      dns: {},
    });
    expect(r.calls[0]?.inv.conf.name).toBe('net');
  });

  it('DEL, CHECK, GC and STATUS print nothing on success', async () => {
    for (const [verb, env] of [
      ['DEL', attach],
      ['CHECK', attach],
      ['GC', {}],
      ['STATUS', {}],
    ] as const) {
      const r = await run({ CNI_COMMAND: verb, ...env }, conf('1.1.0'));
      expect(r.code, verb).toBe(0);
      expect(r.stdout, verb).toBe('');
    }
  });

  const cases: [string, NodeJS.ProcessEnv, string, number, RegExp][] = [
    ['malformed JSON', { CNI_COMMAND: 'ADD', ...attach }, '{"cniVersion": ', 6, /failed to decode/],
    ['empty stdin', { CNI_COMMAND: 'ADD', ...attach }, '', 6, /stdin is empty/],
    ['a JSON array', { CNI_COMMAND: 'ADD', ...attach }, '[]', 6, /not a JSON object/],
    ['no cniVersion', { CNI_COMMAND: 'ADD', ...attach }, '{"name":"n","type":"t"}', 1, /no cniVersion/],
    ['unsupported version', { CNI_COMMAND: 'ADD', ...attach }, conf('0.2.0'), 1, /incompatible CNI versions/],
    ['garbage version', { CNI_COMMAND: 'ADD', ...attach }, conf('banana'), 6, /invalid CNI version/],
    ['CHECK at 0.3.1', { CNI_COMMAND: 'CHECK', ...attach }, conf('0.3.1'), 1, /does not allow CHECK/],
    ['GC at 1.0.0', { CNI_COMMAND: 'GC' }, conf('1.0.0'), 1, /does not allow GC/],
    ['STATUS at 0.4.0', { CNI_COMMAND: 'STATUS' }, conf('0.4.0'), 1, /does not allow STATUS/],
    ['missing name', { CNI_COMMAND: 'ADD', ...attach }, '{"cniVersion":"1.0.0","type":"t"}', 7, /missing network name/],
    ['bad name', { CNI_COMMAND: 'ADD', ...attach }, conf('1.0.0', { name: 'a/b' }), 7, /invalid network name/],
    ['type with a slash', { CNI_COMMAND: 'ADD', ...attach }, conf('1.0.0', { type: '../x' }), 7, /type/],
    ['ipam not an object', { CNI_COMMAND: 'ADD', ...attach }, conf('1.0.0', { ipam: 3 }), 7, /ipam/],
    ['unknown command', { CNI_COMMAND: 'ATTACH', ...attach }, conf('1.0.0'), 4, /unknown CNI_COMMAND/],
    ['missing env', { CNI_COMMAND: 'ADD' }, conf('1.0.0'), 4, /CNI_CONTAINERID/],
    [
      'malformed prevResult',
      { CNI_COMMAND: 'ADD', ...attach },
      conf('1.0.0', { prevResult: { ips: [{ address: 'x' }] } }),
      6,
      /prevResult/,
    ],
  ];
  for (const [name, env, stdin, code, msg] of cases) {
    it(`${name} is code ${code}`, async () => {
      const r = await run(env, stdin);
      expect(r.code).toBe(1);
      const e = JSON.parse(r.stdout);
      expect(e.code).toBe(code);
      expect(e.msg).toMatch(msg);
      expect(typeof e.cniVersion).toBe('string');
      expect(r.calls).toHaveLength(0);
    });
  }

  it('stamps errors with the request cniVersion and keeps details', async () => {
    const r = await run(
      { CNI_COMMAND: 'ADD', ...attach },
      conf('0.4.0'),
      new CniError(ErrorCode.TryAgainLater, 'not yet', 'why'),
    );
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: '0.4.0', code: 11, msg: 'not yet', details: 'why' });
  });

  it('turns a plain exception into code 999', async () => {
    const out: Captured = { code: -1, stdout: '', stderr: '', calls: [] };
    const p = plugin(out.calls);
    p.add = async () => {
      throw new Error('boom');
    };
    const code = await runCni('CNI test plugin', async () => p, {
      env: { CNI_COMMAND: 'ADD', ...attach },
      readStdin: () => conf('1.0.0'),
      writeStdout: (s) => (out.stdout += s),
      writeStderr: () => {},
    });
    expect(code).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 999, msg: 'boom' });
  });

  it('DEL ignores a damaged prevResult (best effort)', async () => {
    const r = await run({ CNI_COMMAND: 'DEL', ...attach }, conf('1.0.0', { prevResult: { ips: 'nope' } }));
    expect(r.code).toBe(0);
    expect(r.calls[0]?.inv.conf.prevResult).toBeUndefined();
  });

  it('reads GC attachments from either key, runtimeConfig and disable flags', async () => {
    const r = await run(
      { CNI_COMMAND: 'GC' },
      conf('1.1.0', {
        'cni.dev/attachments': [{ containerID: 'a', ifname: 'eth0' }],
        runtimeConfig: { portMappings: [] },
        disableCheck: 'true',
        disableGC: false,
      }),
    );
    const c = r.calls[0]?.inv.conf;
    expect(c?.validAttachments).toEqual([{ containerID: 'a', ifname: 'eth0' }]);
    expect(c?.runtimeConfig).toEqual({ portMappings: [] });
    expect(c?.disableCheck).toBe(true);
    expect(c?.disableGC).toBe(false);
  });
});

describe('GC attachments from libcni', () => {
  it('reads a null valid-attachments list (Go nil slice) as empty', async () => {
    const out: Captured = { code: -1, stdout: '', stderr: '', calls: [] };
    const code = await runCni('CNI test plugin', async () => plugin(out.calls), {
      env: { CNI_COMMAND: 'GC' },
      readStdin: () => conf('1.1.0', { 'cni.dev/valid-attachments': null, 'cni.dev/attachments': null }),
      writeStdout: (s) => (out.stdout += s),
      writeStderr: () => {},
    });
    expect(code).toBe(0);
    expect(out.calls[0]?.inv.conf.validAttachments).toEqual([]);
  });
});
