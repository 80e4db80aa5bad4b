// Label and field selectors as the Kubernetes API server parses them (apimachinery
// pkg/labels/selector.go and pkg/fields/selector.go), for the test API server.

export type LabelRequirement =
  | { op: 'exists'; key: string }
  | { op: '!'; key: string }
  | { op: '='; key: string; value: string }
  | { op: '!='; key: string; value: string }
  | { op: 'in'; key: string; values: string[] }
  | { op: 'notin'; key: string; values: string[] }
  | { op: 'gt' | 'lt'; key: string; value: number };

export type FieldRequirement = { op: '=' | '!='; field: string; value: string };

export class SelectorError extends Error {}

/**
 * Splits on commas that are not inside parentheses: `a in (x,y),b` has two requirements.
 */
function splitTopLevel(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

const KEY = String.raw`[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?`;
const VALUE = String.raw`([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?`;
const keyPattern = new RegExp(`^${KEY}$`);
const valuePattern = new RegExp(`^${VALUE}$`);

function checkKey(key: string, selector: string): string {
  if (!keyPattern.test(key)) throw new SelectorError(`invalid label key "${key}" in selector "${selector}"`);
  return key;
}

function checkValue(value: string, selector: string): string {
  if (!valuePattern.test(value)) throw new SelectorError(`invalid label value "${value}" in selector "${selector}"`);
  return value;
}

function parseSet(body: string, selector: string): string[] {
  const m = /^\((.*)\)$/.exec(body.trim());
  if (!m) throw new SelectorError(`expected a parenthesised value set in selector "${selector}"`);
  return (m[1] ?? '').split(',').map((v) => checkValue(v.trim(), selector));
}

export function parseLabelSelector(selector: string | undefined): LabelRequirement[] {
  if (selector === undefined || selector.trim() === '') return [];
  return splitTopLevel(selector).map((part): LabelRequirement => {
    let m: RegExpExecArray | null;
    if ((m = /^!\s*(\S+)$/.exec(part))) return { op: '!', key: checkKey(m[1] ?? '', selector) };
    if ((m = /^(\S+)\s+(in|notin)\s*(\(.*\))$/.exec(part))) {
      const op = m[2] === 'in' ? 'in' : 'notin';
      return { op, key: checkKey(m[1] ?? '', selector), values: parseSet(m[3] ?? '', selector) };
    }
    if ((m = /^([^=!<>\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part))) {
      const key = checkKey(m[1] ?? '', selector);
      const value = checkValue(m[3] ?? '', selector);
      return m[2] === '!=' ? { op: '!=', key, value } : { op: '=', key, value };
    }
    if ((m = /^([^=!<>\s]+)\s*([<>])\s*(-?\d+)$/.exec(part))) {
      return { op: m[2] === '>' ? 'gt' : 'lt', key: checkKey(m[1] ?? '', selector), value: Number(m[3]) };
    }
    if ((m = /^(\S+)$/.exec(part))) return { op: 'exists', key: checkKey(m[1] ?? '', selector) };
    throw new SelectorError(`unable to parse requirement "${part}" in selector "${selector}"`);
  });
}

export function matchesLabels(requirements: LabelRequirement[], labels: Record<string, string>): boolean {
  return requirements.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    const value = labels[r.key];
    switch (r.op) {
      case 'exists':
        return has;
      case '!':
        return !has;
      case '=':
        return has && value === r.value;
      case '!=':
        return !has || value !== r.value;
      case 'in':
        return has && r.values.includes(value ?? '');
      case 'notin':
        return !has || !r.values.includes(value ?? '');
      case 'gt':
      case 'lt': {
        if (!has || !/^-?\d+$/.test(value ?? '')) return false;
        const n = Number(value);
        return r.op === 'gt' ? n > r.value : n < r.value;
      }
    }
  });
}

/** `field=value`, `field==value` or `field!=value`: the only forms a field selector has. */
const FIELD_REQUIREMENT = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/;

/**
 * Field selectors support only `=`, `==` and `!=` joined by commas; which fields may be selected on is
 * decided per resource by the caller (the API server answers 400 for an unsupported field label).
 */
export function parseFieldSelector(selector: string | undefined, supported: readonly string[]): FieldRequirement[] {
  if (selector === undefined || selector.trim() === '') return [];
  return splitTopLevel(selector).map((part): FieldRequirement => {
    const m = FIELD_REQUIREMENT.exec(part);
    if (!m) throw new SelectorError(`invalid field selector requirement "${part}"`);
    const field = m[1] ?? '';
    if (!supported.includes(field)) throw new SelectorError(`field label not supported: ${field}`);
    return { op: m[2] === '!=' ? '!=' : '=', field, value: (m[3] ?? '').trim() };
  });
}

/**
 * The value a field selector requires `field` to equal (`field=value` or `field==value`), as
 * fields.Selector.RequiresExactMatch answers it: kube-apiserver's request info takes a list or watch
 * with `metadata.name=<x>` as a request for the object named x. Undefined when there is none.
 */
export function fieldSelectorRequires(selector: string | undefined, field: string): string | undefined {
  if (selector === undefined) return undefined;
  for (const part of splitTopLevel(selector)) {
    const m = FIELD_REQUIREMENT.exec(part);
    if (m && m[1] === field && m[2] !== '!=') return (m[3] ?? '').trim();
  }
  return undefined;
}

export function matchesFields(requirements: FieldRequirement[], fields: Record<string, string>): boolean {
  return requirements.every((r) => {
    const value = fields[r.field] ?? '';
    return r.op === '=' ? value === r.value : value !== r.value;
  });
}
