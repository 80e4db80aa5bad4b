// The start-up path of the informers (issue 18): an answer's body read into one buffer (bodyText), a
// pod's bad addresses found as it is slimmed (malformedPodIps), and the first list taken into the
// cache page by page, handed to ListWatch whole: the cache, its subsets and the change hook end as
// they did when ListWatch took the list itself, and a list that fails half-way leaves nothing behind.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type Answer,
  ApiRequestError,
  bodyBytes,
  bodyText,
  KubeClient,
  loadKubeConfig,
  releaseBody,
  RequestSession,
  type RequestOptions,
} from '../../src/k8s/client.ts';
import { LIST_PAGE_SIZE, RESOURCE_SPECS, ResourceInformer, type ResourceName } from '../../src/k8s/informer.ts';
import { anyMalformedPodIps, malformedPodIps, slimPod, type PodInfo } from '../../src/k8s/objects.ts';
import { silentLogger } from '../../src/log.ts';
import { TestApiServer } from '../kit/k8s-api-server.ts';

async function* chunks(...parts: Buffer[]): AsyncIterable<Buffer> {
  for (const p of parts) yield p;
}

describe('bodyText', () => {
  const text = '{"items":[{"a":"ü"}],"kind":"List"}';
  const bytes = Buffer.from(text);

  it('reads chunks into the announced length, UTF-8 or ASCII', async () => {
    expect(await bodyText(chunks(bytes.subarray(0, 5), bytes.subarray(5)), String(bytes.length))).toBe(text);
    const ascii = '{"kind":"List","items":[]}';
    const read = await bodyText(chunks(Buffer.from(ascii)), String(ascii.length));
    expect(read).toBe(ascii);
    expect(JSON.parse(read)).toEqual({ kind: 'List', items: [] });
  });

  it('reads a body longer or shorter than announced, or with no length, whole', async () => {
    expect(await bodyText(chunks(bytes.subarray(0, 7), bytes.subarray(7)), '6')).toBe(text);
    expect(await bodyText(chunks(bytes.subarray(0, 7), bytes.subarray(7)), String(bytes.length + 10))).toBe(text);
    expect(await bodyText(chunks(bytes.subarray(0, 3), bytes.subarray(3)), undefined)).toBe(text);
    expect(await bodyText(chunks(), '0')).toBe('');
    expect(await bodyText(chunks(), undefined)).toBe('');
  });
});

describe('bodyBytes', () => {
  it('reads the body whole, however announced', async () => {
    const b = Buffer.from('k8s\u0000 some bytes');
    expect(await bodyBytes(chunks(b.subarray(0, 4), b.subarray(4)), String(b.length))).toEqual(b);
    expect(await bodyBytes(chunks(b.subarray(0, 4), b.subarray(4)), '3')).toEqual(b);
    expect(await bodyBytes(chunks(b.subarray(0, 4), b.subarray(4)), undefined)).toEqual(b);
    expect(await bodyBytes(chunks(b), String(b.length + 100))).toEqual(b);
  });

  it("takes the pages of a list, of slightly different sizes, into the same few buffers, never a socket's chunk", async () => {
    const memories = new Set<ArrayBufferLike>();
    // Three pages in flight at a time (the one read, the one asked for ahead, the one being read).
    const held: Buffer[] = [];
    for (let page = 0; page < 60; page++) {
      const size = 600_000 + ((page * 7919) % 5000);
      const body = Buffer.alloc(size, page);
      const read = await bodyBytes(chunks(body.subarray(0, 1000), body.subarray(1000)), String(size));
      expect(read.length).toBe(size);
      expect(read[size - 1]).toBe(page & 255);
      memories.add(read.buffer);
      held.push(read);
      if (held.length === 2) releaseBody(held.shift() as Buffer);
    }
    expect(memories.size).toBeLessThanOrEqual(3);
    // A chunk that is not bodyBytes' own memory is never taken into the pool.
    const foreign = Buffer.alloc(700_000);
    releaseBody(foreign);
    const next = await bodyBytes(chunks(Buffer.alloc(650_000)), '650000');
    expect(next.buffer).not.toBe(foreign.buffer);
  });
});

describe('the body pool', () => {
  it('is emptied once no list is under way: its buffers do not outlive the lists', async () => {
    const session = new RequestSession();
    const page = () => bodyBytes(chunks(Buffer.alloc(300_000, 1)), '300000');
    const first = await page();
    releaseBody(first);
    const again = await page();
    // Taken back from the pool while the list is under way.
    expect(again.buffer).toBe(first.buffer);
    releaseBody(again);
    session.close();
    session.close();
    const after = await page();
    expect(after.buffer).not.toBe(first.buffer);
  });
});

describe('malformedPodIps', () => {
  const raw = (ips: string[]) => ({
    metadata: { name: 'p', namespace: 'n' },
    spec: { containers: [] },
    status: { podIPs: ips.map((ip) => ({ ip })) },
  });
  const slim = (r: unknown) => {
    const s = slimPod(r);
    if (!s.ok) throw new Error(s.reason);
    return s.value;
  };

  it("names a slim pod's addresses that are not IP addresses, for the pod and a copy sharing its status", () => {
    const good = slim(raw(['10.244.1.5', 'fd00::5']));
    expect(malformedPodIps(good)).toBeUndefined();
    const bad = slim(raw(['10.244.1.256', '10.244.1.6', 'x']));
    expect(malformedPodIps(bad)).toEqual(['10.244.1.256', 'x']);
    expect(malformedPodIps({ ...bad, spec: { ...bad.spec, nodeName: 'n1' } })).toEqual(['10.244.1.256', 'x']);
    expect(anyMalformedPodIps()).toBe(true);
  });
});

let api: TestApiServer;
let dir: string;
let informer: ResourceInformer<PodInfo> | undefined;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strand-k8s-first-list-'));
  api = await TestApiServer.start({ bookmarkIntervalMs: 200 });
});

afterEach(async () => {
  await informer?.stop();
  informer = undefined;
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

const pod = (i: number) => ({
  metadata: { name: `p${i}`, namespace: `ns${i % 7}`, labels: { app: 'a' } },
  spec: { nodeName: i % 3 === 0 ? 'n1' : 'n2', containers: [] },
  status: { phase: 'Running', podIPs: [{ ip: `10.244.${i >> 8}.${i & 255}` }] },
});

/** A client that runs `before` once, as it asks for a list's second page; with `fails`, that request then fails. */
class BeforeSecondPage extends KubeClient {
  before: (() => void) | undefined;
  fails = false;
  override async requestAnswer(method: 'GET' | 'PATCH', path: string, opts: RequestOptions = {}): Promise<Answer> {
    const before = this.before;
    if (before !== undefined && opts.query?.continue !== undefined) {
      this.before = undefined;
      before();
      if (this.fails) throw new ApiRequestError(500, `${method} ${path}: 500 injected`);
    }
    return super.requestAnswer(method, path, opts);
  }
}

describe("an informer's first list, taken page by page", () => {
  it('fills the cache and the subsets, fires no change for the listed objects, then watches', async () => {
    const n = 2 * LIST_PAGE_SIZE + 57;
    for (let i = 0; i < n; i++) api.create('pods', pod(i));
    const kube = new KubeClient(loadKubeConfig(api.writeKubeconfig(join(dir, 'kubeconfig'))));
    const changes: ResourceName[] = [];
    const synced: ResourceName[] = [];
    informer = new ResourceInformer<PodInfo>(kube, RESOURCE_SPECS.pods, {
      log: silentLogger,
      onChange: (r) => changes.push(r),
      onSynced: (r) => synced.push(r),
    });
    const local = informer.subset((p) => p.spec.nodeName === 'n1');
    // The pinned client-node's ListWatch lets the list be taken page by page: an upgrade that takes
    // that away fails here rather than as a slower start.
    expect(informer.takesFirstListByPages).toBe(true);
    informer.start();
    const inf = informer;
    await api.waitFor(() => inf.synced, 10_000, 'sync');
    expect(synced).toEqual(['pods']);
    const pages = api.requestsMatching({ verb: 'list', resource: 'pods' });
    expect(pages.length).toBe(3);
    // In protobuf, which the test API server speaks as kube-apiserver does (the fallback to JSON: below).
    expect(pages.map((r) => r.format)).toEqual(['protobuf', 'protobuf', 'protobuf']);
    expect(inf.listFormat).toBe('protobuf');
    // One connection (pool) for the list's pages: not a connection, a TLS handshake on a real
    // cluster, for each page.
    expect(new Set(pages.map((r) => r.connection)).size).toBeLessThanOrEqual(2);
    expect(inf.list().length).toBe(n);
    expect(inf.get('p5', 'ns5')?.status.podIPs).toEqual([{ ip: '10.244.0.5' }]);
    expect(inf.list('ns3').length).toBe(Math.floor((n - 3) / 7) + 1);
    expect(local.size).toBe(Math.ceil(n / 3));
    expect(changes).toEqual([]);
    expect(inf.resourceVersion).toBe(String(n));

    // The watch goes on from the list's version: an add is a change, and reaches the subset.
    api.create('pods', pod(3 * n));
    await api.waitFor(() => inf.get(`p${3 * n}`, `ns${(3 * n) % 7}`) !== undefined, 5_000, 'the add');
    expect(changes).toEqual(['pods']);
    expect(local.size).toBe(Math.ceil(n / 3) + 1);
  }, 30_000);

  it('lists in JSON from a server that does not speak protobuf, into the same objects', async () => {
    const n = LIST_PAGE_SIZE + 30;
    const objects = async (server: TestApiServer): Promise<PodInfo[]> => {
      for (let i = 0; i < n; i++) server.create('pods', pod(i));
      const kube = new KubeClient(loadKubeConfig(server.writeKubeconfig(join(dir, 'kubeconfig'))));
      const inf = new ResourceInformer<PodInfo>(kube, RESOURCE_SPECS.pods, { log: silentLogger });
      informer = inf;
      inf.start();
      await server.waitFor(() => inf.synced, 10_000, 'sync');
      const list = [...inf.list()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
      await inf.stop();
      informer = undefined;
      return list;
    };
    const fromProtobuf = await objects(api);
    const jsonOnly = await TestApiServer.start({ protobuf: false });
    try {
      const fromJson = await objects(jsonOnly);
      expect(jsonOnly.requestsMatching({ verb: 'list', resource: 'pods' }).map((r) => r.format)).toEqual([
        'json',
        'json',
      ]);
      expect(fromJson.length).toBe(n);
      // Equal but for the server's uids, versions and the labels' order (protobuf's maps are sorted).
      const comparable = (p: PodInfo) => ({
        ...p,
        metadata: { ...p.metadata, uid: undefined, resourceVersion: undefined },
      });
      expect(fromProtobuf.map(comparable)).toEqual(fromJson.map(comparable));
    } finally {
      await jsonOnly.close();
    }
  }, 30_000);

  it('lists again from the start when a protobuf page says its continue token expired (410)', async () => {
    const n = LIST_PAGE_SIZE + 10;
    for (let i = 0; i < n; i++) api.create('pods', pod(i));
    const kube = new BeforeSecondPage(loadKubeConfig(api.writeKubeconfig(join(dir, 'kubeconfig'))));
    // Between the first page and the second, a pod comes and the history goes (etcd compacted).
    kube.before = () => {
      api.create('pods', pod(n));
      api.compact();
    };
    const inf = new ResourceInformer<PodInfo>(kube, RESOURCE_SPECS.pods, { log: silentLogger });
    informer = inf;
    inf.start();
    await api.waitFor(() => inf.synced, 10_000, 'sync');
    const pages = api.requestsMatching({ verb: 'list', resource: 'pods' });
    expect(pages.map((r) => r.status)).toEqual([200, 410, 200, 200]);
    expect(pages.filter((r) => r.status === 200).map((r) => r.format)).toEqual(['protobuf', 'protobuf', 'protobuf']);
    // The 410 came as a protobuf Status, whose message the client reads.
    const expired = pages[1]?.query.continue as string;
    await expect(
      kube.requestAnswer('GET', '/api/v1/pods', {
        query: { limit: '500', continue: expired },
        accept: 'application/vnd.kubernetes.protobuf, application/json',
      }),
    ).rejects.toMatchObject({ statusCode: 410, message: expect.stringContaining('continue parameter is too old') });
    expect(inf.list().length).toBe(n + 1);
  }, 30_000);

  it('leaves nothing of a list that failed half-way: the next list alone is cached', async () => {
    const n = LIST_PAGE_SIZE + 20;
    for (let i = 0; i < n; i++) api.create('pods', pod(i));
    const kube = new BeforeSecondPage(loadKubeConfig(api.writeKubeconfig(join(dir, 'kubeconfig'))));
    kube.fails = true;
    // Between the first page and the failure, a pod of the first page goes away.
    kube.before = () => api.delete('pods', 'p0', 'ns0');
    informer = new ResourceInformer<PodInfo>(
      kube,
      RESOURCE_SPECS.pods,
      { log: silentLogger },
      { initialMs: 20, maxMs: 50 },
    );
    const local = informer.subset((p) => p.spec.nodeName === 'n1');
    informer.start();
    const inf = informer;
    await api.waitFor(() => inf.synced, 10_000, 'sync');
    expect(kube.before).toBeUndefined();
    expect(inf.get('p0', 'ns0')).toBeUndefined();
    expect(inf.list().length).toBe(n - 1);
    expect(local.list().some((p) => p.metadata.name === 'p0')).toBe(false);
    expect(local.size).toBe(Math.ceil(n / 3) - 1);
  }, 30_000);
});
