import { describe, expect, it } from 'vitest';
import { cniFailure } from '../support/cni-error.ts';
import { atLeast, compareVersions, negotiateVersion, SUPPORTED_VERSIONS } from '../../src/cni/versions.ts';

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
    expect(cniFailure(() => negotiateVersion('0.2.0')).code).toBe(1);
    expect(cniFailure(() => negotiateVersion('2.0.0', ['1.5.0'])).code).toBe(1);
    expect(cniFailure(() => negotiateVersion('one')).code).toBe(6);
    expect(cniFailure(() => negotiateVersion('1.0.0', ['x'])).code).toBe(6);
  });
});
