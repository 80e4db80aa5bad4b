// The three PATCH content types of the Kubernetes API: JSON merge patch (RFC 7386), JSON patch
// (RFC 6902) and strategic merge patch (apimachinery pkg/util/strategicpatch), the last driven by
// a table of list merge keys instead of Go struct tags.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export const PATCH_TYPES = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
} as const;

export type PatchType = (typeof PATCH_TYPES)[keyof typeof PATCH_TYPES];

export class PatchError extends Error {}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** RFC 7386: objects merge recursively, null deletes, everything else (lists too) replaces. */
export function mergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isObject(patch)) return clone(patch);
  const result: JsonObject = isObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/**
 * How a list field merges under a strategic merge patch, by dotted field path without list
 * indices (`status.conditions`, `spec.containers.ports`). `{ key }` merges elements that share the
 * merge key; `'set'` merges a list of scalars as a set. Lists not named here are replaced, as for
 * fields without `patchStrategy:"merge"` in the Go types.
 */
export type ListStrategy = { key: string } | 'set';
export type MergeKeys = Readonly<Record<string, ListStrategy>>;

const DIRECTIVE = '$patch';
const DELETE_FROM_PRIMITIVE = '$deleteFromPrimitiveList/';
const SET_ELEMENT_ORDER = '$setElementOrder/';
const RETAIN_KEYS = '$retainKeys';

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

export function strategicMergePatch(target: JsonValue | undefined, patch: JsonValue, mergeKeys: MergeKeys): JsonValue {
  if (!isObject(patch)) throw new PatchError('a strategic merge patch must be a JSON object');
  return mergeMap(isObject(target) ? target : {}, patch, '', mergeKeys) ?? {};
}

function mergeMap(target: JsonObject, patch: JsonObject, path: string, mergeKeys: MergeKeys): JsonObject | undefined {
  const directive = patch[DIRECTIVE];
  if (directive === 'delete') return undefined;
  if (directive === 'replace') {
    const replaced = clone(patch);
    delete replaced[DIRECTIVE];
    return replaced;
  }
  if (directive !== undefined) throw new PatchError(`unknown patch directive "${String(directive)}" at ${path || '.'}`);

  const result = clone(target);
  let retainKeys: string[] | undefined;
  for (const [key, value] of Object.entries(patch)) {
    if (key === RETAIN_KEYS) {
      if (!Array.isArray(value)) throw new PatchError(`${RETAIN_KEYS} must be a list at ${path || '.'}`);
      retainKeys = value.map(String);
      continue;
    }
    if (key.startsWith(SET_ELEMENT_ORDER)) continue; // order hints only; element order is kept as merged
    if (key.startsWith(DELETE_FROM_PRIMITIVE)) {
      const field = key.slice(DELETE_FROM_PRIMITIVE.length);
      const current = result[field];
      if (Array.isArray(current) && Array.isArray(value)) {
        result[field] = current.filter((item) => !value.some((v) => JSON.stringify(v) === JSON.stringify(item)));
      }
      continue;
    }
    const fieldPath = join(path, key);
    if (value === null) {
      delete result[key];
    } else if (isObject(value)) {
      const merged = mergeMap(isObject(result[key]) ? result[key] : {}, value, fieldPath, mergeKeys);
      if (merged === undefined) delete result[key];
      else result[key] = merged;
    } else if (Array.isArray(value)) {
      const strategy = mergeKeys[fieldPath];
      const current = result[key];
      result[key] =
        strategy === undefined
          ? clone(value)
          : mergeList(Array.isArray(current) ? current : [], value, fieldPath, strategy, mergeKeys);
    } else {
      result[key] = value;
    }
  }
  if (retainKeys !== undefined) {
    for (const key of Object.keys(result)) if (!retainKeys.includes(key)) delete result[key];
  }
  return result;
}

function mergeList(
  target: JsonValue[],
  patch: JsonValue[],
  path: string,
  strategy: ListStrategy,
  mergeKeys: MergeKeys,
): JsonValue[] {
  if (strategy === 'set') {
    const result = clone(target);
    for (const item of patch) {
      if (isObject(item) && item[DIRECTIVE] === 'replace') return patch.filter((p) => p !== item).map(clone);
      if (!result.some((r) => JSON.stringify(r) === JSON.stringify(item))) result.push(clone(item));
    }
    return result;
  }
  const { key } = strategy;
  if (patch.some((p) => isObject(p) && p[DIRECTIVE] === 'replace')) {
    return patch.filter((p) => !(isObject(p) && p[DIRECTIVE] === 'replace')).map(clone);
  }
  const result = clone(target);
  const sameKey = (a: JsonValue, keyValue: JsonValue | undefined) =>
    isObject(a) && JSON.stringify(a[key]) === JSON.stringify(keyValue);
  for (const item of patch) {
    if (!isObject(item)) throw new PatchError(`elements of ${path} must be objects with merge key "${key}"`);
    if (!Object.hasOwn(item, key)) throw new PatchError(`an element of ${path} has no merge key "${key}"`);
    const index = result.findIndex((r) => sameKey(r, item[key]));
    if (item[DIRECTIVE] === 'delete') {
      if (index >= 0) result.splice(index, 1);
      continue;
    }
    if (index >= 0) {
      const existing = result[index];
      const merged = mergeMap(isObject(existing) ? existing : {}, item, path, mergeKeys);
      if (merged === undefined) result.splice(index, 1);
      else result[index] = merged;
    } else {
      const added = mergeMap({}, item, path, mergeKeys);
      if (added !== undefined) result.push(added);
    }
  }
  return result;
}

// RFC 6902 JSON patch with RFC 6901 pointers.

type JsonPatchOp =
  | { op: 'add' | 'replace' | 'test'; path: string; value: JsonValue }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchError(`invalid JSON pointer "${pointer}"`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function resolveParent(doc: JsonValue, tokens: string[], pointer: string): { parent: JsonValue; last: string } {
  let node: JsonValue = doc;
  for (const token of tokens.slice(0, -1)) {
    const next: JsonValue | undefined = Array.isArray(node)
      ? node[Number(token)]
      : isObject(node)
        ? node[token]
        : undefined;
    if (next === undefined) throw new PatchError(`path "${pointer}" does not exist`);
    node = next;
  }
  const last = tokens[tokens.length - 1];
  if (last === undefined) throw new PatchError('the document root cannot be the target here');
  return { parent: node, last };
}

function getAt(doc: JsonValue, pointer: string): JsonValue {
  let node: JsonValue | undefined = doc;
  for (const token of parsePointer(pointer)) {
    node = Array.isArray(node) ? node[Number(token)] : isObject(node) ? node[token] : undefined;
    if (node === undefined) throw new PatchError(`path "${pointer}" does not exist`);
  }
  return node;
}

function arrayIndex(arr: JsonValue[], token: string, forAdd: boolean, pointer: string): number {
  if (forAdd && token === '-') return arr.length;
  if (!/^(0|[1-9]\d*)$/.test(token)) throw new PatchError(`invalid array index in "${pointer}"`);
  const i = Number(token);
  if (i > arr.length || (!forAdd && i === arr.length)) throw new PatchError(`index out of range in "${pointer}"`);
  return i;
}

function addAt(doc: JsonValue, pointer: string, value: JsonValue): JsonValue {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return clone(value);
  const { parent, last } = resolveParent(doc, tokens, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, true, pointer), 0, clone(value));
  else if (isObject(parent)) parent[last] = clone(value);
  else throw new PatchError(`cannot add at "${pointer}": parent is not a container`);
  return doc;
}

function removeAt(doc: JsonValue, pointer: string): JsonValue {
  const tokens = parsePointer(pointer);
  const { parent, last } = resolveParent(doc, tokens, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, false, pointer), 1);
  else if (isObject(parent) && Object.hasOwn(parent, last)) delete parent[last];
  else throw new PatchError(`cannot remove "${pointer}": it does not exist`);
  return doc;
}

export function jsonPatch(target: JsonValue, patch: JsonValue): JsonValue {
  if (!Array.isArray(patch)) throw new PatchError('a JSON patch must be a list of operations');
  let doc = clone(target);
  for (const raw of patch) {
    if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') {
      throw new PatchError(`invalid JSON patch operation ${JSON.stringify(raw)}`);
    }
    const op = raw as unknown as JsonPatchOp;
    switch (op.op) {
      case 'add':
        doc = addAt(doc, op.path, op.value);
        break;
      case 'remove':
        doc = removeAt(doc, op.path);
        break;
      case 'replace':
        getAt(doc, op.path);
        doc = addAt(op.path === '' ? doc : removeAt(doc, op.path), op.path, op.value);
        break;
      case 'move': {
        const value = getAt(doc, op.from);
        doc = addAt(removeAt(doc, op.from), op.path, value);
        break;
      }
      case 'copy':
        doc = addAt(doc, op.path, getAt(doc, op.from));
        break;
      case 'test':
        if (JSON.stringify(getAt(doc, op.path)) !== JSON.stringify(op.value)) {
          throw new PatchError(`test operation failed at "${op.path}"`);
        }
        break;
      default:
        throw new PatchError(`unknown JSON patch operation "${String((raw as JsonObject).op)}"`);
    }
  }
  return doc;
}

export function applyPatch(type: PatchType, target: JsonValue, patch: JsonValue, mergeKeys: MergeKeys): JsonValue {
  switch (type) {
    case PATCH_TYPES.merge:
      return mergePatch(target, patch);
    case PATCH_TYPES.strategic:
      return strategicMergePatch(target, patch, mergeKeys);
    case PATCH_TYPES.json:
      return jsonPatch(target, patch);
  }
}
