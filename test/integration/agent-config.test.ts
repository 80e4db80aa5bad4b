// `strand agent` refuses a bad configuration before doing anything: one line on stderr naming the
// option (or file, line and key) and why, exit status 2, and nothing created.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STRAND } from '../support/cni.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'strand-agent-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function agent(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(
    STRAND,
    ['agent', '--state-dir', join(dir, 'state'), '--cni-conf-dir', join(dir, 'net.d'), ...args],
    {
      env: { PATH: process.env.PATH, ...env },
      encoding: 'utf8',
      timeout: 20_000,
    },
  );
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

function toml(text: string): string {
  const path = join(dir, 'agent.toml');
  writeFileSync(path, text);
  return path;
}

/** Exit 2, one line, containing every `parts`; and the agent created nothing. */
function expectRefused(r: ReturnType<typeof agent>, ...parts: string[]): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  for (const p of parts) expect(lines[0]).toContain(p);
  expect(readdirSync(dir).filter((f) => f !== 'agent.toml')).toEqual([]);
}

describe('strand agent configuration refusals', () => {
  it('refuses a file that is not TOML, with the line and column', () => {
    const r = agent(['--config', toml('node-name = "n1"\nvni = = 3\n')]);
    expectRefused(r, `strand agent: config file ${join(dir, 'agent.toml')}: line 2, column 7:`);
  });

  it('refuses unknown keys in the file', () => {
    expectRefused(
      agent(['--config', toml('node-name = "n1"\nnodeName = "n1"\n')]),
      'unknown key "nodeName" (did you mean "node-name"?)',
    );
    expectRefused(agent(['--config', toml('node-name = "n1"\nbackends = "vxlan"\n')]), 'unknown key "backends"');
  });

  it('refuses wrong types and values, naming the option and where it came from', () => {
    expectRefused(
      agent(['--config', toml('node-name = "n1"\nvxlan-port = "4789"\n')]),
      'vxlan-port = "4789"',
      `(config file ${join(dir, 'agent.toml')})`,
      'must be an integer, not a string',
    );
    expectRefused(
      agent(['--config', toml('node-name = ["n1"]\n')]),
      'node-name = ["n1"]',
      'must be a string, not an array',
    );
    expectRefused(
      agent(['--node-name', 'n1', '--backend', 'bgp']),
      'backend = "bgp" (flag --backend): must be one of vxlan, host-gw',
    );
    expectRefused(
      agent(['--node-name', 'n1'], { STRAND_VNI: '16777216' }),
      'vni = "16777216" (environment STRAND_VNI): must be at most 16777215',
    );
    expectRefused(
      agent(['--node-name', 'n1', '--cluster-cidr', '10.0.0.0']),
      'cluster-cidr = "10.0.0.0" (flag --cluster-cidr): "10.0.0.0" is not a CIDR',
    );
  });

  it('refuses to start without a node name', () => {
    expectRefused(agent([]), 'node-name is required: give --node-name, set NODE_NAME or STRAND_NODE_NAME');
    // With NODE_NAME it gets further: to the credentials.
    expectRefused(agent([], { NODE_NAME: 'n1' }), 'no kubeconfig (--kubeconfig or KUBECONFIG) and not in a cluster');
  });

  it('refuses a kubeconfig it cannot load', () => {
    expectRefused(
      agent(['--node-name', 'n1', '--kubeconfig', join(dir, 'missing')]),
      `kubeconfig ${join(dir, 'missing')}:`,
    );
    const bad = toml('clusters: [unclosed\n');
    expectRefused(agent(['--node-name', 'n1', '--kubeconfig', bad]), `kubeconfig ${bad}:`);
  });

  it('refuses unknown flags through the command line', () => {
    const r = agent(['--node-name', 'n1', '--no-such-flag', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('strand agent: unknown flag --no-such-flag\n');
    expect(existsSync(join(dir, 'state'))).toBe(false);
  });
});
