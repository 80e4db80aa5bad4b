// The test API server against the real client the agent uses, @kubernetes/client-node 2: generated
// API calls, informers (makeInformer / ListWatch) and the raw Watch.
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ApiException,
  ApisApi,
  CoreApi,
  CoreV1Api,
  KubeConfig,
  ListWatch,
  makeInformer,
  NetworkingV1Api,
  PatchStrategy,
  setHeaderOptions,
  VersionApi,
  Watch,
  type Informer,
  type KubernetesObject,
  type ObjectCache,
  type V1Namespace,
  type V1NetworkPolicy,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TestApiServer, type KubeObject, type TestApiServerOptions } from '../kit/k8s-api-server.ts';

type Cached<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

let api: TestApiServer;
let dir: string;
let kc: KubeConfig;
const cleanups: (() => Promise<void> | void)[] = [];

async function startServer(opts: TestApiServerOptions = {}): Promise<void> {
  api = await TestApiServer.start(opts);
  kc = new KubeConfig();
  kc.loadFromFile(api.writeKubeconfig(join(dir, 'kubeconfig')));
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strand-k8s-'));
  await startServer();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

function node(name: string, extra: Partial<KubeObject> = {}): KubeObject {
  return { metadata: { name }, spec: { podCIDR: '10.244.1.0/24' }, ...extra };
}

function pod(namespace: string, name: string, nodeName: string, labels: Record<string, string> = {}): KubeObject {
  return { metadata: { name, namespace, labels }, spec: { nodeName, containers: [{ name: 'c', image: 'pause' }] } };
}

/** Records informer callbacks as "add name", "update name", "delete name". */
function recordEvents<T extends KubernetesObject>(informer: Informer<T>): string[] {
  const events: string[] = [];
  informer.on('add', (o) => events.push(`add ${o.metadata?.name}`));
  informer.on('update', (o) => events.push(`update ${o.metadata?.name}`));
  informer.on('delete', (o) => events.push(`delete ${o.metadata?.name}`));
  return events;
}

/** Starts an informer and stops it when the test ends. */
async function started<T extends KubernetesObject>(informer: Cached<T>): Promise<Cached<T>> {
  cleanups.push(() => informer.stop());
  await informer.start();
  return informer;
}

/**
 * What a consumer of client-node's ListWatch must do: it reconnects by itself only after a watch
 * that ended cleanly (resuming from its last resourceVersion) or after 410 (relisting). Any other
 * failure (connection refused or reset, a non-200 watch, a failed list) goes to the 'error'
 * callbacks and the informer stays stopped. So on 'error', call start() again after a delay that
 * grows; start() resumes from the last version seen (or relists if it has none).
 */
function restartOnError<T extends KubernetesObject>(informer: Informer<T>, errors: unknown[], baseDelayMs = 50): void {
  let delay = baseDelayMs;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  informer.on('error', (err) => {
    errors.push(err);
    if (stopped) return;
    timer = setTimeout(() => void informer.start(), delay);
    delay = Math.min(delay * 2, 1000);
  });
  // An event means the connection is healthy again.
  informer.on('change', () => (delay = baseDelayMs));
  cleanups.push(() => {
    stopped = true;
    clearTimeout(timer);
  });
}

function nodeInformer(labelSelector?: string): Cached<V1Node> {
  const core = kc.makeApiClient(CoreV1Api);
  // makeInformer applies labelSelector to the watch only: the list function must apply it as well.
  return makeInformer(
    kc,
    '/api/v1/nodes',
    () => core.listNode(labelSelector === undefined ? {} : { labelSelector }),
    labelSelector,
  );
}

function podInformer(opts: { labelSelector?: string; fieldSelector?: string } = {}): Cached<V1Pod> {
  const core = kc.makeApiClient(CoreV1Api);
  return new ListWatch<V1Pod>(
    '/api/v1/pods',
    new Watch(kc),
    () => core.listPodForAllNamespaces(opts),
    false,
    opts.labelSelector,
    opts.fieldSelector,
  );
}

const names = (objs: readonly KubernetesObject[]) => objs.map((o) => o.metadata?.name).sort();

describe('generated API calls', () => {
  it('lists and reads nodes, pods, namespaces and network policies with a list resourceVersion', async () => {
    api.create('namespaces', { metadata: { name: 'team-a' } });
    api.create('nodes', node('n1'));
    api.create('pods', pod('team-a', 'web', 'n1'));
    api.create('pods', pod('default', 'db', 'n1'));
    api.create('networkpolicies', {
      metadata: { name: 'deny', namespace: 'team-a' },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    });
    const core = kc.makeApiClient(CoreV1Api);
    const net = kc.makeApiClient(NetworkingV1Api);

    const nodes = await core.listNode();
    expect(nodes.kind).toBe('NodeList');
    expect(nodes.metadata?.resourceVersion).toBe(api.resourceVersion);
    expect(names(nodes.items)).toEqual(['n1']);
    expect(nodes.items[0]?.spec?.podCIDR).toBe('10.244.1.0/24');
    expect(nodes.items[0]?.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);

    expect(names((await core.listPodForAllNamespaces()).items)).toEqual(['db', 'web']);
    expect(names((await core.listNamespacedPod({ namespace: 'team-a' })).items)).toEqual(['web']);
    expect(names((await core.listNamespace()).items)).toEqual(['team-a']);
    const ns: V1Namespace = await core.readNamespace({ name: 'team-a' });
    expect(ns.status?.phase).toBe('Active');
    const policies = await net.listNetworkPolicyForAllNamespaces();
    expect(policies.kind).toBe('NetworkPolicyList');
    expect(names(policies.items)).toEqual(['deny']);
    const policy: V1NetworkPolicy = await net.readNamespacedNetworkPolicy({ name: 'deny', namespace: 'team-a' });
    expect(policy.spec?.policyTypes).toEqual(['Ingress']);
    expect(names((await net.listNamespacedNetworkPolicy({ namespace: 'default' })).items)).toEqual([]);

    const read = await core.readNode({ name: 'n1' });
    expect(read.kind).toBe('Node');
    expect(read.metadata?.resourceVersion).toBe('2');
    // List items are deserialized into models: creationTimestamp becomes a Date.
    expect(read.metadata?.creationTimestamp).toBeInstanceOf(Date);

    const missing = await core.readNode({ name: 'nope' }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ApiException);
    expect((missing as ApiException<string>).code).toBe(404);
    expect(JSON.parse((missing as ApiException<string>).body)).toMatchObject({
      kind: 'Status',
      reason: 'NotFound',
      code: 404,
    });
  });

  it('creates, replaces and deletes through HTTP, with conflicts on a stale resourceVersion', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const created = await core.createNamespacedPod({
      namespace: 'default',
      body: { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'pause' }] } },
    });
    expect(created.metadata?.namespace).toBe('default');
    expect(created.metadata?.uid).toBeTruthy();
    expect(api.get('pods', 'p', 'default')?.metadata.resourceVersion).toBe(created.metadata?.resourceVersion);

    const again = await core
      .createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'p' } } })
      .catch((e: unknown) => e);
    expect((again as ApiException<string>).code).toBe(409);

    const replaced = await core.replaceNamespacedPod({
      name: 'p',
      namespace: 'default',
      body: { ...created, metadata: { ...created.metadata, labels: { app: 'x' } } },
    });
    expect(replaced.metadata?.labels).toEqual({ app: 'x' });
    expect(Number(replaced.metadata?.resourceVersion)).toBeGreaterThan(Number(created.metadata?.resourceVersion));
    const stale = await core
      .replaceNamespacedPod({ name: 'p', namespace: 'default', body: created })
      .catch((e: unknown) => e);
    expect((stale as ApiException<string>).code).toBe(409);

    await core.deleteNamespacedPod({ name: 'p', namespace: 'default' });
    expect(api.get('pods', 'p', 'default')).toBeUndefined();
    expect(api.requestsMatching({ resource: 'pods', verb: 'delete' })).toHaveLength(1);
  });

  it('selects by label and field', async () => {
    api.create('pods', pod('a', 'web-1', 'n1', { app: 'web', tier: 'front' }));
    api.create('pods', pod('a', 'web-2', 'n2', { app: 'web' }));
    api.create('pods', pod('b', 'db-1', 'n1', { app: 'db' }));
    api.create('pods', pod('b', 'loose', '', {}));
    const core = kc.makeApiClient(CoreV1Api);
    const select = async (labelSelector?: string, fieldSelector?: string) =>
      names(
        (
          await core.listPodForAllNamespaces({
            ...(labelSelector ? { labelSelector } : {}),
            ...(fieldSelector ? { fieldSelector } : {}),
          })
        ).items,
      );

    expect(await select('app=web')).toEqual(['web-1', 'web-2']);
    expect(await select('app==web')).toEqual(['web-1', 'web-2']);
    expect(await select('app!=web')).toEqual(['db-1', 'loose']);
    expect(await select('app in (web, db)')).toEqual(['db-1', 'web-1', 'web-2']);
    expect(await select('app notin (web)')).toEqual(['db-1', 'loose']);
    expect(await select('tier')).toEqual(['web-1']);
    expect(await select('!tier')).toEqual(['db-1', 'loose', 'web-2']);
    expect(await select('app=web,!tier')).toEqual(['web-2']);
    expect(await select(undefined, 'spec.nodeName=n1')).toEqual(['db-1', 'web-1']);
    expect(await select(undefined, 'spec.nodeName=')).toEqual(['loose']);
    expect(await select(undefined, 'metadata.namespace=b,metadata.name!=loose')).toEqual(['db-1']);
    expect(await select('app=web', 'spec.nodeName==n2')).toEqual(['web-2']);
    expect(names((await core.listNode({ fieldSelector: 'metadata.name=none' })).items)).toEqual([]);

    const bad = await select(undefined, 'spec.hostname=x').catch((e: unknown) => e);
    expect((bad as ApiException<string>).code).toBe(400);
    expect(JSON.parse((bad as ApiException<string>).body).message).toContain('field label not supported');
  });

  it('pages a list with limit and continue', async () => {
    for (const n of ['n1', 'n2', 'n3', 'n4', 'n5']) api.create('nodes', node(n));
    const core = kc.makeApiClient(CoreV1Api);
    const first = await core.listNode({ limit: 2 });
    expect(names(first.items)).toEqual(['n1', 'n2']);
    expect(first.metadata?.remainingItemCount).toBe(3);
    const _continue = first.metadata?._continue;
    expect(_continue).toBeTruthy();
    const second = await core.listNode({ limit: 2, _continue });
    expect(names(second.items)).toEqual(['n3', 'n4']);
    expect(second.metadata?.resourceVersion).toBe(first.metadata?.resourceVersion);
    const last = await core.listNode({ limit: 2, _continue: second.metadata?._continue });
    expect(names(last.items)).toEqual(['n5']);
    expect(last.metadata?._continue).toBeUndefined();

    // A token whose version was compacted away (etcd keeps the compaction revision itself).
    api.create('nodes', node('n6'));
    api.compact();
    const expired = await core.listNode({ limit: 2, _continue: second.metadata?._continue }).catch((e: unknown) => e);
    expect((expired as ApiException<string>).code).toBe(410);
  });

  it('serves discovery, version and health', async () => {
    expect((await kc.makeApiClient(CoreApi).getAPIVersions()).versions).toEqual(['v1']);
    const groups = await kc.makeApiClient(ApisApi).getAPIVersions();
    expect(groups.groups.map((g) => g.name)).toEqual(['networking.k8s.io']);
    expect((await kc.makeApiClient(VersionApi).getCode()).major).toBe('1');
    const v1 = (await (await fetch(`${api.url}/api/v1`)).json()) as { resources: { name: string }[] };
    expect(v1.resources.map((r) => r.name)).toEqual(
      expect.arrayContaining(['nodes', 'nodes/status', 'pods', 'namespaces']),
    );
    expect(await (await fetch(`${api.url}/healthz`)).text()).toBe('ok');
    expect((await fetch(`${api.url}/api/v1/services`)).status).toBe(404);
  });

  it('requires the bearer token when it has one', async () => {
    await api.close();
    await startServer({ token: 's3cret' });
    const core = kc.makeApiClient(CoreV1Api);
    expect((await core.listNode()).items).toEqual([]);
    expect(api.requests.at(-1)?.status).toBe(200);

    const wrong = new KubeConfig();
    wrong.loadFromFile(api.writeKubeconfig(join(dir, 'wrong'), { token: 'nope' }));
    const denied = await wrong
      .makeApiClient(CoreV1Api)
      .listNode()
      .catch((e: unknown) => e);
    expect((denied as ApiException<unknown>).code).toBe(401);
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
  });
});

describe('connections accepted elsewhere', () => {
  it('serves a connection another listener accepted as its own, and closes it while stopped', async () => {
    const listener = createServer((socket) => api.accept(socket));
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => listener.close(() => resolve())));
    const port = (listener.address() as AddressInfo).port;
    api.create('nodes', node('n1'));
    const list = await fetch(`http://127.0.0.1:${port}/api/v1/nodes`);
    expect(list.status).toBe(200);
    expect(((await list.json()) as { items: KubeObject[] }).items.map((n) => n.metadata.name)).toEqual(['n1']);
    expect(api.requests.at(-1)?.path).toBe('/api/v1/nodes');

    await api.stop();
    const refused = await fetch(`http://127.0.0.1:${port}/healthz`).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Error);
  });
});

describe('RBAC from the manifest', () => {
  const agent = 'system:serviceaccount:kube-strand:strand';
  let agentKc: KubeConfig;

  beforeEach(async () => {
    await api.close();
    await startServer({ rbac: {} });
    agentKc = new KubeConfig();
    agentKc.loadFromFile(api.writeKubeconfig(join(dir, 'agent'), { token: api.agentToken }));
  });

  const status = async (res: Response) => ({ code: res.status, body: (await res.json()) as Record<string, unknown> });

  it("lets the DaemonSet's ServiceAccount do what its ClusterRole grants and refuses the rest with 403", async () => {
    api.create('nodes', node('n1'));
    const core = agentKc.makeApiClient(CoreV1Api);
    expect((await core.listNode()).items.map((n) => n.metadata?.name)).toEqual(['n1']);
    expect((await core.listPodForAllNamespaces()).items).toEqual([]);
    const read = await core.readNode({ name: 'n1' }).catch((e: unknown) => e);
    expect((read as ApiException<string>).code).toBe(403);
    const body = JSON.parse((read as ApiException<string>).body) as Record<string, unknown>;
    expect(body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `nodes "n1" is forbidden: User "${agent}" cannot get resource "nodes" in API group "" at the cluster scope`,
      reason: 'Forbidden',
      details: { name: 'n1', kind: 'nodes' },
      code: 403,
    });
    const created = await core.createNode({ body: { metadata: { name: 'n2' } } }).catch((e: unknown) => e);
    expect((created as ApiException<string>).code).toBe(403);
    expect(api.get('nodes', 'n2')).toBeUndefined();
    const nsPods = await core.deleteCollectionNamespacedPod({ namespace: 'default' }).catch((e: unknown) => e);
    expect(JSON.parse((nsPods as ApiException<string>).body).message).toBe(
      `pods is forbidden: User "${agent}" cannot deletecollection resource "pods" in API group "" in the namespace "default"`,
    );
    expect(api.requests.map((r) => [r.user, r.attributes.verb, r.status])).toEqual([
      [agent, 'list', 200],
      [agent, 'list', 200],
      [agent, 'get', 403],
      [agent, 'create', 403],
      [agent, 'deletecollection', 403],
    ]);
  });

  it('authorizes before routing: a resource the role lacks is 403 even where the server has no such resource', async () => {
    const services = await fetch(`${api.url}/api/v1/services`, {
      headers: { Authorization: `Bearer ${api.agentToken}` },
    });
    expect(await status(services)).toMatchObject({
      code: 403,
      body: { reason: 'Forbidden', details: { kind: 'services' } },
    });
    const asAdmin = await fetch(`${api.url}/api/v1/services`, {
      headers: { Authorization: `Bearer ${api.adminToken}` },
    });
    expect(asAdmin.status).toBe(404);
  });

  it("gives the admin token everything, for the test's own requests", async () => {
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNode({ body: { metadata: { name: 'n9' } } });
    expect((await core.readNode({ name: 'n9' })).metadata?.name).toBe('n9');
    await core.deleteNode({ name: 'n9' });
    expect(api.requests.every((r) => r.user === 'system:admin' && r.status < 300)).toBe(true);
  });

  it('answers 401 for no token or an unknown one, except the public health and version documents', async () => {
    expect(await status(await fetch(`${api.url}/api/v1/nodes`))).toEqual({
      code: 401,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'Unauthorized',
        reason: 'Unauthorized',
        code: 401,
      },
    });
    expect((await fetch(`${api.url}/api/v1/nodes`, { headers: { Authorization: 'Bearer nope' } })).status).toBe(401);
    expect((await fetch(`${api.url}/api`)).status).toBe(401);
    for (const path of ['/healthz', '/livez', '/readyz', '/version'])
      expect((await fetch(`${api.url}${path}`)).status, path).toBe(200);
    expect((await fetch(`${api.url}/healthz`, { headers: { Authorization: 'Bearer nope' } })).status).toBe(401);
    // Discovery is every authenticated user's (the bootstrap policy's system:discovery).
    for (const path of ['/api', '/api/v1', '/apis', '/apis/networking.k8s.io/v1']) {
      expect(
        (await fetch(`${api.url}${path}`, { headers: { Authorization: `Bearer ${api.agentToken}` } })).status,
        path,
      ).toBe(200);
    }
  });

  it('counts a watch on a list URL and on one name (fieldSelector metadata.name) as watch', async () => {
    api.create('nodes', node('n1'));
    const headers = { Authorization: `Bearer ${api.agentToken}` };
    const ac = new AbortController();
    const watch = await fetch(`${api.url}/api/v1/nodes?watch=true&fieldSelector=metadata.name%3Dn1`, {
      headers,
      signal: ac.signal,
    });
    expect(watch.status).toBe(200);
    ac.abort();
    expect(api.requests.at(-1)?.attributes).toMatchObject({ verb: 'watch', resource: 'nodes', name: 'n1' });
    const report = api.leastPrivilege();
    expect(report.requests).toEqual({ 'watch nodes': 1 });
    expect(report.used).toEqual(['watch nodes (ClusterRole strand, rule 1)']);
    expect(report.unused).toContain('list nodes (ClusterRole strand, rule 1)');
    expect(report.unused).toContain('patch nodes/status (ClusterRole strand, rule 2)');
  });
});

describe('patching nodes', () => {
  const strategic = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

  beforeEach(() => {
    api.create('nodes', {
      metadata: { name: 'n1', annotations: { keep: 'me' } },
      spec: { podCIDR: '10.244.1.0/24' },
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }],
        addresses: [
          { type: 'InternalIP', address: '198.18.0.1' },
          { type: 'Hostname', address: 'n1' },
        ],
      },
    });
  });

  it('merges status conditions and addresses by type under a strategic merge patch', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const body = {
      status: {
        conditions: [{ type: 'NetworkUnavailable', status: 'False', reason: 'StrandReady' }],
        addresses: [{ type: 'InternalIP', address: '198.18.0.9' }],
      },
    };
    const patched = await core.patchNodeStatus({ name: 'n1', body }, strategic);
    expect(patched.status?.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'True', 'KubeletReady'],
      ['NetworkUnavailable', 'False', 'StrandReady'],
    ]);
    expect(patched.status?.addresses).toEqual([
      { type: 'InternalIP', address: '198.18.0.9' },
      { type: 'Hostname', address: 'n1' },
    ]);
    expect(api.requests.at(-1)).toMatchObject({
      method: 'PATCH',
      path: '/api/v1/nodes/n1/status',
      contentType: PatchStrategy.StrategicMergePatch,
      status: 200,
    });

    // An element with the same type is merged field by field; $patch: delete removes one.
    const again = await core.patchNodeStatus(
      {
        name: 'n1',
        body: {
          status: {
            conditions: [
              { type: 'NetworkUnavailable', status: 'True' },
              { type: 'Ready', $patch: 'delete' },
            ],
          },
        },
      },
      strategic,
    );
    expect(again.status?.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['NetworkUnavailable', 'True', 'StrandReady'],
    ]);
  });

  it('replaces lists under a merge patch and keeps status off the main resource', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const replaced = await core.patchNodeStatus(
      { name: 'n1', body: { status: { conditions: [{ type: 'NetworkUnavailable', status: 'False' }] } } },
      merge,
    );
    expect(replaced.status?.conditions?.map((c) => c.type)).toEqual(['NetworkUnavailable']);

    // The main endpoint applies metadata and spec but ignores status, as the real node strategy does.
    const main = await core.patchNode(
      {
        name: 'n1',
        body: { metadata: { annotations: { 'strand.dev/vtep-mac': '02:00:00:00:00:01' } }, status: { conditions: [] } },
      },
      merge,
    );
    expect(main.metadata?.annotations).toEqual({ keep: 'me', 'strand.dev/vtep-mac': '02:00:00:00:00:01' });
    expect(main.status?.conditions?.map((c) => c.type)).toEqual(['NetworkUnavailable']);
    // And /status ignores spec changes.
    const status = await core.patchNodeStatus({ name: 'n1', body: { spec: { podCIDR: '10.9.9.0/24' } } }, merge);
    expect(status.spec?.podCIDR).toBe('10.244.1.0/24');
  });

  it('takes JSON patch, the generated client default content type', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const patched = await core.patchNode({
      name: 'n1',
      body: [{ op: 'add', path: '/metadata/labels', value: { zone: 'a' } }],
    });
    expect(api.requests.at(-1)?.contentType).toBe(PatchStrategy.JsonPatch);
    expect(patched.metadata?.labels).toEqual({ zone: 'a' });
    const failed = await core
      .patchNode({ name: 'n1', body: [{ op: 'test', path: '/metadata/labels/zone', value: 'b' }] })
      .catch((e: unknown) => e);
    expect((failed as ApiException<string>).code).toBe(422);
  });

  it('does not make a new version for a patch that changes nothing', async () => {
    const before = api.resourceVersion;
    const core = kc.makeApiClient(CoreV1Api);
    const same = await core.patchNode({ name: 'n1', body: { metadata: { annotations: { keep: 'me' } } } }, strategic);
    expect(same.metadata?.resourceVersion).toBe(before);
    expect(api.resourceVersion).toBe(before);
  });
});

describe('informers', () => {
  it('see objects added, modified and deleted', async () => {
    api.create('nodes', node('n1'));
    const informer = nodeInformer();
    const events = recordEvents(informer);
    await started(informer);
    expect(events).toEqual(['add n1']);
    await api.waitFor(() => api.openWatches('nodes') === 1, 5000, 'the node watch');
    expect(api.requests.at(-1)?.query).toMatchObject({ watch: 'true', resourceVersion: '1' });

    api.create('nodes', node('n2'));
    api.patch('nodes', 'n1', { metadata: { annotations: { 'strand.dev/underlay-ip': '198.18.0.1' } } });
    api.delete('nodes', 'n2');
    await api.waitFor(() => events.length === 4, 5000, 'four events');
    expect(events).toEqual(['add n1', 'add n2', 'update n1', 'delete n2']);
    expect(names(informer.list())).toEqual(['n1']);
    expect(informer.get('n1')?.metadata?.annotations).toEqual({ 'strand.dev/underlay-ip': '198.18.0.1' });
    // Watch events are not deserialized into models: timestamps stay strings, unlike list items.
    expect(typeof informer.get('n1')?.metadata?.creationTimestamp).toBe('string');
    expect(api.counters.lists).toBe(1);
  });

  it('apply label and field selectors to the watch, including objects moving in and out', async () => {
    api.create('pods', pod('a', 'mine', 'n1', { app: 'web' }));
    api.create('pods', pod('a', 'other-node', 'n2', { app: 'web' }));
    api.create('pods', pod('a', 'other-app', 'n1', { app: 'db' }));
    const informer = podInformer({ labelSelector: 'app=web', fieldSelector: 'spec.nodeName=n1' });
    const events = recordEvents(informer);
    await started(informer);
    expect(names(informer.list())).toEqual(['mine']);
    await api.waitFor(() => api.openWatches('pods') === 1);
    expect(api.requests.at(-1)?.query).toMatchObject({ labelSelector: 'app=web', fieldSelector: 'spec.nodeName=n1' });

    api.patch('pods', 'other-app', { metadata: { labels: { app: 'web' } } }, { namespace: 'a' }); // moves in: ADDED
    api.patch('pods', 'mine', { metadata: { labels: { app: 'gone' } } }, { namespace: 'a' }); // moves out: DELETED
    api.patch('pods', 'other-node', { metadata: { labels: { seen: 'no' } } }, { namespace: 'a' }); // never selected
    api.create('pods', pod('b', 'new', 'n1', { app: 'web' }));
    await api.waitFor(() => events.length === 4, 5000, 'four events');
    expect(events).toEqual(['add mine', 'add other-app', 'delete mine', 'add new']);
    expect(names(informer.list())).toEqual(['new', 'other-app']);
    expect(names(informer.list('b'))).toEqual(['new']);
  });

  it('cover namespaces and network policies in all namespaces', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const net = kc.makeApiClient(NetworkingV1Api);
    const namespaces = makeInformer<V1Namespace>(kc, '/api/v1/namespaces', () => core.listNamespace());
    const policies = makeInformer<V1NetworkPolicy>(kc, '/apis/networking.k8s.io/v1/networkpolicies', () =>
      net.listNetworkPolicyForAllNamespaces(),
    );
    const nsEvents = recordEvents(namespaces);
    const npEvents = recordEvents(policies);
    await started(namespaces);
    await started(policies);
    await api.waitFor(() => api.openWatches() === 2);
    api.create('namespaces', { metadata: { name: 'team-a', labels: { team: 'a' } } });
    api.create('networkpolicies', {
      metadata: { name: 'allow-dns', namespace: 'team-a' },
      spec: { podSelector: {}, policyTypes: ['Egress'] },
    });
    api.delete('namespaces', 'team-a');
    await api.waitFor(() => nsEvents.length === 2 && npEvents.length === 1);
    expect(nsEvents).toEqual(['add team-a', 'delete team-a']);
    expect(policies.get('allow-dns', 'team-a')?.spec?.policyTypes).toEqual(['Egress']);
  });

  it('resume from their last version, without relisting, after a watch ends cleanly', async () => {
    const informer = nodeInformer();
    const events = recordEvents(informer);
    await started(informer);
    await api.waitFor(() => api.openWatches() === 1);
    api.create('nodes', node('n1'));
    await api.waitFor(() => events.length === 1);
    const started1 = api.counters.watchesStarted;

    expect(api.dropWatches()).toBe(1);
    api.create('nodes', node('n2')); // made while no watch is open: replayed from history
    await api.waitFor(
      () => api.counters.watchesStarted === started1 + 1 && api.openWatches() === 1,
      5000,
      'the rewatch',
    );
    await api.waitFor(() => events.length === 2);
    expect(events).toEqual(['add n1', 'add n2']);
    expect(api.counters.lists).toBe(1);
    expect(api.requestsMatching({ verb: 'watch' }).at(-1)?.query.resourceVersion).toBe('1');
  });

  it('relist and converge after ERROR 410 Expired in an open watch', async () => {
    api.create('pods', pod('a', 'p1', 'n1'));
    const informer = podInformer();
    const events = recordEvents(informer);
    await started(informer);
    await api.waitFor(() => api.openWatches() === 1);

    expect(api.expireWatches()).toBe(1);
    await api.waitFor(() => api.counters.lists === 2 && api.openWatches() === 1, 5000, 'the relist');
    expect(api.counters.watchesExpired).toBe(1);
    // After the relist the watch starts from the list's version.
    expect(api.requestsMatching({ verb: 'watch' }).at(-1)?.query.resourceVersion).toBe(api.resourceVersion);
    api.create('pods', pod('a', 'p2', 'n1'));
    await api.waitFor(() => events.length === 2);
    expect(events).toEqual(['add p1', 'add p2']);
  });

  it('relist and converge when the version they resume from was compacted away', async () => {
    api.create('pods', pod('a', 'gone', 'n1'));
    api.create('pods', pod('a', 'kept', 'n1'));
    const informer = podInformer();
    const events = recordEvents(informer);
    await started(informer);
    await api.waitFor(() => api.openWatches() === 1);

    // Changes the informer cannot see, then compaction: resuming at its version gets 410.
    api.dropWatches();
    api.delete('pods', 'gone', 'a');
    api.create('pods', pod('a', 'new', 'n1'));
    api.compact();
    await api.waitFor(() => api.counters.lists === 2 && api.openWatches() === 1, 5000, 'the relist');
    expect(api.counters.watchesExpired).toBe(1);
    expect(names(informer.list())).toEqual(['kept', 'new']);
    expect(events).toEqual(['add gone', 'add kept', 'delete gone', 'add new']);
  });

  it('come back after an API server outage when restarted on error', async () => {
    api.create('nodes', node('n1'));
    const informer = nodeInformer();
    const events = recordEvents(informer);
    const errors: unknown[] = [];
    restartOnError(informer, errors);
    await started(informer);
    await api.waitFor(() => api.openWatches() === 1);
    const port = api.port;

    await api.stop();
    await api.waitFor(() => errors.length >= 1, 5000, 'the informer to report the cut watch');
    // Changes during the outage (the state is kept while the server is down).
    api.create('nodes', node('n2'));
    api.delete('nodes', 'n1');
    await new Promise((r) => setTimeout(r, 150)); // at least one restart attempt meets a refused connection
    await api.start();
    expect(api.port).toBe(port);

    await api.waitFor(
      () => api.openWatches() === 1 && names(informer.list()).join() === 'n2',
      5000,
      'the informer to converge',
    );
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(events).toEqual(['add n1', 'add n2', 'delete n1']);
    // It resumed from its last version: one list in all.
    expect(api.counters.lists).toBe(1);
  });

  it('report a failed list as an error and recover when restarted', async () => {
    api.create('nodes', node('n1'));
    api.failRequests({ verb: 'list', resource: 'nodes' }, 500, 2);
    const informer = nodeInformer();
    const errors: unknown[] = [];
    restartOnError(informer, errors, 20);
    await started(informer);
    await api.waitFor(() => informer.list().length === 1, 5000, 'the list to succeed');
    expect(errors).toHaveLength(2);
    expect((errors[0] as ApiException<unknown>).code).toBe(500);
    expect(api.counters.failuresInjected).toBe(2);
  });
});

describe('malformed objects', () => {
  it('reach informers through the list and the watch', async () => {
    api.create('pods', pod('default', 'good', 'n1'));
    api.injectMalformed('pods', { metadata: { name: 'listed-bad', namespace: 'default' }, spec: 'not-an-object' });
    const informer = podInformer();
    const events = recordEvents(informer);
    await started(informer);
    expect(events).toEqual(['add good', 'add listed-bad']);
    // The list is deserialized into models, which turns a string spec into an empty V1PodSpec.
    expect(informer.get('listed-bad', 'default')?.spec).toEqual({});
    await api.waitFor(() => api.openWatches() === 1);

    api.injectMalformed('pods', { metadata: { namespace: 'default', labels: { app: 'x' } }, spec: 42 });
    api.injectMalformed('pods', { metadata: { name: 'watched-bad', namespace: 'default' }, spec: ['a'] });
    await api.waitFor(() => events.length === 4, 5000, 'the malformed watch events');
    // A nameless object is cached under the name "" by client-node.
    expect(events).toEqual(['add good', 'add listed-bad', 'add undefined', 'add watched-bad']);
    // Watch events are the raw JSON: the malformed spec arrives as it is.
    expect(informer.get('watched-bad', 'default')?.spec).toEqual(['a']);
    expect(informer.get('', 'default')?.spec).toBe(42);
  });

  it('without metadata must be filtered before the ListWatch cache, which a Watch subclass can do', async () => {
    // ListWatch reads obj.metadata.namespace unguarded: an item without metadata makes start() reject
    // when listed, and is an unhandled rejection (fatal in Node by default) when watched. The list
    // function can drop such items; watch events can only be filtered in the Watch it is given.
    api.injectMalformed('pods', { kind: 'Pod', spec: {} }, { namespace: 'default' });
    const skipped: unknown[] = [];
    const hasMetadata = (o: unknown): boolean =>
      typeof o === 'object' && o !== null && typeof (o as KubernetesObject).metadata === 'object';
    class SkippingWatch extends Watch {
      override watch(...[path, query, callback, done]: Parameters<Watch['watch']>): ReturnType<Watch['watch']> {
        const skipping: typeof callback = (phase, obj: unknown, raw: unknown) => {
          if (phase === 'BOOKMARK' || phase === 'ERROR' || hasMetadata(obj)) callback(phase, obj, raw);
          else skipped.push(obj);
        };
        return super.watch(path, query, skipping, done);
      }
    }
    const core = kc.makeApiClient(CoreV1Api);
    const listFn = async () => {
      const list = await core.listPodForAllNamespaces();
      return { ...list, items: list.items.filter((p) => (hasMetadata(p) ? true : (skipped.push(p), false))) };
    };
    const informer = await started(new ListWatch<V1Pod>('/api/v1/pods', new SkippingWatch(kc), listFn, false));
    expect(skipped).toHaveLength(1);
    await api.waitFor(() => api.openWatches() === 1);
    api.injectMalformed('pods', 'a pod that is a string');
    api.create('pods', pod('default', 'fine', 'n1'));
    await api.waitFor(() => informer.list().length === 1);
    expect(skipped).toHaveLength(2);
    expect(skipped[0]).toMatchObject({ spec: {} }); // deserialized list item: no metadata, kind left out of lists
    expect(skipped[1]).toBe('a pod that is a string');
    expect(names(informer.list())).toEqual(['fine']);
  });

  it('reach a raw watch, next to garbage lines it skips', async () => {
    const seen: { type: string; object: unknown }[] = [];
    let ended = false;
    const controller = await new Watch(kc).watch(
      '/api/v1/namespaces/default/pods',
      { resourceVersion: api.resourceVersion },
      (type, object) => seen.push({ type, object }),
      () => (ended = true),
    );
    cleanups.push(() => controller.abort());
    await api.waitFor(() => api.openWatches() === 1);
    const handle = api.injectMalformed('pods', { kind: 'Pod', spec: {} }, { namespace: 'default' });
    expect(api.sendRawWatchLine('pods', '{not json')).toBe(1);
    api.removeMalformed(handle);
    api.create('pods', pod('default', 'after', 'n1'));
    await api.waitFor(() => seen.length === 3, 5000, 'three events');
    expect(seen.map((e) => e.type)).toEqual(['ADDED', 'DELETED', 'ADDED']);
    expect(seen[0]?.object).toEqual({ kind: 'Pod', spec: {} });
    expect((seen[2]?.object as KubeObject).metadata.name).toBe('after');
    expect(ended).toBe(false);
  });
});

describe('raw watch protocol', () => {
  it('sends bookmarks when asked and ends at timeoutSeconds', async () => {
    await api.close();
    await startServer({ bookmarkIntervalMs: 50 });
    api.create('nodes', node('n1'));
    const seen: { type: string; rv: string | undefined }[] = [];
    let done: unknown = 'not yet';
    const begun = Date.now();
    await new Watch(kc).watch(
      '/api/v1/nodes',
      { allowWatchBookmarks: true, timeoutSeconds: 1 },
      (type, object: KubeObject) => seen.push({ type, rv: object.metadata.resourceVersion }),
      (err) => (done = err),
    );
    await api.waitFor(() => done !== 'not yet', 5000, 'the watch to time out');
    expect(done).toBeNull();
    expect(Date.now() - begun).toBeGreaterThanOrEqual(900);
    // No resourceVersion: the current state as ADDED first, then bookmarks at the latest version.
    expect(seen[0]).toEqual({ type: 'ADDED', rv: '1' });
    const bookmarks = seen.filter((e) => e.type === 'BOOKMARK');
    expect(bookmarks.length).toBeGreaterThanOrEqual(5);
    expect(bookmarks.every((b) => b.rv === '1')).toBe(true);
    expect(api.openWatches()).toBe(0);
  });

  it('answers a compacted resourceVersion with ERROR 410 and ends the stream', async () => {
    api.create('nodes', node('n1'));
    api.create('nodes', node('n2'));
    api.compact();
    const seen: { type: string; object: unknown }[] = [];
    let done: unknown = 'not yet';
    await new Watch(kc).watch(
      '/api/v1/nodes',
      { resourceVersion: '1' },
      (type, object) => seen.push({ type, object }),
      (err) => (done = err),
    );
    await api.waitFor(() => done !== 'not yet');
    expect(seen).toEqual([
      {
        type: 'ERROR',
        object: expect.objectContaining({ kind: 'Status', status: 'Failure', code: 410, reason: 'Expired' }),
      },
    ]);
    // From the current version it is fine.
    const ok = await fetch(
      `${api.url}/api/v1/nodes?watch=true&resourceVersion=${api.resourceVersion}&timeoutSeconds=1`,
    );
    expect(ok.status).toBe(200);
    await ok.body?.cancel();
  });
});

describe('write rules', () => {
  it('keeps identity fields, bumps generation on spec changes and checks delete preconditions', async () => {
    const created = api.create('pods', pod('default', 'p', 'n1'));
    expect(created.metadata.generation).toBe(1);
    const relabelled = api.patch('pods', 'p', { metadata: { labels: { a: 'b' }, uid: 'forged' } }, { type: 'merge' });
    expect(relabelled.metadata.uid).toBe(created.metadata.uid);
    expect(relabelled.metadata.generation).toBe(1);
    const respec = api.patch('pods', 'p', { spec: { containers: [{ name: 'c', image: 'pause:2' }] } });
    expect(respec.metadata.generation).toBe(2);
    expect((respec.spec as { containers: unknown[] }).containers).toEqual([{ name: 'c', image: 'pause:2' }]);

    expect(() => api.update('pods', { ...created })).toThrow(/the object has been modified/);
    const upserted = api.upsert('pods', {
      ...pod('default', 'p', 'n1'),
      status: { phase: 'Running', podIP: '10.244.1.5' },
    });
    expect(upserted.status).toEqual({ phase: 'Running', podIP: '10.244.1.5' });

    const wrongUid = await fetch(`${api.url}/api/v1/namespaces/default/pods/p`, {
      method: 'DELETE',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ preconditions: { uid: 'other' } }),
    });
    expect(wrongUid.status).toBe(409);
    expect(api.get('pods', 'p')).toBeDefined();
    expect(api.delete('pods', 'p')?.metadata.resourceVersion).toBe(api.resourceVersion);
    expect(api.delete('pods', 'p')).toBeUndefined();
  });

  it('replaces only status through PUT /status and refuses what it cannot serve', async () => {
    const created = api.create('nodes', node('n1', { status: { capacity: { pods: '110' } } }));
    const put = (path: string, body: unknown, method = 'PUT') =>
      fetch(`${api.url}${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const res = await put('/api/v1/nodes/n1/status', {
      ...created,
      spec: { podCIDR: '10.0.0.0/8' },
      status: { capacity: { pods: '10' } },
    });
    expect(res.status).toBe(200);
    const after = api.get('nodes', 'n1');
    expect(after?.spec).toEqual({ podCIDR: '10.244.1.0/24' });
    expect(after?.status).toEqual({ capacity: { pods: '10' } });

    expect((await put('/api/v1/pods', pod('default', 'x', 'n1'), 'POST')).status).toBe(405);
    expect((await put('/api/v1/nodes/n1', { metadata: { name: 'other' } })).status).toBe(400);
    expect((await put('/api/v1/nodes/n1', {}, 'PATCH')).status).toBe(415);
    expect((await fetch(`${api.url}/api/v1/pods?labelSelector=${encodeURIComponent('a in b')}`)).status).toBe(400);
    expect((await fetch(`${api.url}/apis/networking.k8s.io/v1/nodes`)).status).toBe(404);
    expect(api.requests.slice(-5).map((r) => r.status)).toEqual([405, 400, 415, 400, 404]);
  });

  it('applies strategic merge directives for primitive sets and whole-list replacement', () => {
    api.create(
      'nodes',
      node('n1', {
        metadata: { name: 'n1', finalizers: ['a', 'b'] },
        spec: { podCIDRs: ['10.1.0.0/24'], taints: [{ key: 'k', effect: 'NoSchedule' }] },
      }),
    );
    const patched = api.patch('nodes', 'n1', {
      metadata: { finalizers: ['c'], '$deleteFromPrimitiveList/finalizers': ['a'] },
      spec: { podCIDRs: ['fd00::/64'], taints: [{ $patch: 'replace' }, { key: 'x', effect: 'NoExecute' }] },
    });
    expect(patched.metadata.finalizers).toEqual(['b', 'c']);
    expect(patched.spec).toEqual({
      podCIDRs: ['10.1.0.0/24', 'fd00::/64'],
      taints: [{ key: 'x', effect: 'NoExecute' }],
    });
    const moved = api.patch(
      'nodes',
      'n1',
      [
        { op: 'move', from: '/spec/podCIDRs/1', path: '/spec/podCIDRs/0' },
        { op: 'remove', path: '/spec/taints' },
      ],
      { type: 'json' },
    );
    expect(moved.spec).toEqual({ podCIDRs: ['fd00::/64', '10.1.0.0/24'] });
  });
});

/**
 * The wire format read here on its own (not with the kit's encoder or the agent's decoder): a
 * message's fields as [number, varint or bytes], in order.
 */
function protoFields(buf: Uint8Array): [number, number | Buffer][] {
  const fields: [number, number | Buffer][] = [];
  let at = 0;
  const varint = () => {
    let n = 0;
    for (let shift = 1; ; shift *= 128) {
      const b = buf[at++] as number;
      n += (b & 0x7f) * shift;
      if (b < 0x80) return n;
    }
  };
  while (at < buf.length) {
    const key = varint();
    if ((key & 7) === 0) fields.push([key >>> 3, varint()]);
    else {
      expect(key & 7).toBe(2);
      const len = varint();
      fields.push([key >>> 3, Buffer.from(buf.subarray(at, at + len))]);
      at += len;
    }
  }
  return fields;
}

/** The first field `no` of a message: its bytes or its varint. */
function field(buf: Uint8Array, no: number): number | Buffer | undefined {
  return protoFields(buf).find(([n]) => n === no)?.[1];
}
const bytesOf = (v: number | Buffer | undefined) => (v instanceof Buffer ? v : Buffer.alloc(0));
const textOf = (v: number | Buffer | undefined) => bytesOf(v).toString('utf8');

/** A protobuf answer's envelope: the Unknown's kind and apiVersion, and the object (raw). */
function unwrap(body: Buffer): { kind: string; apiVersion: string; raw: Buffer; rest: [number, number | Buffer][] } {
  expect([...body.subarray(0, 4)]).toEqual([0x6b, 0x38, 0x73, 0x00]);
  const unknown = protoFields(body.subarray(4));
  const typeMeta = bytesOf(unknown.find(([n]) => n === 1)?.[1]);
  return {
    apiVersion: textOf(field(typeMeta, 1)),
    kind: textOf(field(typeMeta, 2)),
    raw: bytesOf(unknown.find(([n]) => n === 2)?.[1]),
    rest: unknown.filter(([n]) => n > 2),
  };
}

const PROTOBUF_ACCEPT = 'application/vnd.kubernetes.protobuf, application/json';

describe('lists in Kubernetes protobuf', () => {
  async function get(path: string, accept?: string): Promise<{ status: number; type: string | null; body: Buffer }> {
    const res = await fetch(`${api.url}${path}`, accept === undefined ? {} : { headers: { Accept: accept } });
    return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
  }

  it('pages a pod list in protobuf: the Content-Type, the magic, the continue token and the items', async () => {
    for (const ns of ['a', 'b']) for (const n of [1, 2, 3]) api.create('pods', pod(ns, `p${n}`, 'n1', { app: 'web' }));
    const rv = api.resourceVersion;
    const seen: string[] = [];
    const remaining: (number | undefined)[] = [];
    let cont = '';
    do {
      const page = await get(
        `/api/v1/pods?limit=4${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`,
        PROTOBUF_ACCEPT,
      );
      expect(page.status).toBe(200);
      expect(page.type).toBe('application/vnd.kubernetes.protobuf');
      const { kind, apiVersion, raw, rest } = unwrap(page.body);
      expect([kind, apiVersion]).toEqual(['PodList', 'v1']);
      // contentEncoding and contentType: written, empty.
      expect(rest).toEqual([
        [3, Buffer.alloc(0)],
        [4, Buffer.alloc(0)],
      ]);
      const list = protoFields(raw);
      expect(list[0]?.[0]).toBe(1); // ListMeta first, then the items
      const listMeta = bytesOf(list[0]?.[1]);
      expect(textOf(field(listMeta, 2))).toBe(rv);
      cont = textOf(field(listMeta, 3));
      remaining.push(field(listMeta, 4) as number | undefined);
      for (const [no, item] of list.slice(1)) {
        expect(no).toBe(2);
        // Pod {metadata 1 {name 1, namespace 3, …}, spec 2, status 3}: no kind or apiVersion in an item.
        const pod = protoFields(bytesOf(item));
        expect(pod.map(([n]) => n)).toEqual([1, 2, 3]);
        const meta = bytesOf(pod[0]?.[1]);
        seen.push(`${textOf(field(meta, 3))}/${textOf(field(meta, 1))}`);
        // A label as a map entry {key 1, value 2}.
        const labels = protoFields(meta).filter(([n]) => n === 11);
        expect(labels.map(([, e]) => [textOf(field(bytesOf(e), 1)), textOf(field(bytesOf(e), 2))])).toEqual([
          ['app', 'web'],
        ]);
        // spec.nodeName 10 as set; status.phase 1 written although the JSON has no status: "".
        expect(textOf(field(bytesOf(pod[1]?.[1]), 10))).toBe('n1');
        expect(field(bytesOf(pod[2]?.[1]), 1)).toEqual(Buffer.alloc(0));
      }
    } while (cont !== '');
    expect(seen).toEqual(['a/p1', 'a/p2', 'a/p3', 'b/p1', 'b/p2', 'b/p3']);
    expect(remaining).toEqual([2, undefined]);
    const lists = api.requestsMatching({ verb: 'list', resource: 'pods' });
    expect(lists.map((r) => [r.format, r.status])).toEqual([
      ['protobuf', 200],
      ['protobuf', 200],
    ]);
    expect(api.counters.protobufLists).toBe(2);
  });

  it('answers in JSON without the protobuf Accept header, or when JSON comes first', async () => {
    api.create('nodes', node('n1'));
    api.create('namespaces', { metadata: { name: 'team-a' } });
    for (const accept of [undefined, 'application/json', `application/json, application/vnd.kubernetes.protobuf`]) {
      const res = await get('/api/v1/nodes', accept);
      expect(res.type, String(accept)).toBe('application/json');
      expect(JSON.parse(res.body.toString()).items[0].metadata.name).toBe('n1');
    }
    // The same server answers protobuf to whoever asks for it, nodes and namespaces as pods.
    for (const [path, kind] of [
      ['/api/v1/nodes', 'NodeList'],
      ['/api/v1/namespaces', 'NamespaceList'],
    ] as const) {
      const res = await get(path, PROTOBUF_ACCEPT);
      expect(res.type).toBe('application/vnd.kubernetes.protobuf');
      expect(unwrap(res.body).kind).toBe(kind);
    }
    expect(api.requestsMatching({ verb: 'list' }).map((r) => r.format)).toEqual([
      'json',
      'json',
      'json',
      'protobuf',
      'protobuf',
    ]);
    expect(api.counters.protobufLists).toBe(2);
  });

  it('answers an expired continue token with a protobuf Status 410', async () => {
    for (const n of [1, 2, 3]) api.create('nodes', node(`n${n}`));
    const first = await get('/api/v1/nodes?limit=1', PROTOBUF_ACCEPT);
    const cont = textOf(field(bytesOf(field(unwrap(first.body).raw, 1)), 3));
    expect(cont).not.toBe('');
    api.create('nodes', node('n4'));
    api.compact();
    const expired = await get(`/api/v1/nodes?limit=1&continue=${encodeURIComponent(cont)}`, PROTOBUF_ACCEPT);
    expect(expired.status).toBe(410);
    expect(expired.type).toBe('application/vnd.kubernetes.protobuf');
    const { kind, apiVersion, raw } = unwrap(expired.body);
    expect([kind, apiVersion]).toEqual(['Status', 'v1']);
    // Status {metadata 1, status 2, message 3, reason 4, code 6}.
    const status = protoFields(raw);
    expect(status.map(([n]) => n)).toEqual([1, 2, 3, 4, 6]);
    expect(textOf(field(raw, 2))).toBe('Failure');
    expect(textOf(field(raw, 3))).toMatch(/continue parameter is too old/);
    expect(textOf(field(raw, 4))).toBe('Expired');
    expect(field(raw, 6)).toBe(410);
    // Asked for in JSON, the same error is JSON.
    const json = await get(`/api/v1/nodes?limit=1&continue=${encodeURIComponent(cont)}`);
    expect(json.status).toBe(410);
    expect(JSON.parse(json.body.toString())).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
  });

  it('answers NetworkPolicies, watches and gets in JSON whatever the Accept header says', async () => {
    api.create('networkpolicies', {
      metadata: { name: 'deny', namespace: 'team-a' },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    });
    api.create('nodes', node('n1'));
    const policies = await get('/apis/networking.k8s.io/v1/networkpolicies', PROTOBUF_ACCEPT);
    expect(policies.status).toBe(200);
    expect(policies.type).toBe('application/json');
    expect(JSON.parse(policies.body.toString())).toMatchObject({
      kind: 'NetworkPolicyList',
      items: [{ metadata: { name: 'deny' } }],
    });
    const one = await get('/api/v1/nodes/n1', PROTOBUF_ACCEPT);
    expect(one.type).toBe('application/json');
    const watch = await get(
      `/api/v1/nodes?watch=true&resourceVersion=${api.resourceVersion}&timeoutSeconds=1`,
      PROTOBUF_ACCEPT,
    );
    expect(watch.type).toBe('application/json');
    expect(api.requestsMatching({ resource: 'networkpolicies' })[0]?.format).toBe('json');
    expect(api.counters.protobufLists).toBe(0);
  });

  it('answers in JSON a list with an object the encoder cannot write, and says why', async () => {
    api.create('pods', pod('default', 'plain', 'n1'));
    const res0 = await get('/api/v1/pods', PROTOBUF_ACCEPT);
    expect(res0.type).toBe('application/vnd.kubernetes.protobuf');
    api.create('pods', {
      metadata: { name: 'odd', namespace: 'default' },
      spec: { containers: [{ name: 'c', image: 'pause' }], affinity: {} },
    });
    const res = await get('/api/v1/pods', PROTOBUF_ACCEPT);
    expect(res.type).toBe('application/json');
    expect(JSON.parse(res.body.toString()).items).toHaveLength(2);
    const last = api.requestsMatching({ verb: 'list' }).at(-1);
    expect(last?.format).toBe('json');
    expect(last?.protobufError).toMatch(/^pod\.spec\.affinity: not in the protobuf schema of PodSpec/);
    // Another page without it is protobuf again: nothing of the failure is remembered.
    const page = await get('/api/v1/pods?limit=1&fieldSelector=metadata.name%3Dplain', PROTOBUF_ACCEPT);
    expect(page.type).toBe('application/vnd.kubernetes.protobuf');
  });
});
