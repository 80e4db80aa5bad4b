// The agent's informers (src/k8s/informer.ts) in process against the test API server: paged lists of
// slim objects, bookmarks, relist after 410, restart with backoff after failed lists and outages,
// malformed objects skipped in lists and watches; and the NetworkUnavailable patch. The server
// authorizes by deploy/strand.yaml's RBAC and the client is the agent's ServiceAccount, as on a
// cluster; a copy of the manifest without a permission gets the agent a 403.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiRequestError, KubeClient, loadKubeConfig } from '../../src/k8s/client.ts';
import { ClusterCache } from '../../src/k8s/cluster-cache.ts';
import type { ResourceName } from '../../src/k8s/informer.ts';
import { markNetworkAvailable } from '../../src/k8s/node-patch.ts';
import { silentLogger } from '../../src/log.ts';
import { DEPLOY_MANIFEST, TestApiServer, type KubeObject, type TestApiServerOptions } from '../kit/k8s-api-server.ts';
import { withoutResources, writeManifestCopy } from '../kit/k8s/rbac.ts';

let api: TestApiServer;
let dir: string;
let kube: KubeClient;
let cache: ClusterCache | undefined;

const events = {
  changes: 0,
  synced: [] as ResourceName[],
  relisted: [] as [ResourceName, number][],
  errors: [] as [ResourceName, unknown][],
  restarts: [] as ResourceName[],
  warnings: [] as string[],
  infos: [] as string[],
};

// A logger that keeps the warning messages (malformed objects, failed lists).
const log = Object.assign(Object.create(silentLogger), {
  warn: (obj: unknown, msg?: string) => events.warnings.push(msg ?? String(obj)),
  info: (obj: unknown, msg?: string) => events.infos.push(msg ?? String(obj)),
}) as typeof silentLogger;

function startCache(): ClusterCache {
  cache = new ClusterCache(
    kube,
    {
      log,
      onChange: () => events.changes++,
      onSynced: (r) => events.synced.push(r),
      onRelisted: (r, n) => events.relisted.push([r, n]),
      onApiError: (r, err) => events.errors.push([r, err]),
      onRestart: (r) => events.restarts.push(r),
    },
    { initialMs: 20, maxMs: 200, absentMs: 150 },
  );
  cache.start();
  return cache;
}

function pod(name: string, extra: Record<string, unknown> = {}): KubeObject {
  return {
    metadata: { name, namespace: 'default', labels: { app: 'web' }, annotations: { note: 'x'.repeat(200) } },
    spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'pause', ports: [{ containerPort: 80 }] }] },
    status: { podIPs: [{ ip: '10.244.1.5' }] },
    ...extra,
  };
}

/** A server authorizing by `rbac` (the project manifest by default) and the agent's client, as its ServiceAccount. */
async function startServer(rbac: TestApiServerOptions['rbac'] = {}): Promise<void> {
  api = await TestApiServer.start({ bookmarkIntervalMs: 200, rbac });
  kube = new KubeClient(loadKubeConfig(api.writeKubeconfig(join(dir, 'kubeconfig'), { token: api.agentToken })));
}

/** deploy/strand.yaml without the resources `drop` says no to, in the test's directory. */
function manifestWithout(drop: (group: string, resource: string) => boolean): string {
  return writeManifestCopy(DEPLOY_MANIFEST, join(dir, 'strand.yaml'), withoutResources(drop));
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strand-agent-kube-'));
  await startServer();
  events.changes = 0;
  for (const list of [events.synced, events.relisted, events.errors, events.restarts, events.warnings, events.infos])
    list.length = 0;
});

afterEach(async () => {
  await cache?.stop();
  cache = undefined;
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('agent informers', () => {
  it('list in pages, keep slim objects and watch with bookmarks', async () => {
    for (let i = 0; i < 1200; i++) api.create('pods', pod(`p${i}`));
    api.create('nodes', { metadata: { name: 'n1' }, spec: { podCIDR: '10.244.1.0/24' } });
    api.create('namespaces', { metadata: { name: 'default' } });
    api.create('networkpolicies', { metadata: { name: 'deny', namespace: 'default' }, spec: { podSelector: {} } });
    const c = startCache();
    await api.waitFor(() => c.synced, 10_000, 'the first lists');
    expect(events.synced.sort()).toEqual(['clusternetworkpolicies', 'namespaces', 'networkpolicies', 'nodes', 'pods']);
    expect(c.pods.list()).toHaveLength(1200);
    expect(c.pods.get('p7', 'default')).toEqual({
      metadata: {
        name: 'p7',
        namespace: 'default',
        uid: expect.any(String),
        resourceVersion: expect.any(String),
        labels: { app: 'web' },
      },
      spec: { nodeName: 'n1', containers: [{ name: 'c', ports: [{ containerPort: 80, protocol: 'TCP' }] }] },
      status: { podIPs: [{ ip: '10.244.1.5' }] },
    });
    const lists = api.requestsMatching({ verb: 'list', resource: 'pods' });
    expect(lists.map((r) => r.query.limit)).toEqual(['500', '500', '500']);
    expect(lists.map((r) => r.query.continue === undefined)).toEqual([true, false, false]);

    await api.waitFor(() => api.openWatches() === 4, 5_000, 'four watches');
    const watches = api.requestsMatching({ verb: 'watch' });
    expect(watches.every((w) => w.query.allowWatchBookmarks === 'true' && Number(w.query.timeoutSeconds) >= 300)).toBe(
      true,
    );
    api.patch('pods', 'p7', { metadata: { labels: { app: 'db' } } });
    api.delete('pods', 'p8');
    await api.waitFor(
      () => c.pods.get('p7', 'default')?.metadata.labels?.app === 'db' && c.pods.get('p8', 'default') === undefined,
      5_000,
      'the watch',
    );
    // Bookmarks move the version the watch would resume from, without changes.
    const rv = c.pods.resourceVersion;
    api.create('nodes', { metadata: { name: 'n2' } });
    await api.waitFor(() => c.pods.resourceVersion !== rv, 5_000, 'a bookmark');
    expect(events.errors).toEqual([]);
  });

  it('relist after 410 Gone, and drop what was deleted meanwhile', async () => {
    api.create('pods', pod('kept'));
    api.create('pods', pod('gone'));
    const c = startCache();
    await api.waitFor(() => c.synced && api.openWatches() === 4, 5_000, 'sync');
    api.dropWatches({ resource: 'pods' });
    api.delete('pods', 'gone');
    api.create('pods', pod('new'));
    api.compact();
    await api.waitFor(() => events.relisted.some(([r]) => r === 'pods'), 10_000, 'the relist');
    expect(
      c.pods
        .list()
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(['kept', 'new']);
    expect(events.relisted).toContainEqual(['pods', 2]);
    expect(api.counters.watchesExpired).toBeGreaterThan(0);
  });

  it('restart with backoff after failed lists', async () => {
    api.create('nodes', { metadata: { name: 'n1' } });
    api.failRequests({ verb: 'list', resource: 'nodes' }, 500, 2);
    const c = startCache();
    await api.waitFor(() => c.nodes.synced, 10_000, 'the nodes list');
    expect(events.errors.filter(([r]) => r === 'nodes')).toHaveLength(2);
    const err = events.errors[0]?.[1] as ApiRequestError;
    expect(err).toBeInstanceOf(ApiRequestError);
    expect(err.statusCode).toBe(500);
    expect(err.message).toContain('injected failure (500)');
    expect(c.nodes.list()).toHaveLength(1);
    expect(events.warnings.filter((w) => w.includes('nodes: list/watch failed; retrying'))).toHaveLength(2);
  });

  it('come back after an API server outage and catch up, keeping their caches meanwhile', async () => {
    api.create('nodes', { metadata: { name: 'n1' } });
    api.create('pods', pod('before'));
    const c = startCache();
    await api.waitFor(() => c.synced && api.openWatches() === 4, 5_000, 'sync');
    await api.stop();
    await api.waitFor(() => events.errors.length >= 4, 5_000, 'the cut watches');
    api.create('nodes', { metadata: { name: 'n2' } });
    api.create('pods', pod('during'));
    await new Promise((r) => setTimeout(r, 300));
    expect(c.pods.list().map((p) => p.metadata.name)).toEqual(['before']);
    await api.start();
    await api.waitFor(() => c.nodes.list().length === 2 && c.pods.list().length === 2, 10_000, 'the catch-up');
    expect(events.restarts.length).toBeGreaterThanOrEqual(4);
    // Resumed from their versions: no relist.
    expect(api.requestsMatching({ verb: 'list', resource: 'pods' })).toHaveLength(1);
  });

  it('skip malformed objects in lists and watches, and keep the good ones', async () => {
    api.create('pods', pod('good-1'));
    api.injectMalformed('pods', { kind: 'Pod', spec: {} }, { namespace: 'default' });
    api.injectMalformed('pods', {
      metadata: { name: 'bad-ports', namespace: 'default' },
      spec: { containers: [{ ports: 'x' }] },
    });
    const c = startCache();
    await api.waitFor(() => c.synced && api.openWatches() === 4, 5_000, 'sync');
    expect(c.pods.list().map((p) => p.metadata.name)).toEqual(['good-1']);
    expect(c.pods.skipped).toBe(2);

    api.injectMalformed('pods', 'a pod that is a string');
    api.injectMalformed('pods', { metadata: { name: 'bad-spec', namespace: 'default' }, spec: [] });
    api.sendRawWatchLine('pods', '{not json');
    api.create('pods', pod('good-2'));
    await api.waitFor(() => c.pods.list().length === 2, 5_000, 'the good pod after the bad ones');
    expect(c.pods.skipped).toBe(4);
    expect(events.warnings.filter((w) => w.startsWith('skipped a malformed object from the API (pods)'))).toHaveLength(
      4,
    );
    // A good object turning bad keeps its last good state; its deletion still removes it.
    api.update('pods', { ...pod('good-2'), spec: 'broken' });
    await api.waitFor(() => c.pods.skipped === 5, 5_000, 'the bad update');
    expect(c.pods.get('good-2', 'default')?.spec.nodeName).toBe('n1');
    api.delete('pods', 'good-2');
    await api.waitFor(() => c.pods.get('good-2', 'default') === undefined, 5_000, 'the deletion');
    expect(events.errors).toEqual([]);
  });
});

describe('ClusterNetworkPolicy informer (a CRD that may not be installed)', () => {
  const cnp = (name: string) => ({
    metadata: { name, creationTimestamp: '2026-04-01T00:00:00Z' },
    spec: {
      tier: 'Admin',
      priority: 10,
      subject: { namespaces: {} },
      ingress: [{ action: 'Deny', from: [{ namespaces: {} }] }],
    },
  });
  const notServed = () => events.infos.filter((m) => m.startsWith('clusternetworkpolicies: not served'));

  it('counts as synced and empty without the CRD, says so once, and picks the CRD up when it is installed', async () => {
    const c = startCache();
    await api.waitFor(() => c.synced, 5_000, 'sync without the CRD');
    expect(c.clusterNetworkPolicies.absent).toBe(true);
    expect(c.unsynced).toEqual([]);
    // Looked for again every absentMs, said once, never an API error or a restart.
    await api.waitFor(
      () => api.requests.filter((r) => r.path.endsWith('/clusternetworkpolicies') && r.status === 404).length >= 3,
      5_000,
      'three looks',
    );
    expect(notServed()).toHaveLength(1);
    expect(events.errors).toEqual([]);
    expect(events.restarts).toEqual([]);
    expect(events.warnings).toEqual([]);

    api.installCrd('clusternetworkpolicies');
    api.create('clusternetworkpolicies', cnp('deny-all'));
    await api.waitFor(() => c.clusterNetworkPolicies.list().length === 1, 5_000, 'the CRD picked up');
    expect(c.clusterNetworkPolicies.absent).toBe(false);
    expect(c.clusterNetworkPolicies.get('deny-all')).toEqual({
      metadata: {
        name: 'deny-all',
        uid: expect.any(String),
        resourceVersion: expect.any(String),
        creationTimestamp: expect.any(Date),
      },
      spec: cnp('deny-all').spec,
    });
    await api.waitFor(() => api.openWatches('clusternetworkpolicies') === 1, 5_000, 'the watch');
    api.create('clusternetworkpolicies', cnp('second'));
    await api.waitFor(() => c.clusterNetworkPolicies.list().length === 2, 5_000, 'a watched CNP');
    expect(
      events.infos.filter((m) => m.startsWith('clusternetworkpolicies: served by the API server now')),
    ).toHaveLength(1);
  });

  it('empties its cache when the CRD is removed, and lists afresh when it is back', async () => {
    api.installCrd('clusternetworkpolicies');
    api.create('clusternetworkpolicies', cnp('a'));
    const c = startCache();
    await api.waitFor(() => c.synced && c.clusterNetworkPolicies.list().length === 1, 5_000, 'sync');
    api.uninstallCrd('clusternetworkpolicies');
    await api.waitFor(() => c.clusterNetworkPolicies.absent, 5_000, 'the CRD gone');
    expect(c.clusterNetworkPolicies.list()).toEqual([]);
    expect(c.unsynced).toEqual([]);
    api.installCrd('clusternetworkpolicies');
    api.create('clusternetworkpolicies', cnp('b'));
    await api.waitFor(
      () =>
        c.clusterNetworkPolicies
          .list()
          .map((p) => p.metadata.name)
          .join() === 'b',
      5_000,
      'the CRD back',
    );
  });

  it('keeps a CNP whose spec is not an object, for the compiler to report', async () => {
    api.installCrd('clusternetworkpolicies');
    api.injectMalformed('clusternetworkpolicies', { metadata: { name: 'odd' }, spec: 'x' });
    const c = startCache();
    await api.waitFor(() => c.synced, 5_000, 'sync');
    expect(c.clusterNetworkPolicies.get('odd')?.spec).toBe('x');
  });
});

describe('NetworkUnavailable patch', () => {
  it('merges the condition into the Node status by strategic merge patch', async () => {
    api.create('nodes', {
      metadata: { name: 'n1' },
      status: {
        conditions: [
          { type: 'Ready', status: 'True' },
          { type: 'NetworkUnavailable', status: 'True', reason: 'NoRouteCreated' },
        ],
      },
    });
    await markNetworkAvailable(kube, 'n1', new Date('2026-01-02T03:04:05Z'));
    const conditions = (api.get('nodes', 'n1')?.status as { conditions: Record<string, string>[] }).conditions;
    expect(conditions).toEqual([
      { type: 'Ready', status: 'True' },
      {
        type: 'NetworkUnavailable',
        status: 'False',
        reason: 'StrandIsUp',
        message: 'Strand is running on this node',
        lastTransitionTime: '2026-01-02T03:04:05Z',
        lastHeartbeatTime: '2026-01-02T03:04:05Z',
      },
    ]);
    expect(api.requests.at(-1)).toMatchObject({
      method: 'PATCH',
      path: '/api/v1/nodes/n1/status',
      contentType: 'application/strategic-merge-patch+json',
    });

    const missing = await markNetworkAvailable(kube, 'nope').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ApiRequestError);
    expect((missing as ApiRequestError).statusCode).toBe(404);
    await api.stop();
    const down = await markNetworkAvailable(kube, 'n1').catch((e: unknown) => e);
    expect((down as ApiRequestError).statusCode).toBe(0);
    // The socket's own error (undici.request), not fetch's "fetch failed" around it.
    expect((down as Error).message).toMatch(/^PATCH \/api\/v1\/nodes\/n1\/status: .*ECONNREFUSED/);
  });
});

describe('RBAC: the agent under its ServiceAccount', () => {
  const user = 'system:serviceaccount:kube-strand:strand';

  it('lists and watches all it needs under the real manifest, and uses only list and watch there', async () => {
    api.installCrd('clusternetworkpolicies');
    api.create('nodes', { metadata: { name: 'n1' } });
    const c = startCache();
    await api.waitFor(() => c.synced && api.openWatches() === 5, 5_000, 'sync');
    expect(events.errors).toEqual([]);
    expect(api.requests.every((r) => r.user === user)).toBe(true);
    const report = api.leastPrivilege();
    expect(report.denied).toEqual({});
    // "list nodes (ClusterRole strand, rule 1)" → "list nodes".
    expect(report.used.map((p) => p.replace(/ \(.*\)$/, ''))).toEqual([
      'list clusternetworkpolicies.policy.networking.k8s.io',
      'list namespaces',
      'list networkpolicies.networking.k8s.io',
      'list nodes',
      'list pods',
      'watch clusternetworkpolicies.policy.networking.k8s.io',
      'watch namespaces',
      'watch networkpolicies.networking.k8s.io',
      'watch nodes',
      'watch pods',
    ]);
  });

  it("gets 403 Forbidden with the API server's message for NetworkPolicies when the role lacks them, and syncs the rest", async () => {
    await api.close();
    await startServer({ manifest: manifestWithout((g, r) => g === 'networking.k8s.io' && r === 'networkpolicies') });
    const c = startCache();
    await api.waitFor(() => c.nodes.synced && c.pods.synced && c.namespaces.synced, 5_000, 'the granted lists');
    await api.waitFor(
      () => events.errors.filter(([r]) => r === 'networkpolicies').length >= 2,
      5_000,
      'the refused list, twice (backoff)',
    );
    expect(c.synced).toBe(false);
    expect(c.networkPolicies.synced).toBe(false);
    const err = events.errors.find(([r]) => r === 'networkpolicies')?.[1] as ApiRequestError;
    expect(err).toBeInstanceOf(ApiRequestError);
    expect(err.statusCode).toBe(403);
    expect(err.message).toContain(
      `networkpolicies.networking.k8s.io is forbidden: User "${user}" cannot list resource "networkpolicies" in API group "networking.k8s.io" at the cluster scope`,
    );
    expect(events.errors.every(([r]) => r === 'networkpolicies')).toBe(true);
    expect(api.leastPrivilege().denied).toMatchObject({ 'list networkpolicies.networking.k8s.io': expect.any(Number) });
    const refused = api.requestsMatching({ resource: 'networkpolicies' }).at(-1);
    expect(refused?.status).toBe(403);
  });

  it('gets 403 for the NetworkUnavailable patch when the role lacks nodes/status (patch of nodes is not enough)', async () => {
    await api.close();
    await startServer({ manifest: manifestWithout((g, r) => g === '' && r === 'nodes/status') });
    api.create('nodes', {
      metadata: { name: 'n1' },
      status: { conditions: [{ type: 'NetworkUnavailable', status: 'True' }] },
    });
    const denied = await markNetworkAvailable(kube, 'n1').catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(ApiRequestError);
    expect((denied as ApiRequestError).statusCode).toBe(403);
    expect((denied as Error).message).toBe(
      `PATCH /api/v1/nodes/n1/status: 403 nodes "n1" is forbidden: User "${user}" cannot patch resource "nodes/status" in API group "" at the cluster scope`,
    );
    expect((api.get('nodes', 'n1')?.status as { conditions: { status: string }[] }).conditions[0]?.status).toBe('True');
  });

  it('is refused with 401 for a token the server does not know', async () => {
    kube = new KubeClient(loadKubeConfig(api.writeKubeconfig(join(dir, 'wrong'), { token: 'not-the-agent' })));
    const err = await markNetworkAvailable(kube, 'n1').catch((e: unknown) => e);
    expect((err as ApiRequestError).statusCode).toBe(401);
    expect((err as Error).message).toBe('PATCH /api/v1/nodes/n1/status: 401 Unauthorized');
  });
});
