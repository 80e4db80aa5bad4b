// Informer updates that change nothing the agent keeps (issue 18): kubelet's status updates and
// heartbeats bump the resourceVersion and change only fields the slim object drops. The informer keeps
// the cached object (the same object: the policy compiler reuses by identity), records the new version
// to resume from, and fires no change; an update of a kept field still fires one, with the new object.
// The same holds for a relist after 410 Gone.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeClient, loadKubeConfig } from '../../src/k8s/client.ts';
import { ClusterCache } from '../../src/k8s/cluster-cache.ts';
import type { ResourceName } from '../../src/k8s/informer.ts';
import { sameSlim, slimPod, type PodInfo } from '../../src/k8s/objects.ts';
import { silentLogger } from '../../src/log.ts';
import { TestApiServer } from '../kit/k8s-api-server.ts';

let api: TestApiServer;
let dir: string;
let cache: ClusterCache | undefined;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strand-k8s-unchanged-'));
  api = await TestApiServer.start({ bookmarkIntervalMs: 200 });
});

afterEach(async () => {
  await cache?.stop();
  cache = undefined;
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

const pod = (conditions: string, labels: Record<string, string> = { app: 'a' }) => ({
  metadata: { name: 'p1', namespace: 'default', labels },
  spec: { nodeName: 'n1', containers: [{ name: 'c', ports: [{ containerPort: 80 }] }] },
  status: { phase: 'Running', podIPs: [{ ip: '10.244.1.5' }], conditions: [{ type: 'Ready', status: conditions }] },
});

function slim(raw: unknown): PodInfo {
  const s = slimPod(raw);
  if (!s.ok) throw new Error(s.reason);
  return s.value;
}

describe('sameSlim', () => {
  it('ignores the resourceVersion and nothing else', () => {
    const a = slim({ ...pod('True'), metadata: { ...pod('True').metadata, resourceVersion: '1' } });
    const b = slim({ ...pod('False'), metadata: { ...pod('False').metadata, resourceVersion: '2' } });
    expect(sameSlim(a, b)).toBe(true);
    expect(sameSlim(a, slim(pod('True', { app: 'b' })))).toBe(false);
    expect(sameSlim(a, slim({ ...pod('True'), status: { podIPs: [{ ip: '10.244.1.6' }] } }))).toBe(false);
    expect(sameSlim(a, slim({ ...pod('True'), spec: { containers: [] } }))).toBe(false);
  });
});

describe('an informer update that changes nothing kept', () => {
  it('keeps the cached object, records the version and fires no change; a kept field still fires', async () => {
    const kube = new KubeClient(loadKubeConfig(api.writeKubeconfig(join(dir, 'kubeconfig'))));
    const changes: ResourceName[] = [];
    api.create('pods', pod('False'));
    cache = new ClusterCache(kube, { log: silentLogger, onChange: (r) => changes.push(r) });
    cache.start();
    const c = cache;
    await api.waitFor(() => c.synced, 5_000, 'sync');
    const first = c.pods.get('p1', 'default');
    expect(first).toBeDefined();
    changes.length = 0;

    // A status update of a field the slim object drops.
    const updated = api.upsert<{ metadata: { resourceVersion: string } }>('pods', pod('True'));
    await api.waitFor(() => c.pods.resourceVersion === updated.metadata.resourceVersion, 5_000, 'the new version');
    expect(c.pods.get('p1', 'default')).toBe(first);
    expect(first?.metadata.resourceVersion).toBe(updated.metadata.resourceVersion);
    expect(changes.filter((r) => r === 'pods')).toEqual([]);
    expect(c.pods.unchanged).toBe(1);

    // A relist after 410 Gone finds the same pod: still the same object, no change.
    api.expireWatches({ resource: 'pods' });
    api.upsert('pods', pod('False'));
    await api.waitFor(() => api.openWatches('pods') === 1 && c.pods.unchanged >= 2, 10_000, 'relisted');
    expect(c.pods.get('p1', 'default')).toBe(first);
    expect(changes.filter((r) => r === 'pods')).toEqual([]);

    // A label change is a change.
    api.upsert('pods', pod('False', { app: 'b' }));
    await api.waitFor(() => changes.includes('pods'), 5_000, 'the change event');
    const after = c.pods.get('p1', 'default');
    expect(after).not.toBe(first);
    expect(after?.metadata.labels).toEqual({ app: 'b' });
  }, 30_000);
});

describe("an informer's list of every object", () => {
  it('is the same array until an add, an update or a delete, which the change hook already sees', async () => {
    const kube = new KubeClient(loadKubeConfig(api.writeKubeconfig(join(dir, 'kubeconfig'))));
    api.create('pods', pod('False'));
    const seen: string[][] = [];
    cache = new ClusterCache(kube, {
      log: silentLogger,
      onChange: (r) => {
        if (r === 'pods') seen.push(c.pods.list().map((p) => p.metadata.name ?? ''));
      },
    });
    const c = cache;
    c.start();
    await api.waitFor(() => c.synced, 5_000, 'sync');
    const first = c.pods.list();
    expect(first.map((p) => p.metadata.name)).toEqual(['p1']);
    expect(c.pods.list()).toBe(first);
    // An update that changes nothing kept keeps the list too.
    const updated = api.upsert<{ metadata: { resourceVersion: string } }>('pods', pod('True'));
    await api.waitFor(() => c.pods.resourceVersion === updated.metadata.resourceVersion, 5_000, 'the new version');
    expect(c.pods.list()).toBe(first);

    api.create('pods', { ...pod('True'), metadata: { name: 'p2', namespace: 'default' } });
    await api.waitFor(() => c.pods.get('p2', 'default') !== undefined, 5_000, 'the add');
    const second = c.pods.list();
    expect(second).not.toBe(first);
    expect(second.map((p) => p.metadata.name).sort()).toEqual(['p1', 'p2']);
    api.patch('pods', 'p1', { metadata: { labels: { app: 'b' } } });
    await api.waitFor(() => c.pods.get('p1', 'default')?.metadata.labels?.app === 'b', 5_000, 'the update');
    expect(c.pods.list().find((p) => p.metadata.name === 'p1')?.metadata.labels?.app).toBe('b');
    api.delete('pods', 'p2');
    await api.waitFor(() => c.pods.get('p2', 'default') === undefined, 5_000, 'the delete');
    expect(c.pods.list().map((p) => p.metadata.name)).toEqual(['p1']);
    // What the change hook read was already the new list each time.
    expect(seen.slice(-3)).toEqual([['p1', 'p2'], ['p1', 'p2'], ['p1']]);
  });
});
