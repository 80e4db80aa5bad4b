import { describe, expect, it } from 'vitest';
import { CniError } from '../../src/cni/errors.ts';
import { atLeast, compareVersions, negotiateVersion, SUPPORTED_VERSIONS } from '../../src/cni/versions.ts';

function code(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof CniError) return e.code;
    throw e;
  }
  return -1;
}

describe('versions', () => {
  it('implements exactly 0.3.0 to 1.1.0', () => {
    expect(SUPPORTED_VERSIONS).toEqual(['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
  });

  it('compares numerically, not as text', () => {
    expect(compareVersions('0.10.0', '0.4.0')).toBeGreaterThan(0);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
    expect(atLeast('0.3.1', '0.4.0')).toBe(false);
  });

  it('uses the injected cniVersion when supported, even if cniVersions lists newer', () => {
    expect(negotiateVersion('0.4.0', ['1.0.0', '1.1.0'])).toBe('0.4.0');
  });

  it('falls back to the highest supported entry of cniVersions', () => {
    expect(negotiateVersion('1.2.0', ['0.4.0', '1.0.0', '1.3.0'])).toBe('1.0.0');
  });

  it('is code 1 when nothing is supported and code 6 for a non-version', () => {
    expect(code(() => negotiateVersion('0.2.0'))).toBe(1);
    expect(code(() => negotiateVersion('2.0.0', ['1.5.0']))).toBe(1);
    expect(code(() => negotiateVersion('one'))).toBe(6);
    expect(code(() => negotiateVersion('1.0.0', ['x']))).toBe(6);
  });
});
