// A small Kubernetes API server for tests: nodes, pods, namespaces, networking.k8s.io/v1
// NetworkPolicies and (once a test installs their CRD: installCrd) policy.networking.k8s.io/v1alpha2
// ClusterNetworkPolicies over plain HTTP on 127.0.0.1, with the list/watch protocol that informers rely on
// (resourceVersion, replay from a bounded history, bookmarks, 410 Expired after compaction), the
// three PATCH types, and test controls: stop and restart on the same port with the state kept,
// dropping watches, forced compaction, malformed objects, injected failures and a request log.
//
//   const api = await TestApiServer.start();
//   api.create('nodes', { metadata: { name: 'n1' }, spec: { podCIDR: '10.1.0.0/24' } });
//   api.writeKubeconfig(`${dir}/kubeconfig`);          // KubeConfig.loadFromFile works on it
//   ...
//   await api.stop();                                  // outage; state kept
//   await api.start();                                 // same port
//   await api.close();                                 // final stop
//
// With `rbac`, requests are authenticated by bearer token and authorized as kube-apiserver's RBAC
// authorizer would, from the ClusterRoles, Roles and bindings of a manifest (deploy/strand.yaml by
// default; k8s/rbac.ts): `agentToken` is the manifest's DaemonSet ServiceAccount, `adminToken` is
// system:masters (for a test's own requests over HTTP; the in-process methods need no token), and
// leastPrivilege() reports which of the manifest's permissions the agent's identity used.
//
//   const api = await TestApiServer.start({ rbac: {} });
//   api.writeKubeconfig(`${dir}/kubeconfig`, { token: api.agentToken });   // the agent's kubeconfig
//
// What client-node 2 does with this (read in node_modules/@kubernetes/client-node/dist):
// - An http:// cluster must have `insecure-skip-tls-verify: true` or every request throws
//   "HTTP protocol is not allowed when skipTLSVerify is not set or false"; writeKubeconfig sets it.
// - ListWatch (makeInformer) lists, then watches with resourceVersion (never allowWatchBookmarks or
//   timeoutSeconds). A watch that ends cleanly is resumed from the last version seen; an ERROR event
//   with code 410 clears the version so the next round relists; a watch whose HTTP status is 410 does
//   the same. Any other failure (connection refused or reset, non-200, a failed list) is passed to
//   the 'error' callbacks and the informer STOPS: the consumer must call start() again, with backoff.
//   stop() also reports an AbortError to the 'error' callbacks, so that handler must know it stopped.
//   Reconnects with no event in between back off 1 s, 2 s, … 30 s; Watch aborts a stream silent for
//   30 s and resumes at once (a quiet resource is re-watched every 30 s).
// - makeInformer's labelSelector reaches only the watch: the list function must apply it too.
// - List responses are deserialized into model classes (timestamps become Dates, unknown fields are
//   dropped, a string where an array belongs throws "data is not iterable" and fails the whole list);
//   watch objects are raw JSON. An object without metadata throws inside ListWatch (start() rejects,
//   or an unhandled rejection from a watch event): filter in the list function and a Watch subclass.
// - The generated API methods send PATCH as application/json-patch+json unless the Content-Type is
//   overridden: `setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch)`.
//
// Lists of pods, nodes and namespaces are answered in Kubernetes protobuf (k8s/protobuf.ts) when the
// request's Accept header prefers application/vnd.kubernetes.protobuf, as kube-apiserver answers
// client-go's components, and so is an error answer to such a list (a protobuf Status); every other
// answer is JSON (kube-apiserver would also serve NetworkPolicies, gets and watches in protobuf). An
// object the encoder cannot write (a field its schema lacks, a malformed object) makes that list JSON:
// ApiRequest.format and protobufError say which and why.
//
// Simplifications: a namespace's deletion does not cascade; a pod is deleted at once (no grace
// period); a LIST always reads the latest state (its resourceVersion parameter is ignored); the
// continue token pages through current state, not a snapshot.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { isObject, PATCH_TYPES, type JsonObject, type JsonValue, type PatchType } from './k8s/patch.ts';
import { labelsOf, RESOURCES, type ResourceName, type ResourceType } from './k8s/resources.ts';
import {
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
  SelectorError,
  type FieldRequirement,
  type LabelRequirement,
} from './k8s/selectors.ts';
import { decodeContinue, encodeContinue, readBody, routeOf, type Route, type Verb } from './k8s/routes.ts';
import {
  ADMIN_USER,
  ANONYMOUS_USER,
  authorize,
  forbidden,
  loadRbacManifest,
  PermissionUsage,
  serviceAccountUser,
  withBootstrap,
  type LeastPrivilegeReport,
  type RbacPolicy,
  type UserInfo,
} from './k8s/rbac.ts';
import { isWatchQuery, requestAttributesOf, type RequestAttributes } from './k8s/request-info.ts';
import { encodeItem, encodeList, encodeStatus, PROTOBUF, prefersProtobuf, type ItemKind } from './k8s/protobuf.ts';
import { ApiError, notFound, ObjectStore, type StoredEntry, type StoredEvent, type UpdateScope } from './k8s/store.ts';

export { ApiError } from './k8s/store.ts';
export { PATCH_TYPES, type JsonObject, type JsonValue, type PatchType } from './k8s/patch.ts';
export { RESOURCES, type ResourceName } from './k8s/resources.ts';
export { describeLeastPrivilege, type LeastPrivilegeReport } from './k8s/rbac.ts';

/** The project's manifest: its RBAC is what the agent's identity is granted. */
export const DEPLOY_MANIFEST = resolve(import.meta.dirname, '../../deploy/strand.yaml');

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

/** An object as stored and served: plain JSON (timestamps are strings). */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export type { Verb } from './k8s/routes.ts';

export interface ApiRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  verb: Verb | undefined;
  resource: ResourceName | undefined;
  subresource: 'status' | undefined;
  contentType: string | undefined;
  /** The Accept header. */
  accept: string | undefined;
  /** The format a list was answered in (undefined: not a list, or it failed before its answer). */
  format: 'json' | 'protobuf' | undefined;
  /** Why a list asked for in protobuf was answered in JSON: the encoder's error (an unknown field). */
  protobufError: string | undefined;
  /** Who sent it (undefined: the server checks no credentials). */
  user: string | undefined;
  /** What the authorizer was asked (kube-apiserver's request info). */
  attributes: RequestAttributes;
  /** HTTP status sent; 0 while the response has not started. */
  status: number;
  /** Date.now() when the request arrived. */
  at: number;
  /** Which connection it came on: the count of connections the server had accepted, this one's. */
  connection: number;
}

export interface TestApiServerOptions {
  /** 0 (default) picks a free port on the first start; later starts reuse it. */
  port?: number;
  /**
   * When set, every request but health and version must carry `Authorization: Bearer <token>`; the
   * token's user is system:masters (allowed everything, also with `rbac`).
   */
  token?: string;
  /** Authorizes requests with RBAC from a manifest, as kube-apiserver does (see RbacOptions). */
  rbac?: RbacOptions;
  /** Events kept for watch replay; older versions get 410. Default 1000. */
  historyLimit?: number;
  /** Interval of bookmarks on watches that ask for them (allowWatchBookmarks=true). Default 1000 ms. */
  bookmarkIntervalMs?: number;
  /**
   * Whether lists of pods, nodes and namespaces are served in protobuf to a client that prefers it
   * (default true). False serves JSON only, as a proxy or an API server that does not speak protobuf:
   * a test of the client's fallback, or a bench's baseline.
   */
  protobuf?: boolean;
}

export interface RbacOptions {
  /** A multi-document YAML manifest: its ClusterRoles, Roles and bindings; its DaemonSet's ServiceAccount is the agent. Default DEPLOY_MANIFEST. */
  manifest?: string;
  /** The bearer token of the DaemonSet's ServiceAccount. Default: random. */
  agentToken?: string;
  /** A bearer token of a system:masters user, for a test's own requests over HTTP. Default: `token`, else random. */
  adminToken?: string;
}

/** Requests without a token are anonymous only for these (kube-apiserver's anonymous auth conditions); anything else is 401. */
const COMMA = Buffer.from(',');
const LIST_END = Buffer.from(']}');

/** The resources whose lists are served in protobuf, and their kinds. */
const PROTOBUF_KINDS: Partial<Record<ResourceName, ItemKind>> = { pods: 'Pod', nodes: 'Node', namespaces: 'Namespace' };

const ANONYMOUS_PATHS = new Set(['/healthz', '/livez', '/readyz', '/version', '/version/']);

export interface PatchOptions {
  namespace?: string;
  /** Default 'strategic'. */
  type?: 'strategic' | 'merge' | 'json';
  subresource?: 'status';
}

/** A malformed object stored with injectMalformed, for removeMalformed. */
export interface MalformedHandle {
  resource: ResourceName;
  key: string;
}

interface Failure {
  verb: Verb | undefined;
  resource: ResourceName | undefined;
  status: number;
  remaining: number;
}

interface Watcher {
  type: ResourceType;
  /** undefined: all namespaces. */
  namespace: string | undefined;
  labels: LabelRequirement[];
  fields: FieldRequirement[];
  res: ServerResponse;
  bookmarks: boolean;
  timers: NodeJS.Timeout[];
}

const SHORT_PATCH_TYPES = {
  strategic: PATCH_TYPES.strategic,
  merge: PATCH_TYPES.merge,
  json: PATCH_TYPES.json,
} as const;

const STATUS_REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Expired',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

function typeOf(resource: ResourceName): ResourceType {
  return RESOURCES[resource];
}

/** A JSON copy: drops undefined, turns Dates (client-node models) into strings. */
function toJson(value: unknown): JsonValue {
  return JSON.parse(JSON.stringify(value)) as JsonValue;
}

function nameAndNamespace(type: ResourceType, obj: unknown, namespace?: string): { name: string; namespace: string } {
  const meta = isObject(obj) && isObject(obj.metadata) ? obj.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : '';
  const ns = type.namespaced
    ? (namespace ?? (typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default'))
    : '';
  return { name, namespace: ns };
}

/** The ordinal of each connection the test servers accepted (ApiRequest.connection). */
const connectionNumbers = new WeakMap<object, number>();

export class TestApiServer {
  private connectionsAccepted = 0;
  readonly host = '127.0.0.1';
  readonly token: string | undefined;
  /** With `rbac`: the token of the manifest's DaemonSet ServiceAccount (the agent's identity). */
  readonly agentToken: string | undefined;
  /** With `rbac`: a system:masters token for the test's own HTTP requests. */
  readonly adminToken: string | undefined;
  /** With `rbac`: the agent's user (system:serviceaccount:<namespace>:<name>). */
  readonly agentUser: UserInfo | undefined;
  readonly bookmarkIntervalMs: number;
  /** Every request received, in order (see clearRequestLog). */
  readonly requests: ApiRequest[] = [];
  /** Counters since creation; survive restarts. */
  readonly counters = {
    requests: 0,
    lists: 0,
    /** Lists answered in protobuf (also counted in `lists`). */
    protobufLists: 0,
    watchesStarted: 0,
    watchesExpired: 0,
    bookmarksSent: 0,
    eventsSent: 0,
    failuresInjected: 0,
  };

  private portNumber: number;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly store: ObjectStore;
  private readonly watchers = new Set<Watcher>();
  /** Each stored object's JSON as a list item (itemBytes). */
  private readonly itemTexts = new WeakMap<object, Buffer>();
  /** Each stored pod's, node's and namespace's protobuf message as a list item (itemProto). */
  private readonly itemProtos = new WeakMap<object, Buffer>();
  /** Answers to requests that negotiated protobuf: their errors are protobuf Status too. */
  private readonly protobufAnswers = new WeakSet<ServerResponse>();
  private readonly failures: Failure[] = [];
  /** Resources whose CRD is installed. */
  private readonly crds = new Set<ResourceName>();
  /** Bearer token → user; empty: no authentication at all. */
  private readonly users = new Map<string, UserInfo>();
  /** With `rbac`: the manifest's roles and bindings and the bootstrap ones. */
  private readonly policy: RbacPolicy | undefined;
  private readonly usage: PermissionUsage | undefined;

  private readonly servesProtobuf: boolean;

  private constructor(opts: TestApiServerOptions) {
    this.portNumber = opts.port ?? 0;
    this.token = opts.token;
    if (opts.token !== undefined) this.users.set(opts.token, ADMIN_USER);
    if (opts.rbac) {
      const manifest = loadRbacManifest(opts.rbac.manifest ?? DEPLOY_MANIFEST);
      if (!manifest.serviceAccount)
        throw new Error(`${opts.rbac.manifest ?? DEPLOY_MANIFEST}: no DaemonSet, so no ServiceAccount for the agent`);
      this.policy = withBootstrap(manifest.policy);
      this.agentUser = serviceAccountUser(manifest.serviceAccount.namespace, manifest.serviceAccount.name);
      this.usage = new PermissionUsage(this.policy, this.agentUser);
      this.agentToken = opts.rbac.agentToken ?? randomBytes(24).toString('base64url');
      this.adminToken = opts.rbac.adminToken ?? opts.token ?? randomBytes(24).toString('base64url');
      this.users.set(this.agentToken, this.agentUser);
      this.users.set(this.adminToken, ADMIN_USER);
    } else {
      this.policy = undefined;
      this.agentToken = undefined;
      this.adminToken = opts.token;
      this.agentUser = undefined;
    }
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 1000;
    this.servesProtobuf = opts.protobuf ?? true;
    this.store = new ObjectStore(opts.historyLimit ?? 1000);
    this.store.onEvent = (event) => this.broadcast(event);
  }

  /** Creates a server and starts listening. */
  static async start(opts: TestApiServerOptions = {}): Promise<TestApiServer> {
    const api = new TestApiServer(opts);
    await api.start();
    return api;
  }

  get port(): number {
    return this.portNumber;
  }

  get url(): string {
    return `http://${this.host}:${this.portNumber}`;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** The last resourceVersion handed out (etcd's revision). */
  get resourceVersion(): string {
    return String(this.store.revision);
  }

  // ---- lifetime ----

  /** Listens (again) on the server's port; the objects and history are those it had when stopped. */
  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.sendStatus(res, new ApiError(500, 'InternalError', String(err)));
        else res.destroy();
      });
    });
    server.on('connection', (socket) => {
      connectionNumbers.set(socket, ++this.connectionsAccepted);
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.portNumber, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.portNumber = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /**
   * Serves a connection accepted by another listener, e.g. one made inside a node's network namespace
   * (the benches' agents connect there): the same as a connection to the server's own port, with no
   * proxy between (a proxy's copies of every byte ran on the cores the agent uses, which a real API
   * server's do not). Refused (closed) while the server is stopped.
   */
  accept(socket: Socket): void {
    if (!this.server) {
      socket.destroy();
      return;
    }
    this.server.emit('connection', socket);
  }

  /**
   * Simulates an outage: stops listening and cuts every connection (open watches end with a reset,
   * not a clean end of stream). The state stays; start() serves it again on the same port.
   */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const w of [...this.watchers]) this.endWatch(w, true);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    server.closeAllConnections();
    await closed;
  }

  /** Final stop for test teardown (same as stop; named for intent). */
  async close(): Promise<void> {
    await this.stop();
  }

  // ---- watches ----

  /** Open watch streams, optionally of one resource. */
  openWatches(resource?: ResourceName): number {
    let n = 0;
    for (const w of this.watchers) if (resource === undefined || w.type.resource === resource) n++;
    return n;
  }

  /**
   * Ends open watches as the API server does at its request timeout: a clean end of stream, after
   * which a client resumes from the last version it saw. `abrupt` resets the connections instead.
   */
  dropWatches(opts: { resource?: ResourceName; abrupt?: boolean } = {}): number {
    let n = 0;
    for (const w of [...this.watchers]) {
      if (opts.resource !== undefined && w.type.resource !== opts.resource) continue;
      this.endWatch(w, opts.abrupt ?? false);
      n++;
    }
    return n;
  }

  /** Drops the event history: a watch from any version before now gets ERROR 410 Expired. */
  compact(): void {
    this.store.compact();
  }

  /**
   * Sends 410 to open watches as a compacted etcd would: ERROR with a 410 Status, then end of
   * stream. With `compact` (default true) the history is dropped first, so resuming fails too.
   */
  expireWatches(opts: { resource?: ResourceName; compact?: boolean } = {}): number {
    if (opts.compact ?? true) this.compact();
    let n = 0;
    for (const w of [...this.watchers]) {
      if (opts.resource !== undefined && w.type.resource !== opts.resource) continue;
      this.sendExpired(w, `too old resource version: ${this.store.revision}`);
      this.endWatch(w, false);
      n++;
    }
    return n;
  }

  /** Sends a BOOKMARK now to every open watch that asked for bookmarks. */
  sendBookmarks(): void {
    for (const w of this.watchers) if (w.bookmarks) this.sendBookmark(w);
  }

  /** Writes a line verbatim (no newline needed) to every open watch of a resource: garbage, odd events. */
  sendRawWatchLine(resource: ResourceName, line: string): number {
    let n = 0;
    for (const w of this.watchers) {
      if (w.type.resource !== resource) continue;
      w.res.write(line.endsWith('\n') ? line : `${line}\n`);
      n++;
    }
    return n;
  }

  // ---- CRDs ----

  /** Whether a type is served: built in, or its CRD installed. */
  serves(type: ResourceType): boolean {
    return type.crd === undefined || this.crds.has(type.resource);
  }

  /** Installs a resource's CRD: from now on it is served (404 before). */
  installCrd(resource: ResourceName): void {
    if (typeOf(resource).crd === undefined) throw new Error(`${resource} is built in, not served by a CRD`);
    this.crds.add(resource);
  }

  /**
   * Removes a resource's CRD as kube-apiserver does: its objects are deleted (DELETED to the
   * watches), its watches end, and it is a 404 from then on.
   */
  uninstallCrd(resource: ResourceName): void {
    const type = typeOf(resource);
    for (const e of this.store.entries(resource)) this.store.removeByKey(type, e.key);
    this.crds.delete(resource);
    this.dropWatches({ resource });
  }

  private served(resource: ResourceName): ResourceType {
    const type = typeOf(resource);
    if (!this.serves(type))
      throw new ApiError(
        404,
        'NotFound',
        `the server could not find the requested resource (${resource}: CRD not installed)`,
      );
    return type;
  }

  // ---- objects (in process) ----

  get<T = KubeObject>(resource: ResourceName, name: string, namespace?: string): T | undefined {
    const type = typeOf(resource);
    const entry = this.store.find(resource, type.namespaced ? (namespace ?? 'default') : '', name);
    return entry ? (structuredClone(entry.object) as T) : undefined;
  }

  /** Objects of a resource in key order, of one namespace or all; malformed ones included. */
  list<T = KubeObject>(resource: ResourceName, namespace?: string): T[] {
    return this.store.entries(resource, namespace).map((e) => structuredClone(e.object) as T);
  }

  /** Creates an object; the namespace of a namespaced one is metadata.namespace or "default". */
  create<T = KubeObject>(resource: ResourceName, obj: object): T {
    return this.store.create(this.served(resource), toJson(obj), undefined) as T;
  }

  /** Replaces an object, status included. A metadata.resourceVersion that is not current is a 409. */
  update<T = KubeObject>(resource: ResourceName, obj: object): T {
    const type = typeOf(resource);
    const { name, namespace } = nameAndNamespace(type, obj);
    return this.store.replace(type, namespace, name, toJson(obj), 'all') as T;
  }

  /** Creates the object, or replaces it (status included, resourceVersion ignored) if it exists. */
  upsert<T = KubeObject>(resource: ResourceName, obj: object): T {
    const type = typeOf(resource);
    const { name, namespace } = nameAndNamespace(type, obj);
    if (!this.store.find(resource, namespace, name)) return this.create<T>(resource, obj);
    const json = toJson(obj);
    if (isObject(json) && isObject(json.metadata)) delete json.metadata.resourceVersion;
    return this.store.replace(type, namespace, name, json, 'all') as T;
  }

  /**
   * Patches like PATCH over HTTP would: the main resource ignores status changes, 'status' ignores
   * spec changes.
   */
  patch<T = KubeObject>(resource: ResourceName, name: string, patch: unknown, opts: PatchOptions = {}): T {
    const type = typeOf(resource);
    const namespace = type.namespaced ? (opts.namespace ?? 'default') : '';
    const scope: UpdateScope = opts.subresource === 'status' ? 'status' : 'main';
    return this.store.patch(
      type,
      namespace,
      name,
      SHORT_PATCH_TYPES[opts.type ?? 'strategic'],
      toJson(patch),
      scope,
    ) as T;
  }

  /** Deletes an object (emits DELETED); returns its last state, or undefined if there was none. */
  delete<T = KubeObject>(resource: ResourceName, name: string, namespace?: string): T | undefined {
    const type = typeOf(resource);
    const ns = type.namespaced ? (namespace ?? 'default') : '';
    if (!this.store.find(resource, ns, name)) return undefined;
    return this.store.remove(type, ns, name) as T;
  }

  /**
   * Stores any JSON value as an object of `resource` without validation and emits ADDED: a pod whose
   * spec is a string, metadata without a name, no metadata at all. It appears in lists and watches
   * like any object. If it has a metadata object its resourceVersion is set, unless
   * `stampResourceVersion` is false.
   */
  injectMalformed(
    resource: ResourceName,
    raw: unknown,
    opts: { namespace?: string; stampResourceVersion?: boolean } = {},
  ): MalformedHandle {
    return this.store.injectMalformed(typeOf(resource), toJson(raw), opts);
  }

  /** Deletes an object stored by injectMalformed (emits DELETED). */
  removeMalformed(handle: MalformedHandle): void {
    this.store.removeByKey(typeOf(handle.resource), handle.key);
  }

  // ---- failures, log, kubeconfig ----

  /**
   * The next `times` requests matching verb and resource (either may be left out) fail with an HTTP
   * status and a Status body, e.g. a 500 on list or a 503 on watch.
   */
  failRequests(match: { verb?: Verb; resource?: ResourceName }, status = 500, times = 1): void {
    this.failures.push({ verb: match.verb, resource: match.resource, status, remaining: times });
  }

  requestsMatching(match: { verb?: Verb; resource?: ResourceName; method?: string }): ApiRequest[] {
    return this.requests.filter(
      (r) =>
        (match.verb === undefined || r.verb === match.verb) &&
        (match.resource === undefined || r.resource === match.resource) &&
        (match.method === undefined || r.method === match.method),
    );
  }

  clearRequestLog(): void {
    this.requests.length = 0;
  }

  /**
   * With `rbac`: which of the manifest's permissions the agent's identity was granted and used since
   * the server was created (not cleared with the request log), and what it was refused.
   */
  leastPrivilege(): LeastPrivilegeReport {
    if (!this.usage) throw new Error('leastPrivilege() needs a server started with rbac');
    return this.usage.report();
  }

  /** Polls until `condition` holds; rejects after `timeoutMs`. */
  async waitFor(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /**
   * A kubeconfig for this server: plain http (client-node requires insecure-skip-tls-verify). Its user
   * is `token`, by default the admin token (the agent's is `agentToken`).
   */
  kubeconfigYaml(opts: { token?: string } = {}): string {
    const token = opts.token ?? this.adminToken;
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: strand-test',
      '  cluster:',
      `    server: ${this.url}`,
      '    insecure-skip-tls-verify: true',
      'users:',
      '- name: strand-test',
      token === undefined ? '  user: {}' : `  user:\n    token: ${JSON.stringify(token)}`,
      'contexts:',
      '- name: strand-test',
      '  context:',
      '    cluster: strand-test',
      '    user: strand-test',
      'current-context: strand-test',
      '',
    ].join('\n');
  }

  /** Writes kubeconfigYaml() to `path` (creating its directory) and returns the path. */
  writeKubeconfig(path: string, opts: { token?: string } = {}): string {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, this.kubeconfigYaml(opts), { mode: 0o600 });
    return path;
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const query = Object.fromEntries(url.searchParams);
    const route = routeOf(url.pathname, `${this.host}:${this.portNumber}`, (type) => this.serves(type));
    const method = req.method ?? 'GET';
    const verb = route instanceof ApiError ? undefined : this.verbOf(route, method, query);
    const user = this.authenticate(req, url.pathname);
    const record: ApiRequest = {
      method,
      path: url.pathname,
      query,
      verb,
      resource: route instanceof ApiError || route.kind === 'static' ? undefined : route.type.resource,
      subresource: !(route instanceof ApiError) && route.kind === 'item' ? route.subresource : undefined,
      contentType: req.headers['content-type'],
      accept: req.headers.accept,
      format: undefined,
      protobufError: undefined,
      user: user?.name,
      attributes: requestAttributesOf(method, url.pathname, query),
      status: 0,
      at: Date.now(),
      connection: connectionNumbers.get(req.socket) ?? 0,
    };
    this.requests.push(record);
    this.counters.requests++;
    if (
      this.servesProtobuf &&
      verb === 'list' &&
      record.resource !== undefined &&
      record.resource in PROTOBUF_KINDS &&
      prefersProtobuf(record.accept)
    )
      this.protobufAnswers.add(res);
    res.on('close', () => (record.status = res.statusCode));
    try {
      await this.dispatch(req, res, route, record, user);
    } finally {
      if (res.headersSent) record.status = res.statusCode;
    }
  }

  /**
   * The user of a request: its bearer token's, anonymous for the public health and version paths
   * without a token, else null (401). Undefined when the server checks no credentials.
   */
  private authenticate(req: IncomingMessage, path: string): UserInfo | null | undefined {
    if (this.users.size === 0) return undefined;
    const header = req.headers.authorization;
    if (header === undefined) return ANONYMOUS_PATHS.has(path) ? ANONYMOUS_USER : null;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return (m && this.users.get(m[1] ?? '')) ?? null;
  }

  private async dispatch(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route | ApiError,
    record: ApiRequest,
    user: UserInfo | null | undefined,
  ): Promise<void> {
    const { method, verb, query } = record;
    // kube-apiserver's order: authentication, authorization (on the request info alone, so an
    // unknown resource that is not granted is a 403, not a 404), then the handler.
    if (user === null) {
      req.resume();
      return this.sendStatus(res, new ApiError(401, 'Unauthorized', 'Unauthorized'));
    }
    if (user !== undefined && this.policy) {
      const decision = authorize(this.policy, user, record.attributes);
      if (this.usage && user === this.agentUser) this.usage.record(record.attributes, decision);
      if (!decision.allowed) {
        req.resume();
        return this.sendStatus(res, forbidden(user, record.attributes, decision.reason));
      }
    }
    if (route instanceof ApiError) {
      req.resume();
      return this.sendStatus(res, route);
    }
    const failure = this.failures.find(
      (f) =>
        f.remaining > 0 &&
        (f.verb === undefined || f.verb === verb) &&
        (f.resource === undefined || f.resource === record.resource),
    );
    if (failure) {
      failure.remaining--;
      if (failure.remaining === 0) this.failures.splice(this.failures.indexOf(failure), 1);
      this.counters.failuresInjected++;
      req.resume();
      return this.sendStatus(
        res,
        new ApiError(
          failure.status,
          STATUS_REASONS[failure.status] ?? 'Unknown',
          `injected failure (${failure.status})`,
        ),
      );
    }
    try {
      if (route.kind === 'static') {
        req.resume();
        res.writeHead(200, { 'Content-Type': route.contentType });
        res.end(route.body);
        return;
      }
      const body = method === 'GET' ? undefined : await readBody(req);
      if (route.kind === 'collection') return this.handleCollection(route, method, query, body, res, record);
      return this.handleItem(route, method, req.headers['content-type'], body, res);
    } catch (err) {
      if (err instanceof ApiError) return this.sendStatus(res, err);
      if (err instanceof SelectorError) return this.sendStatus(res, new ApiError(400, 'BadRequest', err.message));
      throw err;
    }
  }

  private verbOf(route: Route, method: string, query: Record<string, string>): Verb | undefined {
    if (route.kind === 'static') return route.verb;
    if (route.kind === 'collection') {
      if (method === 'GET') return isWatchQuery(query) ? 'watch' : 'list';
      return method === 'POST' ? 'create' : undefined;
    }
    return ({ GET: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' } as Record<string, Verb>)[method];
  }

  private handleCollection(
    route: Extract<Route, { kind: 'collection' }>,
    method: string,
    query: Record<string, string>,
    body: JsonValue | undefined,
    res: ServerResponse,
    record: ApiRequest,
  ): void {
    const { type, namespace } = route;
    if (method === 'GET') {
      const labels = parseLabelSelector(query.labelSelector);
      const fields = parseFieldSelector(query.fieldSelector, type.fieldLabels);
      if (isWatchQuery(query)) return this.startWatch(type, namespace, labels, fields, query, res);
      const list = this.listResponse(type, namespace, labels, fields, query, this.protobufAnswers.has(res));
      record.format = list.format;
      record.protobufError = list.protobufError;
      return this.sendParts(res, list.parts, list.format === 'protobuf' ? PROTOBUF : 'application/json');
    }
    if (method === 'POST') {
      if (type.namespaced && namespace === undefined) {
        throw new ApiError(405, 'MethodNotAllowed', `create ${type.resource} needs a namespace in the path`);
      }
      return this.sendJson(res, 201, this.store.create(type, body ?? null, namespace));
    }
    throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported on ${type.resource}`);
  }

  private handleItem(
    route: Extract<Route, { kind: 'item' }>,
    method: string,
    contentType: string | undefined,
    body: JsonValue | undefined,
    res: ServerResponse,
  ): void {
    const { type, namespace, name, subresource } = route;
    const scope: UpdateScope = subresource === 'status' ? 'status' : 'main';
    switch (method) {
      case 'GET': {
        const entry = this.store.find(type.resource, namespace, name);
        if (!entry) throw notFound(type, name);
        return this.sendJson(res, 200, entry.object);
      }
      case 'PUT':
        return this.sendJson(res, 200, this.store.replace(type, namespace, name, body ?? null, scope));
      case 'PATCH': {
        const patchType = (contentType ?? '').split(';')[0]?.trim() as PatchType;
        if (!Object.values(PATCH_TYPES).includes(patchType)) {
          throw new ApiError(
            415,
            'UnsupportedMediaType',
            `the body of the request was in an unknown format - accepted media types include: ${Object.values(PATCH_TYPES).join(', ')}`,
          );
        }
        return this.sendJson(res, 200, this.store.patch(type, namespace, name, patchType, body ?? null, scope));
      }
      case 'DELETE': {
        if (subresource) throw new ApiError(405, 'MethodNotAllowed', 'DELETE is not supported on a subresource');
        const options = isObject(body) && isObject(body.preconditions) ? body.preconditions : {};
        const preconditions: { uid?: string; resourceVersion?: string } = {};
        if (typeof options.uid === 'string') preconditions.uid = options.uid;
        if (typeof options.resourceVersion === 'string') preconditions.resourceVersion = options.resourceVersion;
        return this.sendJson(res, 200, this.store.remove(type, namespace, name, preconditions));
      }
      default:
        throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported on ${type.resource}`);
    }
  }

  private matches(w: Pick<Watcher, 'type' | 'labels' | 'fields'>, obj: JsonValue): boolean {
    return matchesLabels(w.labels, labelsOf(obj)) && matchesFields(w.fields, w.type.fields(obj));
  }

  private listResponse(
    type: ResourceType,
    namespace: string | undefined,
    labels: LabelRequirement[],
    fields: FieldRequirement[],
    query: Record<string, string>,
    protobuf = false,
  ): { parts: Buffer[]; format: 'json' | 'protobuf'; protobufError: string | undefined } {
    this.counters.lists++;
    let listRv = this.store.revision;
    let after: string | undefined;
    if (query.continue) {
      const token = decodeContinue(query.continue);
      if (token.rv < this.store.floor) {
        throw new ApiError(
          410,
          'Expired',
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
        );
      }
      listRv = token.rv;
      after = token.after;
    }
    const selector = { type, labels, fields };
    // The store's own sorted array (not a copy of 50,000 entries per page) unless filtered below.
    let entries: readonly StoredEntry[] = this.store.sortedEntries(type.resource, namespace);
    let lo = 0;
    if (after !== undefined) {
      // Entries are in key order: the page starts past `after` (a binary search, not a scan per page).
      let hi = entries.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((entries[mid] as StoredEntry).key > after) hi = mid;
        else lo = mid + 1;
      }
    }
    if (labels.length > 0 || fields.length > 0) {
      entries = entries.slice(lo).filter((e) => this.matches(selector, e.object));
      lo = 0;
    }
    const limit = query.limit ? Number(query.limit) : 0;
    const metadata: JsonObject = { resourceVersion: String(listRv) };
    let end = entries.length;
    if (limit > 0 && end - lo > limit) {
      end = lo + limit;
      metadata.continue = encodeContinue({ rv: listRv, after: (entries[end - 1] as StoredEntry).key });
      metadata.remainingItemCount = entries.length - end;
    }
    let protobufError: string | undefined;
    const kind = PROTOBUF_KINDS[type.resource];
    if (protobuf && kind !== undefined) {
      // The items' protobuf messages as they are (itemProto), in parts as for JSON. An object the
      // encoder cannot write makes this whole list JSON; nothing of it is remembered.
      try {
        const items: Buffer[] = [];
        for (let i = lo; i < end; i++) items.push(this.itemProto(kind, (entries[i] as StoredEntry).object));
        const parts = encodeList(`${kind}List`, metadata as { resourceVersion: string }, items);
        this.counters.protobufLists++;
        return { parts, format: 'protobuf', protobufError: undefined };
      } catch (err) {
        protobufError = (err as Error).message;
      }
    }
    // The items' bytes as they are, written together (sendParts): a page of 500 pods is ~1 MB that the
    // socket would otherwise measure and encode again, or a concatenation would copy, on every answer.
    const head = `{"kind":${JSON.stringify(type.listKind)},"apiVersion":${JSON.stringify(type.apiVersion)}`;
    const parts: Buffer[] = [Buffer.from(`${head},"metadata":${JSON.stringify(metadata)},"items":[`)];
    for (let i = lo; i < end; i++) {
      if (i > lo) parts.push(COMMA);
      parts.push(this.itemBytes((entries[i] as StoredEntry).object));
    }
    parts.push(LIST_END);
    return { parts, format: 'json', protobufError };
  }

  /**
   * Makes every stored object's text as a list item now, so that a list is served without serialising
   * (itemText). A bench calls it after populating the store: a real API server does that work on its
   * own machine, not on the cores of the agent under test. Returns how many objects it serialised.
   */
  prepareLists(): number {
    let n = 0;
    for (const resource of Object.keys(RESOURCES) as ResourceName[]) {
      const kind = PROTOBUF_KINDS[resource];
      for (const e of this.store.sortedEntries(resource)) {
        this.itemBytes(e.object);
        if (kind !== undefined) {
          try {
            this.itemProto(kind, e.object);
          } catch {
            // Not writable in protobuf: a list of it is answered in JSON (listResponse).
          }
        }
        n++;
      }
    }
    return n;
  }

  /**
   * An object's protobuf message as an item of a list, made once per stored object as itemBytes does
   * for JSON. Throws when the encoder cannot write the object (a field its schema lacks); nothing is
   * cached then.
   */
  private itemProto(kind: ItemKind, object: JsonValue): Buffer {
    if (!isObject(object)) return encodeItem(kind, object);
    let bytes = this.itemProtos.get(object);
    if (bytes === undefined) {
      bytes = encodeItem(kind, object);
      this.itemProtos.set(object, bytes);
    }
    return bytes;
  }

  /**
   * An object's JSON as an item of a list, made once per stored object (the store replaces an object
   * on every change, never edits it in place): serialising 50,000 pods again for every list took this
   * process, which shares the machine's cores with the agent under test, most of a second a start-up.
   * The real server leaves kind and apiVersion out of the items of a list.
   */
  private itemBytes(object: JsonValue): Buffer {
    if (!isObject(object)) return Buffer.from(JSON.stringify(object));
    let bytes = this.itemTexts.get(object);
    if (bytes === undefined) {
      const { kind: _kind, apiVersion: _apiVersion, ...item } = object;
      bytes = Buffer.from(JSON.stringify(item));
      this.itemTexts.set(object, bytes);
    }
    return bytes;
  }

  private startWatch(
    type: ResourceType,
    namespace: string | undefined,
    labels: LabelRequirement[],
    fields: FieldRequirement[],
    query: Record<string, string>,
    res: ServerResponse,
  ): void {
    const rvParam = query.resourceVersion ?? '';
    if (rvParam !== '' && !/^\d+$/.test(rvParam))
      throw new ApiError(400, 'BadRequest', `invalid resource version "${rvParam}"`);
    this.counters.watchesStarted++;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    const watcher: Watcher = {
      type,
      namespace,
      labels,
      fields,
      res,
      bookmarks: query.allowWatchBookmarks === 'true',
      timers: [],
    };

    // A version older than the history is answered as the watch cache does: a 200 stream with one
    // ERROR event carrying a 410 Status, then the end of the stream.
    const from = rvParam === '' ? 0 : Number(rvParam);
    if (rvParam !== '' && rvParam !== '0' && from < this.store.floor) {
      this.sendExpired(watcher, `too old resource version: ${from} (${this.store.floor + 1})`);
      res.end();
      return;
    }
    this.watchers.add(watcher);
    res.on('close', () => this.forgetWatch(watcher));

    if (rvParam === '' || rvParam === '0') {
      // No version (or "any"): the current state as ADDED events, then changes from now on.
      for (const entry of this.store.entries(type.resource, namespace)) {
        if (this.matches(watcher, entry.object)) this.sendEvent(watcher, 'ADDED', entry.object);
      }
      if (watcher.bookmarks && query.sendInitialEvents === 'true') {
        this.sendBookmark(watcher, { 'k8s.io/initial-events-end': 'true' });
      }
    } else {
      for (const event of this.store.history) if (event.rv > from) this.deliver(watcher, event);
    }
    if (watcher.bookmarks) watcher.timers.push(setInterval(() => this.sendBookmark(watcher), this.bookmarkIntervalMs));
    const timeout = Number(query.timeoutSeconds ?? 0);
    if (timeout > 0) watcher.timers.push(setTimeout(() => this.endWatch(watcher, false), timeout * 1000));
  }

  private broadcast(event: StoredEvent): void {
    for (const w of this.watchers) this.deliver(w, event);
  }

  /** Sends what a watch with selectors sees of a change: an object entering the selection is ADDED, one leaving it DELETED. */
  private deliver(w: Watcher, event: StoredEvent): void {
    if (w.type.resource !== event.resource) return;
    if (w.namespace !== undefined && w.namespace !== event.namespace) return;
    const now = this.matches(w, event.object);
    const before = event.previous !== undefined && this.matches(w, event.previous);
    if (event.type === 'ADDED' && now) this.sendEvent(w, 'ADDED', event.object);
    if (event.type === 'DELETED' && (now || before)) this.sendEvent(w, 'DELETED', event.object);
    if (event.type === 'MODIFIED') {
      if (now && before) this.sendEvent(w, 'MODIFIED', event.object);
      else if (now) this.sendEvent(w, 'ADDED', event.object);
      else if (before) this.sendEvent(w, 'DELETED', event.object);
    }
  }

  private sendEvent(w: Watcher, type: string, object: JsonValue): void {
    this.counters.eventsSent++;
    w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  private sendBookmark(w: Watcher, annotations?: Record<string, string>): void {
    this.counters.bookmarksSent++;
    const metadata: JsonObject = { resourceVersion: String(this.store.revision) };
    if (annotations) metadata.annotations = annotations;
    w.res.write(
      `${JSON.stringify({ type: 'BOOKMARK', object: { kind: w.type.kind, apiVersion: w.type.apiVersion, metadata } })}\n`,
    );
  }

  private sendExpired(w: Pick<Watcher, 'res'>, message: string): void {
    this.counters.watchesExpired++;
    const status = new ApiError(410, 'Expired', message).toStatus();
    w.res.write(`${JSON.stringify({ type: 'ERROR', object: status })}\n`);
  }

  private endWatch(w: Watcher, abrupt: boolean): void {
    this.forgetWatch(w);
    if (abrupt) w.res.destroy();
    else w.res.end();
  }

  private forgetWatch(w: Watcher): void {
    for (const t of w.timers) clearTimeout(t);
    w.timers = [];
    this.watchers.delete(w);
  }

  private sendJson(res: ServerResponse, status: number, body: unknown): void {
    this.sendText(res, status, JSON.stringify(body));
  }

  /** A 200 answer made of these parts, handed to the socket together (one writev). */
  private sendParts(res: ServerResponse, parts: Buffer[], contentType = 'application/json'): void {
    let length = 0;
    for (const p of parts) length += p.length;
    res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': length });
    res.cork();
    for (const p of parts) res.write(p);
    res.end();
    res.uncork();
  }

  private sendText(res: ServerResponse, status: number, text: string): void {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  /** An error as a Status: protobuf when the request negotiated protobuf (a list of pods, nodes, namespaces), else JSON. */
  private sendStatus(res: ServerResponse, err: ApiError): void {
    if (this.protobufAnswers.has(res)) {
      let body: Buffer | undefined;
      try {
        body = encodeStatus(err.toStatus());
      } catch {
        // A Status the encoder cannot write (a detail its schema lacks): JSON.
      }
      if (body !== undefined) {
        res.writeHead(err.code, { 'Content-Type': PROTOBUF, 'Content-Length': body.length });
        res.end(body);
        return;
      }
    }
    this.sendJson(res, err.code, err.toStatus());
  }
}
