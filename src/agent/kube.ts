// The agent's view of the Kubernetes API: a client from a kubeconfig or the in-cluster service
// account, and informers (list, then watch) for Nodes, Pods, Namespaces and NetworkPolicies of all
// namespaces, built on @kubernetes/client-node's ListWatch with what it leaves to its user
// (test/integration/k8s-api-server.test.ts has the details):
//   - ListWatch stops on any error other than 410 (connection refused or reset, a failed list):
//     ResourceInformer restarts it with capped exponential backoff, resuming from the last version;
//   - relisting after 410 Gone is ListWatch's own; watches ask for bookmarks so that the version a
//     quiet resource resumes from stays recent;
//   - objects are slimmed before they reach the cache: only the fields Strand uses are kept (a Pod
//     keeps name, namespace, labels, node, IPs, hostNetwork and container ports), which keeps the
//     agent small on large clusters;
//   - a malformed object (no metadata, a string where an object belongs…) is logged and skipped, in
//     the list and in the watch, never passed on: ListWatch itself throws on an object without
//     metadata.
// Lists are paged (limit/continue) raw JSON requests, not the generated client: the generated
// deserializer fails a whole list on one malformed item and builds heavy model objects.
import {
  HttpMethod,
  KubeConfig,
  ListWatch,
  RequestContext,
  Watch,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { fetch } from 'undici';
import type { Logger } from '../log.ts';

// ---- client ----------------------------------------------------------------------------------------

export class KubeConfigError extends Error {
  override name = 'KubeConfigError';
}

/**
 * A kubeconfig file if given (--kubeconfig or KUBECONFIG, merged into the agent's config), else the
 * in-cluster service account. Errors are KubeConfigErrors: the CLI refuses to start on them.
 */
export function loadKubeConfig(kubeconfig: string | undefined, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfig !== undefined) {
    try {
      kc.loadFromFile(kubeconfig);
    } catch (err) {
      throw new KubeConfigError(`kubeconfig ${kubeconfig}: ${(err as Error).message.split('\n')[0]}`);
    }
    if (!kc.getCurrentCluster()) throw new KubeConfigError(`kubeconfig ${kubeconfig}: no current cluster (current-context "${kc.getCurrentContext()}")`);
    return kc;
  }
  if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
    throw new KubeConfigError('no kubeconfig (--kubeconfig or KUBECONFIG) and not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)');
  }
  kc.loadFromCluster();
  return kc;
}

/** A failed API request: the HTTP status (0 when there was no answer) and the server's message. */
export class ApiRequestError extends Error {
  override name = 'ApiRequestError';
  readonly statusCode: number;
  /** ListWatch looks at `code` and `statusCode` for 410. */
  readonly code: number;
  constructor(statusCode: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.statusCode = statusCode;
    this.code = statusCode;
  }
}

/** Short text of any error the client produces, for logs. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const code = (cause as NodeJS.ErrnoException | undefined)?.code ?? (err as NodeJS.ErrnoException).code;
    return code && typeof code === 'string' && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

export class KubeClient {
  readonly kc: KubeConfig;
  readonly server: string;

  constructor(kc: KubeConfig) {
    this.kc = kc;
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new KubeConfigError('the kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/+$/, '');
  }

  /** One request with the kubeconfig's credentials and TLS settings; the decoded JSON answer. */
  async request(method: 'GET' | 'PATCH', path: string, opts: { query?: Record<string, string>; body?: unknown; contentType?: string; timeoutMs?: number } = {}): Promise<unknown> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
    const ctx = new RequestContext(url.toString(), method === 'GET' ? HttpMethod.GET : HttpMethod.PATCH);
    await this.kc.applySecurityAuthentication(ctx);
    const headers = ctx.getHeaders() as Record<string, string>;
    headers.Accept = 'application/json';
    if (opts.contentType) headers['Content-Type'] = opts.contentType;
    // client-node makes a dispatcher (connection pool) per request when the cluster needs TLS
    // settings; it is closed after the answer so that no idle connection outlives its request.
    const dispatcher = ctx.getDispatcher();
    let status: number;
    let text: string;
    try {
      const res = await fetch(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        dispatcher,
        signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
      });
      status = res.status;
      text = await res.text();
    } catch (err) {
      throw new ApiRequestError(0, `${method} ${path}: ${describeError(err)}`, { cause: err });
    } finally {
      dispatcher?.close().catch(() => undefined);
    }
    if (status < 200 || status > 299) {
      let message = text.slice(0, 300);
      try {
        const status = JSON.parse(text) as { message?: unknown };
        if (typeof status.message === 'string') message = status.message;
      } catch {
        // Not a Status object: keep the text.
      }
      throw new ApiRequestError(status, `${method} ${path}: ${status} ${message}`);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new ApiRequestError(status, `${method} ${path}: the answer is not JSON: ${(err as Error).message}`);
    }
  }
}

// ---- slim objects ----------------------------------------------------------------------------------

export interface SlimMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

// The slim objects have the API's shape (a subset of V1Node, V1Pod…), so code written against the API
// types reads them, and peers' Nodes can go to the backends as they are.

export interface NodeInfo {
  metadata: SlimMeta;
  /** podCIDRs is filled from podCIDR when only that is set (older API servers). */
  spec: { podCIDRs: string[] };
  status: {
    /** InternalIP, ExternalIP, Hostname… */
    addresses: { type: string; address: string }[];
    /** Only NetworkUnavailable, the condition Strand sets. */
    conditions: { type: string; status: string; reason?: string }[];
  };
}

export interface PodPort {
  name?: string;
  containerPort: number;
  protocol: string;
}

export interface PodInfo {
  metadata: SlimMeta;
  spec: {
    nodeName?: string;
    hostNetwork?: boolean;
    /** Only containers with ports, and of them only the ports. */
    containers: { name: string; ports: PodPort[] }[];
  };
  status: {
    phase?: string;
    /** Filled from podIP when only that is set. */
    podIPs: { ip: string }[];
  };
}

export interface NamespaceInfo {
  metadata: SlimMeta;
}

export interface NetworkPolicyInfo {
  metadata: SlimMeta;
  /** The NetworkPolicySpec as the API served it; the policy compiler checks it. */
  spec: Record<string, unknown>;
}

export const podIPs = (pod: PodInfo): string[] => pod.status.podIPs.map((p) => p.ip);

export type Slimmed<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Annotations the agent keeps from Nodes: its own (VXLAN peers publish their VTEP there). */
export const ANNOTATION_PREFIX = 'strand.dev/';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

class Malformed extends Error {}

function field<T>(obj: Json, key: string, check: (v: unknown) => v is T, what: string, where: string): T | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!check(v)) throw new Malformed(`${where}.${key} is not ${what}`);
  return v;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';
const isArray = (v: unknown): v is unknown[] => Array.isArray(v);
const isStringMap = (v: unknown): v is Record<string, string> => isObject(v) && Object.values(v).every(isString);

function slimMeta(raw: unknown, namespaced: boolean, keepAnnotations?: (key: string) => boolean): SlimMeta {
  if (!isObject(raw)) throw new Malformed('not an object');
  const meta = raw.metadata;
  if (!isObject(meta)) throw new Malformed('metadata is missing or not an object');
  const name = meta.name;
  if (typeof name !== 'string' || name === '') throw new Malformed('metadata.name is missing');
  const out: SlimMeta = { name };
  if (namespaced) {
    const ns = meta.namespace;
    if (typeof ns !== 'string' || ns === '') throw new Malformed('metadata.namespace is missing');
    out.namespace = ns;
  }
  const uid = field(meta, 'uid', isString, 'a string', 'metadata');
  if (uid !== undefined) out.uid = uid;
  const rv = field(meta, 'resourceVersion', isString, 'a string', 'metadata');
  if (rv !== undefined) out.resourceVersion = rv;
  const labels = field(meta, 'labels', isStringMap, 'a map of strings', 'metadata');
  if (labels !== undefined && Object.keys(labels).length > 0) out.labels = { ...labels };
  if (keepAnnotations) {
    const annotations = field(meta, 'annotations', isStringMap, 'a map of strings', 'metadata');
    const kept = Object.entries(annotations ?? {}).filter(([k]) => keepAnnotations(k));
    if (kept.length > 0) out.annotations = Object.fromEntries(kept);
  }
  return out;
}

function section(raw: unknown, key: 'spec' | 'status'): Json {
  const v = (raw as Json)[key];
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new Malformed(`${key} is not an object`);
  return v;
}

function slimming<T>(fn: (raw: unknown) => T): (raw: unknown) => Slimmed<T> {
  return (raw) => {
    try {
      return { ok: true, value: fn(raw) };
    } catch (err) {
      if (err instanceof Malformed) return { ok: false, reason: err.message };
      throw err;
    }
  };
}

export const slimNode = slimming((raw): NodeInfo => {
  const metadata = slimMeta(raw, false, (k) => k.startsWith(ANNOTATION_PREFIX));
  const spec = section(raw, 'spec');
  const status = section(raw, 'status');
  const podCIDRs = field(spec, 'podCIDRs', isArray, 'an array', 'spec') ?? [];
  if (!podCIDRs.every(isString)) throw new Malformed('spec.podCIDRs has a value that is not a string');
  const podCIDR = field(spec, 'podCIDR', isString, 'a string', 'spec');
  const addresses: { type: string; address: string }[] = [];
  for (const a of field(status, 'addresses', isArray, 'an array', 'status') ?? []) {
    if (isObject(a) && isString(a.type) && isString(a.address)) addresses.push({ type: a.type, address: a.address });
  }
  const conditions: NodeInfo['status']['conditions'] = [];
  for (const c of field(status, 'conditions', isArray, 'an array', 'status') ?? []) {
    if (isObject(c) && c.type === 'NetworkUnavailable' && isString(c.status)) {
      conditions.push({ type: c.type, status: c.status, ...(isString(c.reason) ? { reason: c.reason } : {}) });
    }
  }
  return {
    metadata,
    spec: { podCIDRs: podCIDRs.length > 0 ? [...podCIDRs] : podCIDR ? [podCIDR] : [] },
    status: { addresses, conditions },
  };
});

export const slimPod = slimming((raw): PodInfo => {
  const metadata = slimMeta(raw, true);
  const spec = section(raw, 'spec');
  const status = section(raw, 'status');
  const containers: PodInfo['spec']['containers'] = [];
  for (const c of field(spec, 'containers', isArray, 'an array', 'spec') ?? []) {
    if (!isObject(c)) throw new Malformed('spec.containers has an entry that is not an object');
    const ports: PodPort[] = [];
    for (const p of field(c, 'ports', isArray, 'an array', 'spec.containers[]') ?? []) {
      if (!isObject(p) || typeof p.containerPort !== 'number') throw new Malformed('spec.containers[].ports has an entry without a numeric containerPort');
      ports.push({ ...(isString(p.name) ? { name: p.name } : {}), containerPort: p.containerPort, protocol: isString(p.protocol) ? p.protocol : 'TCP' });
    }
    if (ports.length > 0) containers.push({ name: isString(c.name) ? c.name : '', ports });
  }
  const ips: { ip: string }[] = [];
  for (const p of field(status, 'podIPs', isArray, 'an array', 'status') ?? []) {
    if (isObject(p) && isString(p.ip)) ips.push({ ip: p.ip });
  }
  const podIP = field(status, 'podIP', isString, 'a string', 'status');
  if (ips.length === 0 && podIP) ips.push({ ip: podIP });
  const phase = field(status, 'phase', isString, 'a string', 'status');
  const nodeName = field(spec, 'nodeName', isString, 'a string', 'spec');
  const hostNetwork = field(spec, 'hostNetwork', isBoolean, 'a boolean', 'spec');
  return {
    metadata,
    spec: { ...(nodeName ? { nodeName } : {}), ...(hostNetwork ? { hostNetwork } : {}), containers },
    status: { ...(phase !== undefined ? { phase } : {}), podIPs: ips },
  };
});

export const slimNamespace = slimming((raw): NamespaceInfo => ({ metadata: slimMeta(raw, false) }));

export const slimNetworkPolicy = slimming((raw): NetworkPolicyInfo => {
  const metadata = slimMeta(raw, true);
  const spec = (raw as Json).spec;
  if (!isObject(spec)) throw new Malformed('spec is missing or not an object');
  return { metadata, spec };
});

/** Only the metadata: enough for ListWatch to delete an object from its cache. */
const metaOnly = (namespaced: boolean) => slimming((raw): { metadata: SlimMeta } => ({ metadata: slimMeta(raw, namespaced) }));

// ---- informers -------------------------------------------------------------------------------------

export type ResourceName = 'nodes' | 'pods' | 'namespaces' | 'networkpolicies';

interface ResourceSpec<T> {
  resource: ResourceName;
  path: string;
  namespaced: boolean;
  slim: (raw: unknown) => Slimmed<T>;
}

export const RESOURCE_SPECS = {
  nodes: { resource: 'nodes', path: '/api/v1/nodes', namespaced: false, slim: slimNode } as ResourceSpec<NodeInfo>,
  pods: { resource: 'pods', path: '/api/v1/pods', namespaced: true, slim: slimPod } as ResourceSpec<PodInfo>,
  namespaces: { resource: 'namespaces', path: '/api/v1/namespaces', namespaced: false, slim: slimNamespace } as ResourceSpec<NamespaceInfo>,
  networkpolicies: {
    resource: 'networkpolicies',
    path: '/apis/networking.k8s.io/v1/networkpolicies',
    namespaced: true,
    slim: slimNetworkPolicy,
  } as ResourceSpec<NetworkPolicyInfo>,
};

export interface InformerHooks {
  log: Logger;
  /** Any add, update or delete, from a list or a watch; `object` is the (slim) object it concerns. */
  onChange?: (resource: ResourceName, object?: unknown) => void;
  /** The first list is in the cache. */
  onSynced?: (resource: ResourceName) => void;
  /** A later list (after 410 Gone) is in the cache, with this many objects. */
  onRelisted?: (resource: ResourceName, objects: number) => void;
  /** A list or watch failed (the informer restarts by itself). */
  onApiError?: (resource: ResourceName, err: unknown) => void;
  /** A list or watch started again after the first. */
  onRestart?: (resource: ResourceName) => void;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

/** ms before the next attempt after `failures` failures in a row: doubling, capped, ±20 % jitter. */
export function backoffDelay(failures: number, opts: BackoffOptions, random = Math.random): number {
  const base = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000 };
/** Items per list page, as client-go's reflector. */
export const LIST_PAGE_SIZE = 500;

type WatchCallback = Parameters<Watch['watch']>[2];
type WatchDone = Parameters<Watch['watch']>[3];

/** A Watch that asks for bookmarks, slims objects and skips malformed ones before ListWatch sees them. */
class SlimWatch<T> extends Watch {
  private readonly informer: ResourceInformer<T & KubernetesObject>;

  constructor(kc: KubeConfig, informer: ResourceInformer<T & KubernetesObject>) {
    super(kc);
    this.informer = informer;
  }

  override async watch(path: string, query: Record<string, string | number | boolean | undefined>, callback: WatchCallback, done: WatchDone): Promise<AbortController> {
    // Bookmarks keep the version to resume from recent; the server ends a watch after timeoutSeconds
    // (spread, as client-go's 5-10 minutes), after which ListWatch resumes it.
    const q = { ...query, allowWatchBookmarks: true, timeoutSeconds: 300 + Math.floor(Math.random() * 300) };
    this.informer.watchStarting();
    let ended = false;
    const controller = await super.watch(
      path,
      q,
      (phase: string, obj: unknown, raw: unknown) => {
        this.informer.healthy();
        if (phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED') {
          const slim = phase === 'DELETED' ? this.informer.slimDeleted(obj) : this.informer.slim(obj);
          if (slim === undefined) return;
          callback(phase, slim, raw);
          return;
        }
        callback(phase, obj, raw);
      },
      (err: unknown) => {
        ended = true;
        done(err);
      },
    );
    // super.watch resolves once the answer's headers arrived; had it failed, done ran already.
    if (!ended) this.informer.healthy();
    return controller;
  }
}

/**
 * One resource's informer: a ListWatch whose lists are paged and slimmed, whose watch is a SlimWatch,
 * restarted with backoff whenever it stops on an error, until stop().
 */
export class ResourceInformer<T extends KubernetesObject> {
  readonly resource: ResourceName;
  private readonly spec: ResourceSpec<T>;
  private readonly kube: KubeClient;
  private readonly hooks: InformerHooks;
  private readonly backoff: BackoffOptions;
  private readonly lw: ListWatch<T>;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private connects = 0;
  private listedSinceWatch = false;
  /** The first list is in the cache. */
  synced = false;
  /** Malformed objects skipped so far. */
  skipped = 0;

  constructor(kube: KubeClient, spec: ResourceSpec<T>, hooks: InformerHooks, backoff: BackoffOptions = DEFAULT_BACKOFF) {
    this.kube = kube;
    this.spec = spec;
    this.resource = spec.resource;
    this.hooks = hooks;
    this.backoff = backoff;
    this.lw = new ListWatch<T>(spec.path, new SlimWatch<T>(kube.kc, this), () => this.listAll(), false);
    const changed = (object?: T) => hooks.onChange?.(this.resource, object);
    this.lw.on('add', changed);
    this.lw.on('update', changed);
    this.lw.on('delete', changed);
    this.lw.on('connect', () => {
      if (this.connects++ > 0) hooks.onRestart?.(this.resource);
    });
    this.lw.on('error', (err: unknown) => this.failed(err));
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.lw.stop();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.lw.list(namespace);
  }

  /** The resourceVersion the informer would resume from. */
  get resourceVersion(): string {
    return this.lw.latestResourceVersion();
  }

  /** Called by SlimWatch: the connection works (a watch answered, an event came). */
  healthy(): void {
    this.failures = 0;
  }

  /**
   * Called by SlimWatch as ListWatch starts a watch. After a list, ListWatch has put the listed
   * items into its cache by then: the first time, the informer is synced.
   */
  watchStarting(): void {
    if (!this.listedSinceWatch) return;
    this.listedSinceWatch = false;
    if (!this.synced) {
      this.synced = true;
      this.hooks.onSynced?.(this.resource);
    } else {
      this.hooks.onRelisted?.(this.resource, this.lw.list().length);
    }
  }

  /** The slim form of a listed or watched object, or undefined (logged) when it is malformed. */
  slim(raw: unknown): T | undefined {
    const s = this.spec.slim(raw);
    if (s.ok) return s.value;
    this.skip(raw, s.reason);
    return undefined;
  }

  /** A deleted object only needs its metadata to leave the cache. */
  slimDeleted(raw: unknown): T | undefined {
    const full = this.spec.slim(raw);
    if (full.ok) return full.value;
    const meta = metaOnly(this.spec.namespaced)(raw);
    if (meta.ok) return meta.value as unknown as T;
    this.skip(raw, meta.reason);
    return undefined;
  }

  private skip(raw: unknown, reason: string): void {
    this.skipped++;
    const meta = isObject(raw) && isObject(raw.metadata) ? raw.metadata : {};
    this.hooks.log.warn(
      { resource: this.resource, name: meta.name, namespace: meta.namespace, reason },
      `skipped a malformed object from the API (${this.resource}): ${reason}`,
    );
  }

  private run(): void {
    this.lw.start().catch((err: unknown) => this.failed(err));
  }

  private failed(err: unknown): void {
    // ListWatch reports its own stop() as an AbortError.
    if (this.stopped) return;
    this.failures++;
    const delay = backoffDelay(this.failures, this.backoff);
    this.hooks.onApiError?.(this.resource, err);
    this.hooks.log.warn(
      { resource: this.resource, err: describeError(err), failures: this.failures, retryInMs: delay },
      `${this.resource}: list/watch failed; retrying`,
    );
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped) this.run();
    }, delay);
  }

  /** The whole collection, page by page, slimmed; a continue token that expired restarts the list. */
  private async listAll(): Promise<KubernetesListObject<T>> {
    for (let attempt = 1; ; attempt++) {
      const items: T[] = [];
      let resourceVersion: string | undefined;
      let cont: string | undefined;
      try {
        do {
          const query: Record<string, string> = { limit: String(LIST_PAGE_SIZE) };
          if (cont) query.continue = cont;
          const page = await this.kube.request('GET', this.spec.path, { query });
          if (!isObject(page) || !Array.isArray(page.items)) throw new ApiRequestError(200, `list ${this.resource}: the answer is not a list`);
          const meta = isObject(page.metadata) ? page.metadata : {};
          resourceVersion ??= isString(meta.resourceVersion) ? meta.resourceVersion : undefined;
          for (const raw of page.items) {
            const slim = this.slim(raw);
            if (slim !== undefined) items.push(slim);
          }
          cont = isString(meta.continue) && meta.continue !== '' ? meta.continue : undefined;
        } while (cont !== undefined);
      } catch (err) {
        if (err instanceof ApiRequestError && err.statusCode === 410 && cont !== undefined && attempt < 3) continue;
        throw err;
      }
      this.listedSinceWatch = true;
      this.failures = 0;
      return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion }, items } as KubernetesListObject<T>;
    }
  }
}

/** The four informers the agent runs. */
export class ClusterCache {
  readonly nodes: ResourceInformer<NodeInfo>;
  readonly pods: ResourceInformer<PodInfo>;
  readonly namespaces: ResourceInformer<NamespaceInfo>;
  readonly networkPolicies: ResourceInformer<NetworkPolicyInfo>;

  constructor(kube: KubeClient, hooks: InformerHooks, backoff: BackoffOptions = DEFAULT_BACKOFF) {
    this.nodes = new ResourceInformer(kube, RESOURCE_SPECS.nodes, hooks, backoff);
    this.pods = new ResourceInformer(kube, RESOURCE_SPECS.pods, hooks, backoff);
    this.namespaces = new ResourceInformer(kube, RESOURCE_SPECS.namespaces, hooks, backoff);
    this.networkPolicies = new ResourceInformer(kube, RESOURCE_SPECS.networkpolicies, hooks, backoff);
  }

  get all(): ResourceInformer<KubernetesObject>[] {
    return [this.nodes, this.pods, this.namespaces, this.networkPolicies] as ResourceInformer<KubernetesObject>[];
  }

  start(): void {
    for (const i of this.all) i.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((i) => i.stop()));
  }

  /** Every informer has listed once. */
  get synced(): boolean {
    return this.all.every((i) => i.synced);
  }

  /** The resources not listed yet. */
  get unsynced(): ResourceName[] {
    return this.all.filter((i) => !i.synced).map((i) => i.resource);
  }
}
