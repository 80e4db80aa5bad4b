// The object store behind the test API server: one global resourceVersion counter (etcd's
// revision), objects per resource, and a bounded history of change events that watches replay.
// Writes follow the API server's rules where a client can tell the difference: uid, creation time
// and resourceVersion are the server's; a stale resourceVersion on update is a 409 Conflict; a write
// that changes nothing is not a new version and emits no event; the main endpoint of a resource with
// a status subresource ignores status changes and /status ignores everything but status and metadata.
import { randomBytes, randomUUID } from 'node:crypto';
import { applyPatch, isObject, type JsonObject, type JsonValue, type PatchType } from './patch.ts';
import type { ResourceName, ResourceType } from './resources.ts';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoredEvent {
  rv: number;
  resource: ResourceName;
  type: EventType;
  /** The object's namespace ('' for cluster-scoped), for namespaced watches. */
  namespace: string;
  object: JsonValue;
  /** The object before a MODIFIED (or DELETED) change, to tell selector transitions apart. */
  previous?: JsonValue;
}

export interface StoredEntry {
  key: string;
  namespace: string;
  name: string;
  object: JsonValue;
}

/** Which parts of an object an update may change. */
export type UpdateScope = 'main' | 'status' | 'all';

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
}

/** A Kubernetes Status failure, thrown by the store and sent as the HTTP error body. */
export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: StatusDetails | undefined;

  constructor(code: number, reason: string, message: string, details?: StatusDetails) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): JsonObject {
    const status: JsonObject = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
    if (this.details !== undefined) status.details = { ...this.details } as JsonObject;
    return status;
  }
}

export function notFound(type: ResourceType, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${type.resource} "${name}" not found`, detailsOf(type, name));
}

function detailsOf(type: ResourceType, name: string): StatusDetails {
  const group = type.apiVersion.includes('/') ? type.apiVersion.split('/')[0] : undefined;
  return group === undefined ? { name, kind: type.resource } : { name, group, kind: type.resource };
}

/** JSON with object keys sorted, to compare objects regardless of key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (!isObject(v)) return v;
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, v[k]]),
    );
  });
}

/** RFC 3339 with second precision, as metav1.Time marshals. */
function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function metadataOf(obj: JsonValue): JsonObject | undefined {
  return isObject(obj) && isObject(obj.metadata) ? obj.metadata : undefined;
}

export class ObjectStore {
  /** The last resourceVersion handed out. */
  revision = 0;
  /** Every event with rv > floor is in the history; a watch from an older version gets 410. */
  floor = 0;
  history: StoredEvent[] = [];
  historyLimit: number;
  onEvent: (event: StoredEvent) => void = () => {};

  private readonly objects = new Map<ResourceName, Map<string, StoredEntry>>();
  /** Each resource's entries in key order, made again after an add or a delete (an update changes an
   * entry in place): a paged list of 50,000 pods sorted them for each of its 100 pages (14 s). */
  private readonly sorted = new Map<ResourceName, StoredEntry[]>();
  private malformedCount = 0;

  constructor(historyLimit: number) {
    this.historyLimit = historyLimit;
  }

  static keyOf(namespace: string, name: string): string {
    return namespace === '' ? name : `${namespace}/${name}`;
  }

  private table(resource: ResourceName): Map<string, StoredEntry> {
    let table = this.objects.get(resource);
    if (!table) {
      table = new Map();
      this.objects.set(resource, table);
    }
    return table;
  }

  /** Entries in key order, optionally of one namespace. */
  entries(resource: ResourceName, namespace?: string): StoredEntry[] {
    const all = this.sortedEntries(resource);
    return namespace === undefined ? [...all] : all.filter((e) => e.namespace === namespace);
  }

  /** The same, the store's own array when every namespace's (not to be changed; a list page reads it). */
  sortedEntries(resource: ResourceName, namespace?: string): readonly StoredEntry[] {
    if (namespace !== undefined) return this.entries(resource, namespace);
    let all = this.sorted.get(resource);
    if (!all) {
      all = [...this.table(resource).values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      this.sorted.set(resource, all);
    }
    return all;
  }

  find(resource: ResourceName, namespace: string, name: string): StoredEntry | undefined {
    return this.table(resource).get(ObjectStore.keyOf(namespace, name));
  }

  private record(event: Omit<StoredEvent, 'rv'>, rv: number): void {
    const stored: StoredEvent = { ...event, rv };
    this.history.push(stored);
    while (this.history.length > this.historyLimit) {
      const dropped = this.history.shift();
      if (dropped) this.floor = dropped.rv;
    }
    this.onEvent(stored);
  }

  /** Forgets all history, as an etcd compaction does: a watch from any earlier version gets 410 Gone. */
  compact(): void {
    this.history = [];
    this.floor = this.revision;
  }

  create(type: ResourceType, input: JsonValue, namespace: string | undefined): JsonObject {
    if (!isObject(input)) throw new ApiError(400, 'BadRequest', `the body of a ${type.kind} must be a JSON object`);
    const obj = structuredClone(input);
    const meta: JsonObject = isObject(obj.metadata) ? obj.metadata : {};
    obj.metadata = meta;
    if (typeof meta.name !== 'string' || meta.name === '') {
      if (typeof meta.generateName === 'string' && meta.generateName !== '') {
        meta.name = meta.generateName + randomBytes(3).toString('hex').slice(0, 5);
      } else {
        throw new ApiError(
          400,
          'Invalid',
          `${type.kind} "": metadata.name: Required value: name or generateName is required`,
        );
      }
    }
    const name = meta.name as string;
    let ns = '';
    if (type.namespaced) {
      const own = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : undefined;
      if (namespace !== undefined && own !== undefined && own !== namespace) {
        throw new ApiError(
          400,
          'BadRequest',
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      ns = namespace ?? own ?? 'default';
      meta.namespace = ns;
    } else {
      delete meta.namespace;
    }
    if (this.find(type.resource, ns, name)) {
      throw new ApiError(409, 'AlreadyExists', `${type.resource} "${name}" already exists`, detailsOf(type, name));
    }
    const rv = ++this.revision;
    meta.uid = randomUUID();
    meta.resourceVersion = String(rv);
    meta.creationTimestamp = now();
    if (type.resource === 'pods' || type.resource === 'networkpolicies') meta.generation = 1;
    if (type.resource === 'namespaces') {
      const status = isObject(obj.status) ? obj.status : {};
      status.phase ??= 'Active';
      obj.status = status;
    }
    const stored = { apiVersion: type.apiVersion, kind: type.kind, ...obj };
    stored.apiVersion = type.apiVersion;
    stored.kind = type.kind;
    const key = ObjectStore.keyOf(ns, name);
    this.table(type.resource).set(key, { key, namespace: ns, name, object: stored });
    this.sorted.delete(type.resource);
    this.record({ resource: type.resource, type: 'ADDED', namespace: ns, object: stored }, rv);
    return structuredClone(stored);
  }

  /**
   * Replaces an object. `scope` limits what may change: 'main' keeps the old status, 'status' keeps
   * the old spec (the registry strategies' PrepareForUpdate), 'all' is the test's own write.
   */
  replace(type: ResourceType, namespace: string, name: string, input: JsonValue, scope: UpdateScope): JsonObject {
    const entry = this.find(type.resource, namespace, name);
    if (!entry) throw notFound(type, name);
    if (!isObject(input)) throw new ApiError(400, 'BadRequest', `the body of a ${type.kind} must be a JSON object`);
    const old = entry.object;
    const oldMeta = metadataOf(old) ?? {};
    const next = structuredClone(input);
    const meta: JsonObject = isObject(next.metadata) ? next.metadata : {};
    next.metadata = meta;
    if (meta.name !== undefined && meta.name !== name) {
      throw new ApiError(
        400,
        'BadRequest',
        `the name of the object (${String(meta.name)}) does not match the name on the URL (${name})`,
      );
    }
    if (type.namespaced && meta.namespace !== undefined && meta.namespace !== namespace) {
      throw new ApiError(
        400,
        'BadRequest',
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    if (
      meta.resourceVersion !== undefined &&
      meta.resourceVersion !== '' &&
      meta.resourceVersion !== oldMeta.resourceVersion
    ) {
      throw new ApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${type.resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        detailsOf(type, name),
      );
    }
    if (type.hasStatus && scope === 'main' && isObject(old)) {
      if (old.status === undefined) delete next.status;
      else next.status = structuredClone(old.status);
    }
    if (scope === 'status' && isObject(old)) {
      if (old.spec === undefined) delete next.spec;
      else next.spec = structuredClone(old.spec);
    }
    meta.name = name;
    if (type.namespaced) meta.namespace = namespace;
    else delete meta.namespace;
    for (const kept of ['uid', 'creationTimestamp', 'generation'] as const) {
      if (oldMeta[kept] === undefined) delete meta[kept];
      else meta[kept] = oldMeta[kept];
    }
    meta.resourceVersion = oldMeta.resourceVersion ?? '';
    next.apiVersion = type.apiVersion;
    next.kind = type.kind;
    // An update that changes nothing is not written (etcd3 GuaranteedUpdate): no new version, no event.
    if (canonicalJson(next) === canonicalJson(old)) return structuredClone(next);
    if (typeof meta.generation === 'number' && isObject(old) && canonicalJson(next.spec) !== canonicalJson(old.spec)) {
      meta.generation += 1;
    }
    const rv = ++this.revision;
    meta.resourceVersion = String(rv);
    entry.object = next;
    this.record({ resource: type.resource, type: 'MODIFIED', namespace, object: next, previous: old }, rv);
    return structuredClone(next);
  }

  patch(
    type: ResourceType,
    namespace: string,
    name: string,
    patchType: PatchType,
    patch: JsonValue,
    scope: UpdateScope,
  ): JsonObject {
    const entry = this.find(type.resource, namespace, name);
    if (!entry) throw notFound(type, name);
    const current = isObject(entry.object) ? entry.object : {};
    let patched: JsonValue;
    try {
      patched = applyPatch(patchType, current, patch, type.mergeKeys);
    } catch (err) {
      throw new ApiError(
        422,
        'Invalid',
        `the patch could not be applied: ${(err as Error).message}`,
        detailsOf(type, name),
      );
    }
    return this.replace(type, namespace, name, patched, scope);
  }

  remove(
    type: ResourceType,
    namespace: string,
    name: string,
    preconditions?: { uid?: string; resourceVersion?: string },
  ): JsonValue {
    const table = this.table(type.resource);
    const key = ObjectStore.keyOf(namespace, name);
    const entry = table.get(key);
    if (!entry) throw notFound(type, name);
    const meta = metadataOf(entry.object);
    if (
      (preconditions?.uid !== undefined && preconditions.uid !== meta?.uid) ||
      (preconditions?.resourceVersion !== undefined && preconditions.resourceVersion !== meta?.resourceVersion)
    ) {
      throw new ApiError(409, 'Conflict', `Precondition failed for ${type.resource} "${name}"`, detailsOf(type, name));
    }
    return this.removeEntry(type, entry);
  }

  private removeEntry(type: ResourceType, entry: StoredEntry): JsonValue {
    this.table(type.resource).delete(entry.key);
    this.sorted.delete(type.resource);
    const rv = ++this.revision;
    const final = structuredClone(entry.object);
    const meta = metadataOf(final);
    if (meta) meta.resourceVersion = String(rv);
    this.record(
      { resource: type.resource, type: 'DELETED', namespace: entry.namespace, object: final, previous: entry.object },
      rv,
    );
    return structuredClone(final);
  }

  /**
   * Stores any JSON value as an object of `type`, bypassing validation, and emits ADDED for it.
   * When it has a metadata object, its resourceVersion is set (unless told not to), so a client
   * that takes versions from the objects it sees keeps a valid one.
   */
  injectMalformed(
    type: ResourceType,
    raw: JsonValue,
    opts: { namespace?: string; stampResourceVersion?: boolean },
  ): { resource: ResourceName; key: string } {
    const obj = structuredClone(raw);
    const meta = metadataOf(obj);
    const ownName = typeof meta?.name === 'string' && meta.name !== '' ? meta.name : undefined;
    const ownNamespace = typeof meta?.namespace === 'string' ? meta.namespace : undefined;
    const namespace = type.namespaced ? (opts.namespace ?? ownNamespace ?? 'default') : '';
    const name = ownName ?? `\u0000malformed-${++this.malformedCount}`;
    const key = ObjectStore.keyOf(namespace, name);
    if (this.table(type.resource).has(key))
      throw new ApiError(409, 'AlreadyExists', `${type.resource} "${name}" already exists`);
    const rv = ++this.revision;
    if (meta && opts.stampResourceVersion !== false) meta.resourceVersion = String(rv);
    this.table(type.resource).set(key, { key, namespace, name, object: obj });
    this.sorted.delete(type.resource);
    this.record({ resource: type.resource, type: 'ADDED', namespace, object: obj }, rv);
    return { resource: type.resource, key };
  }

  removeByKey(type: ResourceType, key: string): JsonValue | undefined {
    const entry = this.table(type.resource).get(key);
    return entry ? this.removeEntry(type, entry) : undefined;
  }
}
