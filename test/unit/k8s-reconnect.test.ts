// Informers after an API outage (issue 16, item 4): an outage long enough to push every informer's
// backoff to its cap, then the API returns; every informer must list and watch again at once (the
// probe sees the return, reachability.ts wakes them all), not each when its own backoff ends. And
// while the API is unreachable the cache does not call itself out of step (the node stays ready);
// once it answers, an informer still failing is named.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeClient, loadKubeConfig } from '../../src/k8s/client.ts';
import { ClusterCache } from '../../src/k8s/cluster-cache.ts';
import type { ResourceName } from '../../src/k8s/informer.ts';
import { isUnanswered } from '../../src/k8s/reachability.ts';
import { silentLogger } from '../../src/log.ts';
import { TestApiServer } from '../kit/k8s-api-server.ts';

let api: TestApiServer;
let dir: string;
let cache: ClusterCache | undefined;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strand-k8s-reconnect-'));
  api = await TestApiServer.start({ bookmarkIntervalMs: 200 });
});

afterEach(async () => {
  await cache?.stop();
  cache = undefined;
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('informers after an API outage', () => {
  it('all list and watch again within moments of the API returning, though their backoff is at its cap', async () => {
    // Backoff capped at 5 s, reached after 9 failures (10 ms doubling); the probe runs every 300 ms.
    const backoff = { initialMs: 10, maxMs: 5_000 };
    const kube = new KubeClient(loadKubeConfig(api.writeKubeconfig(join(dir, 'kubeconfig'))), { probeMs: 300 });
    const errors = new Map<ResourceName, number>();
    api.create('nodes', { metadata: { name: 'n1' } });
    // Installed, so that its informer fails with the others (without it, it looks every absentMs).
    api.installCrd('clusternetworkpolicies');
    cache = new ClusterCache(
      kube,
      { log: silentLogger, onApiError: (r) => errors.set(r, (errors.get(r) ?? 0) + 1) },
      backoff,
    );
    cache.start();
    const c = cache;
    await api.waitFor(() => c.synced && api.openWatches() === 5, 5_000, 'sync');

    await api.stop();
    await api.waitFor(
      () => c.all.every((i) => (errors.get(i.resource) ?? 0) >= 10),
      15_000,
      'every informer failing at its backoff cap',
    );
    // The API is unreachable: the caches are kept and not called out of step.
    expect(c.unsynced).toEqual([]);
    expect(kube.reachability.reachable).toBe(false);
    await sleep(1_000);

    api.create('nodes', { metadata: { name: 'n2' } });
    await api.start();
    const back = Date.now();
    await api.waitFor(
      () => api.openWatches() === 5 && c.nodes.list().length === 2,
      10_000,
      'the five watches open again',
    );
    // Each informer's own backoff would have kept it away for at least 4 s (5 s ± 20 %); a watch may
    // open a moment before its informer counts itself listed, so wait for that within the same bound.
    await api.waitFor(() => c.unsynced.length === 0, 3_500, 'every informer listed again');
    expect(Date.now() - back).toBeLessThan(3_500);
    expect(kube.reachability.reachable).toBe(true);
    expect(c.unsynced).toEqual([]);
  }, 30_000);

  it('tell an answer (the API is up) from no answer', () => {
    expect(isUnanswered(Object.assign(new Error('x'), { statusCode: 0 }))).toBe(true);
    expect(isUnanswered(Object.assign(new Error('x'), { statusCode: 500 }))).toBe(false);
    expect(isUnanswered(Object.assign(new Error('fetch failed'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isUnanswered(Object.assign(new Error('Gone'), { code: 410 }))).toBe(false);
  });
});
