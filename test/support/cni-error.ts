// The CniError a call throws (the test fails if it throws nothing, or something else).
import { expect } from 'vitest';
import { CniError } from '../../src/cni/errors.ts';

export function cniFailure(fn: () => unknown): CniError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CniError);
    return err as CniError;
  }
  throw new Error('expected a CniError');
}

export async function cniRejection(p: Promise<unknown>): Promise<CniError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CniError);
    return err as CniError;
  }
  throw new Error('expected a CniError');
}
