// Every kernel object a test creates carries the prefix "stt" and a unique suffix, so leftovers are
// recognisable and a sweep can remove them (global-setup.ts).
import { randomBytes } from 'node:crypto';

export const TEST_PREFIX = 'stt';

/** A name of at most 15 characters (IFNAMSIZ - 1): "stt" + kind (up to 4 chars) + 8 hex digits. */
export function testName(kind = ''): string {
  const k = kind.slice(0, 4);
  return `${TEST_PREFIX}${k}${randomBytes(4).toString('hex')}`;
}
