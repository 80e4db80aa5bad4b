// Plain checks of decoded JSON for the pod path's fast validation (src/util/lazy-zod.ts): each
// answers whether a value is plainly of a shape, so a caller can take the usual input without zod
// and hand anything else to its schema. They accept a subset of what the schemas accept, never more.

export type Json = Record<string, unknown>;

/** A JSON object (not null, not an array). */
export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

/** An integer in [min, max]. */
export function isIntIn(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/** A non-negative integer that zod's `z.number().int().nonnegative()` takes. */
export function isUint(v: unknown): v is number {
  return isIntIn(v, 0, Number.MAX_SAFE_INTEGER);
}

/** Undefined, or a value `check` accepts. */
export function optional<T>(v: unknown, check: (x: unknown) => x is T): v is T | undefined {
  return v === undefined || check(v);
}

/** A boolean with a default, as `z.boolean().default(d)`; undefined when it is not one. */
export function flagOr(v: unknown, d: boolean): boolean | undefined {
  if (v === undefined) return d;
  return typeof v === 'boolean' ? v : undefined;
}
