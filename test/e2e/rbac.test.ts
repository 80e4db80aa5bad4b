// The agent on a simulated node (test/kit/sim/) whose API server authorizes by a copy of
// deploy/strand.yaml without the NetworkPolicy rule: as on a cluster whose manifest lacks a
// permission the agent needs, the agent is refused with kube-apiserver's 403, says so in its log,
// keeps retrying, and is not ready, naming what it could not sync. (Under the real manifest the
// other e2e files end by checking that the agents were refused nothing and used every grant.)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEPLOY_MANIFEST } from '../kit/k8s-api-server.ts';
import { withoutResources, writeManifestCopy } from '../kit/k8s/rbac.ts';
import { createTestCluster, waitFor, type SimCluster } from '../support/sim.ts';

const USER = 'system:serviceaccount:kube-strand:strand';

let dir: string;
let cluster: SimCluster;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strand-e2e-rbac-'));
  const manifest = writeManifestCopy(
    DEPLOY_MANIFEST,
    join(dir, 'strand.yaml'),
    withoutResources((group, resource) => group === 'networking.k8s.io' && resource === 'networkpolicies'),
  );
  cluster = await createTestCluster({ nodes: 1, backend: 'host-gw', rbacManifest: manifest });
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('an agent whose ClusterRole lacks NetworkPolicies', () => {
  it("is refused with the API server's 403, logs it, keeps retrying, and is not ready, naming networkpolicies", async () => {
    const node = cluster.node(1);
    const refusals = () => node.logs().filter((l) => l.msg === 'networkpolicies: list/watch failed; retrying');
    await waitFor(
      async () => refusals().length >= 2,
      15_000,
      'two refused NetworkPolicy lists in the agent log',
      100,
    ).catch(() => {
      throw new Error(`no refused NetworkPolicy list in the log:\n${node.logTail(15)}`);
    });
    expect(refusals()[0]?.err).toContain(
      `403 networkpolicies.networking.k8s.io is forbidden: User "${USER}" cannot list resource "networkpolicies" in API group "networking.k8s.io" at the cluster scope`,
    );
    expect(node.agentRunning).toBe(true);
    const readyz = await node.health('/readyz');
    expect(readyz.status).toBe(503);
    expect(readyz.body).toContain('not synced with the API server yet: networkpolicies');
    expect(readyz.body).not.toMatch(/not synced[^\n]*\b(nodes|pods|namespaces)\b/);

    const report = await cluster.api.leastPrivilege();
    expect(Object.keys(report.denied)).toEqual(['list networkpolicies.networking.k8s.io']);
    // The NetworkPolicy grant itself (clusternetworkpolicies, another group, stays granted).
    expect(report.granted.some((g) => g.endsWith(' networkpolicies.networking.k8s.io'))).toBe(false);
  });
});
