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
