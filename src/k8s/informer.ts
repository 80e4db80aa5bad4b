// Over 400 lines: one informer's list, watch, backoff and relist logic, which must be read together.
// Informers (list, then watch) for Nodes, Pods, Namespaces, NetworkPolicies of all namespaces and
// ClusterNetworkPolicies, built on @kubernetes/client-node's ListWatch with what it leaves to its user
// (test/integration/k8s-api-server.test.ts has the details):
//   - ListWatch stops on any error other than 410 (connection refused or reset, a failed list):
//     ResourceInformer restarts it with capped exponential backoff, resuming from the last version;
//     when the API comes back after an outage (any request succeeds: reachability.ts), every
//     informer waiting out its backoff restarts at once;
//   - relisting after 410 Gone is ListWatch's own; watches ask for bookmarks so that the version a
//     quiet resource resumes from stays recent;
//   - objects are slimmed (objects.ts) before they reach the cache; an update whose slim object equals
//     the cached one but for its resourceVersion keeps the cached object and fires no event
//     (keepIfSame);
//   - a malformed object is logged and skipped, in the list and in the watch, never passed on:
//     ListWatch itself throws on an object without metadata;
//   - a resource served by a CRD that may not be installed (`optional`: ClusterNetworkPolicies) is
//     "not served" on a 404: said once, counted as listed and empty (the agent stays ready: there can
//     be no such object), and listed again every `absentMs` until the CRD appears.
// Lists are paged (limit/continue) raw requests through KubeClient (client.ts): Pods, Nodes and
// Namespaces asked for in Kubernetes protobuf (protobuf.ts), JSON taken as well; the rest JSON.
// From their own modules, not the package's index (which loads the whole generated client; client.ts).
import type { KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { addOrUpdateObject, type CacheMap, ListWatch } from '@kubernetes/client-node/dist/cache.js';
import { Watch } from '@kubernetes/client-node/dist/watch.js';
import { type Dispatcher, getGlobalDispatcher } from 'undici';
import type { Logger } from '../log.ts';
import { nextTurn } from '../util/sliced.ts';
import {
  type Answer,
  ApiRequestError,
  describeError,
  parseAnswer,
  releaseBody,
  RequestSession,
  type KubeClient,
} from './client.ts';
import { decodeProtobufList, PROTOBUF_ACCEPT, ProtobufError, type ProtobufKind, protobufListHead } from './protobuf.ts';
import { CacheSubset } from './subset.ts';
import {
  isObject,
  isString,
  metaOnly,
  sameSlim,
  slimClusterNetworkPolicy,
  slimNamespace,
  slimNetworkPolicy,
  slimNode,
  slimPod,
  type ClusterNetworkPolicyInfo,
  type NamespaceInfo,
  type NetworkPolicyInfo,
  type NodeInfo,
  type PodInfo,
  type SlimMeta,
  type Slimmed,
} from './objects.ts';

export type ResourceName = 'nodes' | 'pods' | 'namespaces' | 'networkpolicies' | 'clusternetworkpolicies';

interface ResourceSpec<T> {
  resource: ResourceName;
  path: string;
  namespaced: boolean;
  slim: (raw: unknown) => Slimmed<T>;
  /** Served by a CRD that may not be installed: a 404 means "none", not a failure. */
  optional?: boolean;
  /** Lists asked for in Kubernetes protobuf, items of this kind (protobuf.ts); JSON still taken. */
  protobuf?: ProtobufKind;
}

export const RESOURCE_SPECS = {
  nodes: {
    resource: 'nodes',
    path: '/api/v1/nodes',
    namespaced: false,
    slim: slimNode,
    protobuf: 'Node',
  } as ResourceSpec<NodeInfo>,
  pods: {
    resource: 'pods',
    path: '/api/v1/pods',
    namespaced: true,
    slim: slimPod,
    protobuf: 'Pod',
  } as ResourceSpec<PodInfo>,
  namespaces: {
    resource: 'namespaces',
    path: '/api/v1/namespaces',
    namespaced: false,
    slim: slimNamespace,
    protobuf: 'Namespace',
  } as ResourceSpec<NamespaceInfo>,
  networkpolicies: {
    resource: 'networkpolicies',
    path: '/apis/networking.k8s.io/v1/networkpolicies',
    namespaced: true,
    slim: slimNetworkPolicy,
  } as ResourceSpec<NetworkPolicyInfo>,
  clusternetworkpolicies: {
    resource: 'clusternetworkpolicies',
    path: '/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies',
    namespaced: false,
    slim: slimClusterNetworkPolicy,
    optional: true,
  } as ResourceSpec<ClusterNetworkPolicyInfo>,
};

export interface InformerHooks {
  log: Logger;
  /** Any add, update or delete, from a watch or a later list (the first list's objects: onSynced); `object` is the (slim) object it concerns. */
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
  /** An optional resource not served (its CRD not installed) is listed again this often. */
  absentMs?: number;
}

/** ms before the next attempt after `failures` failures in a row: doubling, capped, ±20 % jitter. */
export function backoffDelay(failures: number, opts: BackoffOptions, random = Math.random): number {
  const base = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000 };
/** How often a CRD that is not installed is looked for: a GET answered 404, cheap, and a CRD is
 * installed once in a cluster's life (the agent need not notice within seconds). */
export const ABSENT_RETRY_MS = 60_000;
/**
 * A watch that has carried nothing (no event, no bookmark) for this long is taken for dead and
 * started again. client-node's default, 30 s, is shorter than the API server's bookmark interval
 * (about a minute), so every quiet resource's watch was torn down and opened again every 30 s: on an
 * idle agent, most of what it did (issue 18). Two and a half bookmark intervals still find a half-open
 * connection within minutes; an API server that goes away visibly ends the watch at once.
 */
export const WATCH_IDLE_TIMEOUT_MS = 150_000;

/** Items per list page, as client-go's reflector. */
export const LIST_PAGE_SIZE = 500;

/** What ResourceInformer reaches of ListWatch's privates (client-node 1.x, dist/cache.js): its cache
 * and the method that takes a list's items into it. */
interface ListWatchInside<T extends KubernetesObject> {
  objects: CacheMap<T>;
  addOrUpdateItems(items: T[]): void;
}

/**
 * A first list taken into a cache of its own page by page (listAll), handed to ListWatch whole. When
 * ListWatch took a list of 50,000 pods itself, it made a map of them to find deletions and added each
 * (two callback arrays copied per object) in the one task after the last page: 60-100 ms of the event
 * loop at once, /healthz waiting behind it.
 */
interface TakenList<T extends KubernetesObject> {
  objects: CacheMap<T>;
  /** What listAll gave ListWatch as the list's items (empty: nothing for it to compare or add). */
  given: T[];
  /** Every item, for ListWatch's own way should its cache not be empty when the list arrives. */
  all: T[];
}

type WatchCallback = Parameters<Watch['watch']>[2];
type WatchDone = Parameters<Watch['watch']>[3];

/**
 * `kc` whose requests carry no body timeout: undici arms one for every answer (300 s, refreshed on
 * each chunk), and a timer that long is one of its "fast timers", which tick every 499 ms while any is
 * armed. Five watches open for the agent's life kept that tick going: two wake-ups a second of an
 * otherwise idle agent (issue 18). A watch has its own inactivity timeout (WATCH_IDLE_TIMEOUT_MS,
 * client-node's timer) and the server ends it after timeoutSeconds.
 */
function watchConfig(kc: KubeConfig): KubeConfig {
  const noBodyTimeout: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) =>
    dispatch({ ...opts, bodyTimeout: 0 }, handler);
  return Object.create(kc, {
    applySecurityAuthentication: {
      value: async (ctx: Parameters<KubeConfig['applySecurityAuthentication']>[0]) => {
        await kc.applySecurityAuthentication(ctx);
        const dispatcher = (ctx.getDispatcher() as Dispatcher | undefined) ?? getGlobalDispatcher();
        ctx.setDispatcher(dispatcher.compose(noBodyTimeout));
      },
    },
  }) as KubeConfig;
}

/** A Watch that asks for bookmarks, slims objects and skips malformed ones before ListWatch sees them. */
class SlimWatch<T> extends Watch {
  private readonly informer: ResourceInformer<T & KubernetesObject>;

  constructor(kc: KubeConfig, informer: ResourceInformer<T & KubernetesObject>) {
    super(watchConfig(kc));
    this.informer = informer;
    // Private in client-node's types; its watch() reads it as its inactivity timeout.
    (this as unknown as { requestTimeoutMs: number }).requestTimeoutMs = WATCH_IDLE_TIMEOUT_MS;
  }

  override async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    callback: WatchCallback,
    done: WatchDone,
  ): Promise<AbortController> {
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
          callback(phase, phase === 'DELETED' ? slim : this.informer.keepIfSame(slim), raw);
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
  private lw: ListWatch<T>;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private connects = 0;
  private listedSinceWatch = false;
  private unsubscribe: (() => void) | undefined;
  private readonly subsets: CacheSubset<T>[] = [];
  /**
   * list()'s answer for every namespace, until the cache changes: ListWatch builds a new array of
   * every object on each call (50,000 pods from 2,000 namespace maps; the policy input and the
   * address recovery each ask for it once a pass). Dropped by every add, update and delete.
   */
  private everything: readonly T[] | undefined;
  /** The first list, taken page by page, until ListWatch takes it (TakenList). */
  private taken: TakenList<T> | undefined;
  private lastFormat: Answer['format'] | undefined;
  /** ListWatch's way of taking a list could be reached (TakenList); else it takes lists itself. */
  private takesLists = false;
  /** The last list or watch failed and none has worked since. */
  down = false;
  /** The first list is in the cache. */
  synced = false;
  /** Malformed objects skipped so far. */
  skipped = 0;
  /** Updates (watched or relisted) that changed nothing the slim object keeps, so fired no event. */
  unchanged = 0;
  /** An optional resource the API server does not serve (its CRD is not installed). */
  absent = false;

  constructor(
    kube: KubeClient,
    spec: ResourceSpec<T>,
    hooks: InformerHooks,
    backoff: BackoffOptions = DEFAULT_BACKOFF,
  ) {
    this.kube = kube;
    this.spec = spec;
    this.resource = spec.resource;
    this.hooks = hooks;
    this.backoff = backoff;
    this.lw = this.newListWatch();
  }

  /** A ListWatch whose events count only while it is the informer's (notServed replaces it). */
  private newListWatch(): ListWatch<T> {
    const lw = new ListWatch<T>(this.spec.path, new SlimWatch<T>(this.kube.kc, this), () => this.listAll(), false);
    const hooks = this.hooks;
    // The first list's objects fire no change each: onSynced follows them and stands for all of
    // them (at 50,000 pods, 50,000 calls of the agent's change hook in the one task that takes the
    // list into the cache).
    const changed = (object?: T) => lw === this.lw && this.synced && hooks.onChange?.(this.resource, object);
    // The subsets (and list()'s copy) first: what onChange wakes reads them.
    const put = (object: T) => {
      this.everything = undefined;
      if (lw === this.lw) for (const s of this.subsets) s.put(object);
    };
    lw.on('add', put);
    lw.on('update', put);
    lw.on('delete', (object: T) => {
      this.everything = undefined;
      if (lw === this.lw) for (const s of this.subsets) s.delete(object);
    });
    lw.on('add', changed);
    lw.on('update', changed);
    lw.on('delete', changed);
    lw.on('connect', () => {
      // Looking again for a CRD that is not installed is no restart worth counting.
      if (lw === this.lw && this.connects++ > 0 && !this.absent) hooks.onRestart?.(this.resource);
    });
    lw.on('error', (err: unknown) => lw === this.lw && this.failed(err));
    const inside = lw as unknown as Partial<ListWatchInside<T>>;
    // Another client-node whose ListWatch has no such method or cache: it takes lists its own way.
    if (typeof inside.addOrUpdateItems !== 'function' || !(inside.objects instanceof Map)) return lw;
    const addOrUpdateItems = inside.addOrUpdateItems.bind(lw);
    this.takesLists = true;
    inside.addOrUpdateItems = (items: T[]) => {
      const taken = this.taken;
      this.taken = undefined;
      if (taken === undefined || taken.given !== items) return addOrUpdateItems(items);
      // ListWatch compared its cache with an empty list just before: nothing was in it to delete.
      if (inside.objects?.size === 0) inside.objects = taken.objects;
      else addOrUpdateItems(taken.all);
    };
    return lw;
  }

  /**
   * Whether the first list goes into the cache page by page (TakenList): with a client-node whose
   * ListWatch lacks the method it is taken through, ListWatch takes the list itself, correct but in
   * one long task. The tests hold the pinned client-node to it.
   */
  get takesFirstListByPages(): boolean {
    return this.takesLists;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.kube.reachability.onBack(() => this.apiBack());
    this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.lw.stop();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    if (namespace) return this.lw.list(namespace);
    this.everything ??= this.lw.list();
    return this.everything;
  }

  /** The cached objects that match, kept up to date as events come (subset.ts). */
  subset(matches: (object: T) => boolean): CacheSubset<T> {
    const s = new CacheSubset(matches);
    for (const o of this.lw.list()) s.put(o);
    this.subsets.push(s);
    return s;
  }

  /** The resourceVersion the informer would resume from. */
  get resourceVersion(): string {
    return this.lw.latestResourceVersion();
  }

  /** Called by SlimWatch: the connection works (a watch answered, an event came). */
  healthy(): void {
    this.failures = 0;
    this.down = false;
    this.kube.reachability.succeeded();
  }

  /** The API is back after an outage: a restart waiting out its backoff goes now, from a clean slate. */
  private apiBack(): void {
    if (this.stopped || this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.failures = 0;
    this.hooks.log.info({ resource: this.resource }, `${this.resource}: the API server is back; list/watch again now`);
    this.run();
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

  /**
   * The cached object when it equals `slim` but for the resourceVersion, else `slim`. The cached one
   * takes the new resourceVersion in place, so that ListWatch (which keeps an object of the same
   * version and fires no event for it) records the version to resume from and the agent sees
   * nothing: kubelet's status updates and heartbeats change only fields the slim object drops, and
   * each would otherwise ask for a policy pass and a main pass. Identity is kept too, which the
   * policy compiler's reuse by identity relies on.
   */
  keepIfSame(slim: T): T {
    const meta = slim.metadata;
    if (!meta?.name) return slim;
    const cached = this.lw.get(meta.name, meta.namespace);
    if (!cached?.metadata || cached === slim || meta.resourceVersion === undefined) return slim;
    if (!sameSlim(cached as unknown as { metadata: SlimMeta }, slim as unknown as { metadata: SlimMeta })) return slim;
    cached.metadata.resourceVersion = meta.resourceVersion;
    this.unchanged++;
    return cached;
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
    if (this.spec.optional && (err as { statusCode?: unknown } | undefined)?.statusCode === 404) {
      this.notServed();
      return;
    }
    this.failures++;
    this.down = true;
    this.kube.reachability.failed(err);
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

  /**
   * An optional resource answered 404: its CRD is not installed (or was removed, and its objects
   * with it). Said once; the informer counts as listed and empty; listed again every absentMs.
   */
  private notServed(): void {
    this.failures = 0;
    this.down = false;
    const retryMs = this.backoff.absentMs ?? ABSENT_RETRY_MS;
    if (!this.absent) {
      this.absent = true;
      this.hooks.log.info(
        { resource: this.resource, retryInMs: retryMs },
        `${this.resource}: not served by the API server (the CRD is not installed): none to enforce; ` +
          `looking again every ${Math.round(retryMs / 1000)} s`,
      );
    }
    const had = this.lw.list().length > 0;
    if (had || this.lw.latestResourceVersion() !== '') {
      // Forget the cache and the version to resume from: when the CRD is back, list afresh.
      void this.lw.stop();
      this.lw = this.newListWatch();
      this.everything = undefined;
      for (const s of this.subsets) s.clear();
    }
    if (had) this.hooks.onChange?.(this.resource);
    if (!this.synced) {
      this.synced = true;
      this.hooks.onSynced?.(this.resource);
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped) this.run();
    }, retryMs);
  }

  private fetchPage(cont: string | undefined, session: RequestSession): Promise<Answer> {
    const query: Record<string, string> = { limit: String(LIST_PAGE_SIZE) };
    if (cont !== undefined) query.continue = cont;
    const accept = this.spec.protobuf !== undefined ? PROTOBUF_ACCEPT : undefined;
    return this.kube.requestAnswer('GET', this.spec.path, { query, session, ...(accept ? { accept } : {}) });
  }

  /** The format the API server answered the last list page in (undefined before any). */
  get listFormat(): Answer['format'] | undefined {
    return this.lastFormat;
  }

  /** A list page's continue token read without reading its items; undefined when not found so. */
  private peekNext(answer: Answer): string | undefined {
    if (answer.format === 'json') return peekContinue(answer.text);
    try {
      const token = protobufListHead(answer.bytes).metadata.continue;
      return token === '' ? undefined : token;
    } catch {
      // Read (and refused) with the page.
      return undefined;
    }
  }

  /** A list page's items (in the API's JSON shape) and metadata. */
  private pageOf(answer: Answer): { items: unknown[]; metadata: Record<string, unknown> } {
    const what = `list ${this.resource}`;
    this.lastFormat = answer.format;
    if (answer.format === 'json') {
      const page = parseAnswer('GET', this.spec.path, answer.text);
      if (!isObject(page) || !Array.isArray(page.items))
        throw new ApiRequestError(200, `${what}: the answer is not a list`);
      return { items: page.items, metadata: isObject(page.metadata) ? page.metadata : {} };
    }
    const kind = this.spec.protobuf;
    try {
      if (kind === undefined) throw new ProtobufError('protobuf where JSON was asked for');
      return decodeProtobufList(answer.bytes, kind);
    } catch (err) {
      if (!(err instanceof ProtobufError)) throw err;
      throw new ApiRequestError(200, `${what}: the answer is not a list: ${err.message}`);
    } finally {
      releaseBody(answer.bytes);
    }
  }

  /** The whole collection, page by page, slimmed; a continue token that expired restarts the list. */
  private async listAll(): Promise<KubernetesListObject<T>> {
    for (let attempt = 1; ; attempt++) {
      const items: T[] = [];
      // The first list (nothing cached, no event owed for each object: onSynced stands for them all)
      // goes into a cache of its own as it comes; ListWatch is handed it whole (TakenList).
      const inside = this.lw as unknown as ListWatchInside<T>;
      const own: CacheMap<T> | undefined =
        this.takesLists && !this.synced && inside.objects.size === 0 ? new Map() : undefined;
      this.taken = undefined;
      let resourceVersion: string | undefined;
      let cont: string | undefined;
      // The next page is asked for before this one is parsed (its token read from the answer's
      // head): the server makes it while the agent parses and slims this one.
      let ahead: { token: string; answer: Promise<Answer> } | undefined;
      // The pages share one connection pool (and credentials), closed when the list ends.
      const session = new RequestSession();
      try {
        do {
          const answer = await (ahead?.token === cont && ahead !== undefined
            ? ahead.answer
            : this.fetchPage(cont, session));
          const peeked = this.peekNext(answer);
          ahead = peeked === undefined ? undefined : { token: peeked, answer: this.fetchPage(peeked, session) };
          // Awaited on the next turn; until then a failure of it must not count as unhandled.
          ahead?.answer.catch(() => undefined);
          await nextTurn();
          const page = this.pageOf(answer);
          const meta = page.metadata;
          resourceVersion ??= isString(meta.resourceVersion) ? meta.resourceVersion : undefined;
          // A page (500 pods, ~1 MB) is read, decoded, parsed and slimmed in 25-75 ms: the event loop
          // is given back between the decode (in the task that read the answer's last bytes, 5-9 ms)
          // and the parse (10-20 ms, above), between the parse and the slimming, and every SLICE_MS
          // of slimming, so that a /healthz answer or a pod's notice waits for a piece of a page.
          await nextTurn();
          let sliceFrom = performance.now();
          for (const [i, raw] of page.items.entries()) {
            if ((i & 63) === 63 && performance.now() - sliceFrom > LIST_SLICE_MS) {
              await nextTurn();
              sliceFrom = performance.now();
            }
            const slim = this.slim(raw);
            if (slim === undefined) continue;
            const object = own === undefined ? this.keepIfSame(slim) : slim;
            items.push(object);
            if (own === undefined) continue;
            addOrUpdateObject(own, object);
            for (const s of this.subsets) s.put(object);
          }
          cont = isString(meta.continue) && meta.continue !== '' ? meta.continue : undefined;
        } while (cont !== undefined);
      } catch (err) {
        // The subsets had this attempt's objects as they came: none of them stands now.
        if (own !== undefined) for (const s of this.subsets) s.clear();
        if (err instanceof ApiRequestError && err.statusCode === 410 && cont !== undefined && attempt < 3) continue;
        throw err;
      } finally {
        session.close();
      }
      this.listedSinceWatch = true;
      this.failures = 0;
      this.down = false;
      if (this.absent) {
        this.absent = false;
        this.hooks.log.info(
          { resource: this.resource, objects: items.length },
          `${this.resource}: served by the API server now (the CRD is installed)`,
        );
      }
      let given = items;
      if (own !== undefined) {
        given = [];
        this.taken = { objects: own, given, all: items };
        this.everything = undefined;
      }
      return {
        apiVersion: 'v1',
        kind: 'List',
        metadata: { resourceVersion },
        items: given,
      } as KubernetesListObject<T>;
    }
  }
}

/** The longest piece of a list page's slimming between two turns of the event loop. */
const LIST_SLICE_MS = 10;

/** How far into a list's answer its metadata may end (the API server writes kind, apiVersion and
 * metadata before the items). */
const LIST_HEAD_CHARS = 4096;

/**
 * The continue token of a list's answer, read from its head without parsing it: the text between
 * `"continue":"` and the next quote in the metadata before `"items"`, if that metadata is written
 * first and the token has no escapes. Undefined otherwise (the list then asks for the next page
 * after parsing this one); the caller still compares it with the parsed metadata's.
 */
export function peekContinue(text: string): string | undefined {
  const head = text.slice(0, LIST_HEAD_CHARS);
  const items = head.indexOf('"items":');
  if (items < 0) return undefined;
  const at = head.lastIndexOf('"continue":"', items);
  if (at < 0) return undefined;
  const start = at + '"continue":"'.length;
  const end = head.indexOf('"', start);
  if (end < 0 || end > items) return undefined;
  const token = head.slice(start, end);
  return token === '' || token.includes('\\') ? undefined : token;
}
