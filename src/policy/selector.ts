// Label selectors (apimachinery LabelSelector, R7): parsed from what the API served into a normalised
// Selector, checked the way the API server validates them, and matched against labels the way
// `labels.Requirement.Matches` does (NotIn and DoesNotExist match a missing key).
import type { Requirement, Selector } from './types.ts';

export type Parsed<T> = { ok: true; value: T } | { ok: false; path: string; message: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The empty selector: matches everything. */
export const EVERYTHING: Selector = Object.freeze({ requirements: Object.freeze([]) });

// Label keys and values as apimachinery validates them (validation.IsQualifiedName / IsValidLabelValue).
const NAME_PART = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const name = slash < 0 ? key : key.slice(slash + 1);
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  if (prefix !== undefined && (prefix === '' || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)))
    return `label key ${JSON.stringify(key)} has an invalid prefix`;
  if (name === '' || name.length > 63 || !NAME_PART.test(name)) return `invalid label key ${JSON.stringify(key)}`;
  return undefined;
}

export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63 || !NAME_PART.test(value)) return `invalid label value ${JSON.stringify(value)}`;
  return undefined;
}

function sortedUnique(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}

const OPERATORS = new Set(['In', 'NotIn', 'Exists', 'DoesNotExist']);

/** Parses a LabelSelector as served (`raw` must not be undefined/null: callers decide what absence means). */
export function parseSelector(raw: unknown, path: string): Parsed<Selector> {
  if (!isObject(raw)) return { ok: false, path, message: 'a label selector must be an object' };
  const requirements: Requirement[] = [];
  const ml = raw.matchLabels;
  if (ml !== undefined && ml !== null) {
    if (!isObject(ml))
      return { ok: false, path: `${path}.matchLabels`, message: 'matchLabels must be a map of strings' };
    for (const [key, value] of Object.entries(ml)) {
      if (typeof value !== 'string')
        return { ok: false, path: `${path}.matchLabels.${key}`, message: 'a matchLabels value must be a string' };
      const problem = labelKeyProblem(key) ?? labelValueProblem(value);
      if (problem) return { ok: false, path: `${path}.matchLabels.${key}`, message: problem };
      requirements.push({ key, operator: 'In', values: [value] });
    }
  }
  const me = raw.matchExpressions;
  if (me !== undefined && me !== null) {
    if (!Array.isArray(me))
      return { ok: false, path: `${path}.matchExpressions`, message: 'matchExpressions must be a list' };
    for (let i = 0; i < me.length; i++) {
      const at = `${path}.matchExpressions[${i}]`;
      const e: unknown = me[i];
      if (!isObject(e)) return { ok: false, path: at, message: 'a match expression must be an object' };
      const { key, operator, values } = e;
      if (typeof key !== 'string') return { ok: false, path: `${at}.key`, message: 'the key must be a string' };
      const keyProblem = labelKeyProblem(key);
      if (keyProblem) return { ok: false, path: `${at}.key`, message: keyProblem };
      if (typeof operator !== 'string' || !OPERATORS.has(operator)) {
        return {
          ok: false,
          path: `${at}.operator`,
          message: `unknown operator ${JSON.stringify(operator)} (In, NotIn, Exists, DoesNotExist)`,
        };
      }
      const list = values === undefined || values === null ? [] : values;
      if (!Array.isArray(list) || !list.every((v): v is string => typeof v === 'string')) {
        return { ok: false, path: `${at}.values`, message: 'values must be a list of strings' };
      }
      for (const v of list) {
        const problem = labelValueProblem(v);
        if (problem) return { ok: false, path: `${at}.values`, message: problem };
      }
      const op = operator as Requirement['operator'];
      if ((op === 'In' || op === 'NotIn') && list.length === 0)
        return { ok: false, path: `${at}.values`, message: `${op} needs at least one value` };
      if ((op === 'Exists' || op === 'DoesNotExist') && list.length > 0)
        return { ok: false, path: `${at}.values`, message: `${op} takes no values` };
      requirements.push({ key, operator: op, values: sortedUnique(list) });
    }
  }
  return { ok: true, value: normalise(requirements) };
}

/**
 * Sorted requirements without duplicates: equal meanings get equal text (and peer ids), and the same
 * frozen object while one is alive. 10,000 policies hold ~50,000 selectors, most of them alike (the
 * same `app: x` in a policy's subject and in others' peers): one object each was 8 MB at 50,000 pods.
 * Held weakly, so a selector no policy uses any more goes with its last holder.
 */
function normalise(requirements: Requirement[]): Selector {
  const text = (r: Requirement) => `${r.key}\u0000${r.operator}\u0000${r.values.join('\u0000')}`;
  // One requirement (most selectors: `app: x`): its text is the key, no map, sort or join for it
  // (10,000 policies parse ~40,000 selectors while the pods are listed).
  if (requirements.length === 1) {
    const r = requirements[0] as Requirement;
    const key = text(r);
    return interned.get(key)?.deref() ?? intern(key, [[key, r]]);
  }
  const seen = new Map<string, Requirement>();
  for (const r of requirements) seen.set(text(r), r);
  const sorted = [...seen.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const key = sorted.map(([t]) => t).join('\u0001');
  const shared = interned.get(key)?.deref();
  if (shared) return shared;
  return intern(key, sorted);
}

function intern(key: string, sorted: [string, Requirement][]): Selector {
  const selector: Selector = Object.freeze({
    requirements: Object.freeze(sorted.map(([, r]) => Object.freeze({ ...r, values: Object.freeze(r.values) }))),
  });
  interned.set(key, new WeakRef(selector));
  forget.register(selector, key);
  return selector;
}

const interned = new Map<string, WeakRef<Selector>>();
const forget = new FinalizationRegistry<string>((key) => {
  if (interned.get(key)?.deref() === undefined) interned.delete(key);
});

/** R7: every requirement holds; NotIn and DoesNotExist hold for a missing key. */
export function selectorMatches(selector: Selector, labels: Readonly<Record<string, string>> | undefined): boolean {
  for (const r of selector.requirements) {
    const has = labels !== undefined && Object.hasOwn(labels, r.key);
    const value = has ? labels[r.key] : undefined;
    switch (r.operator) {
      case 'In':
        if (value === undefined || !r.values.includes(value)) return false;
        break;
      case 'NotIn':
        if (value !== undefined && r.values.includes(value)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

export const selectsEverything = (selector: Selector): boolean => selector.requirements.length === 0;
