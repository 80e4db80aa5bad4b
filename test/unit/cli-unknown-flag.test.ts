// Every command refuses a flag it does not define, negated or not, with one line naming the flag as
// typed (issue 16 item 6), exit 2, and runs nothing.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCli, unknownFlag } from '../../src/cli/main.ts';

async function refusal(argv: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  let stderr = '';
  let stdout = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const code = await runCli(argv);
  vi.restoreAllMocks();
  return { code, stderr, stdout };
}

afterEach(() => vi.restoreAllMocks());

describe('unknown flags', () => {
  it('names the flag once, with the command, on one line', async () => {
    expect(await refusal(['agent', '--bogus-flag', '1'])).toEqual({
      code: 2,
      stderr: 'strand agent: unknown flag --bogus-flag\n',
      stdout: '',
    });
  });

  it('refuses a negated flag the command does not define', async () => {
    expect(await refusal(['agent', '--no-such-flag', 'x'])).toEqual({
      code: 2,
      stderr: 'strand agent: unknown flag --no-such-flag\n',
      stdout: '',
    });
  });

  it.each([
    [['version', '--bogus=3'], 'strand version: unknown flag --bogus\n'],
    [['install', '--dry-run', '--no-such-flag'], 'strand install: unknown flag --no-such-flag\n'],
    [['uninstall', '--bogus'], 'strand uninstall: unknown flag --bogus\n'],
    [['status', '--no-such-flag'], 'strand status: unknown flag --no-such-flag\n'],
    [['ipam', 'gc', '--bogus'], 'strand ipam: unknown flag --bogus\n'],
    [['explain', 'a/b', 'c/d', '--bogus'], 'strand explain: unknown flag --bogus\n'],
  ])('%j is refused by every command', async (argv, stderr) => {
    expect(await refusal(argv)).toEqual({ code: 2, stderr, stdout: '' });
  });

  it('accepts the negation of a boolean the command defines', () => {
    const options = { key: { 'keep-datapath': true, 'dry-run': true }, alias: {}, boolean: ['keep-datapath'] };
    expect(unknownFlag(['uninstall', '--no-keep-datapath'], options)).toBeUndefined();
    expect(unknownFlag(['uninstall', '--no-dry-run'], options)).toBe('--no-dry-run');
    expect(unknownFlag(['uninstall', '--', '--bogus'], options)).toBeUndefined();
  });
});
