// CNI spec versions: what Strand implements, comparison, and the choice of version from a config's
// cniVersion and cniVersions (CNI 1.1 §1: the highest version both sides support).
import { CniError, ErrorCode } from './errors.ts';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type SpecVersion = (typeof SUPPORTED_VERSIONS)[number];
export const CURRENT_VERSION: SpecVersion = '1.1.0';

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;

/** Whether `v` is a semantic version (what compareVersions takes without throwing). */
export function isSemver(v: string): boolean {
  return SEMVER.test(v);
}

function parts(v: string): [number, number, number] {
  const m = SEMVER.exec(v);
  if (!m) throw new CniError(ErrorCode.DecodingFailure, `invalid CNI version "${v}": not a semantic version`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

export function compareVersions(a: string, b: string): number {
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] as number) - (pb[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

export function isSupported(v: string): v is SpecVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** At least version `min`? Throws code 6 if `v` is not a version at all. */
export function atLeast(v: string, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

/**
 * The version a request runs at. The runtime has already chosen one and injected it as cniVersion
 * (CNI 1.1 §3), so that is the answer whenever Strand implements it. A config read from a file may
 * carry a newer cniVersion with a list of alternatives (cniVersions, 1.1): then the highest of those
 * that Strand implements. Nothing usable is code 1; a string that is no version at all is code 6.
 */
export function negotiateVersion(cniVersion: string, cniVersions?: readonly string[]): SpecVersion {
  const offered = [cniVersion, ...(cniVersions ?? [])];
  for (const v of offered) parts(v);
  if (isSupported(cniVersion)) return cniVersion;
  const best = offered.filter(isSupported).sort(compareVersions).at(-1);
  if (!best) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      'incompatible CNI versions',
      `config is "${offered.join('", "')}", plugin supports [${SUPPORTED_VERSIONS.join(' ')}]`,
    );
  }
  return best;
}
