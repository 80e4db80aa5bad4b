// What the agent keeps of API objects (slim, API-shaped), what it refuses as malformed, and the
// restart backoff of its informers.
import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/k8s/informer.ts';
import { slimNamespace, slimNetworkPolicy, slimNode, slimPod } from '../../src/k8s/objects.ts';

const rawPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: 'web-1',
    namespace: 'shop',
    uid: 'u-1',
    resourceVersion: '42',
    labels: { app: 'web' },
    annotations: { big: 'x'.repeat(1000) },
    managedFields: [{ manager: 'kubelet' }],
    ownerReferences: [{ kind: 'ReplicaSet', name: 'web' }],
  },
  spec: {
    nodeName: 'n1',
    containers: [
      {
        name: 'main',
        image: 'web:1',
        env: [{ name: 'A', value: 'b' }],
        ports: [
          { name: 'http', containerPort: 8080 },
          { containerPort: 53, protocol: 'UDP' },
        ],
      },
      { name: 'sidecar', image: 'proxy:1' },
    ],
    volumes: [{ name: 'v' }],
  },
  status: {
    phase: 'Running',
    podIP: '10.244.1.5',
    podIPs: [{ ip: '10.244.1.5' }, { ip: 'fd00::5' }],
    conditions: [{ type: 'Ready', status: 'True' }],
  },
};

describe('slim objects', () => {
  it('keep of a Pod its identity, labels, node, IPs, hostNetwork and container ports, in the API shape', () => {
    expect(slimPod(rawPod)).toEqual({
      ok: true,
      value: {
        metadata: { name: 'web-1', namespace: 'shop', uid: 'u-1', resourceVersion: '42', labels: { app: 'web' } },
        spec: {
          nodeName: 'n1',
          containers: [
            {
              name: 'main',
              ports: [
                { name: 'http', containerPort: 8080, protocol: 'TCP' },
                { containerPort: 53, protocol: 'UDP' },
              ],
            },
          ],
        },
        status: { phase: 'Running', podIPs: [{ ip: '10.244.1.5' }, { ip: 'fd00::5' }] },
      },
    });
    const hostNet = slimPod({
      metadata: { name: 'h', namespace: 'kube-system' },
      spec: { hostNetwork: true },
      status: { podIP: '198.18.0.2' },
    });
    expect(hostNet).toEqual({
      ok: true,
      value: {
        metadata: { name: 'h', namespace: 'kube-system' },
        spec: { hostNetwork: true, containers: [] },
        status: { podIPs: [{ ip: '198.18.0.2' }] },
      },
    });
    // A pending pod: no node, no IPs, no status at all.
    expect(slimPod({ metadata: { name: 'p', namespace: 'd' } })).toEqual({
      ok: true,
      value: { metadata: { name: 'p', namespace: 'd' }, spec: { containers: [] }, status: { podIPs: [] } },
    });
  });

  it("share one frozen copy of a workload's container ports between its pods", () => {
    const containers = (ports: unknown[], name = 'main') => [{ name, image: 'x', ports }, { name: 'side' }];
    const pod = (name: string, ports: unknown[], cname?: string) => {
      const s = slimPod({ metadata: { name, namespace: 'n' }, spec: { containers: containers(ports, cname) } });
      if (!s.ok) throw new Error(s.reason);
      return s.value.spec.containers;
    };
    const http = [{ name: 'http', containerPort: 8080 }];
    const a = pod('a', http);
    expect(a).toEqual([{ name: 'main', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }]);
    expect(pod('b', [{ name: 'http', containerPort: 8080, protocol: 'TCP' }])).toBe(a);
    expect(Object.isFrozen(a) && Object.isFrozen(a[0]) && Object.isFrozen(a[0]?.ports[0])).toBe(true);
    // Any difference (a name, a number, a protocol, the container's name) is another copy.
    expect(pod('c', [{ containerPort: 8080 }])).toEqual([
      { name: 'main', ports: [{ containerPort: 8080, protocol: 'TCP' }] },
    ]);
    expect(pod('d', [{ name: 'http', containerPort: 8081 }])).not.toBe(a);
    expect(pod('e', [{ name: 'http', containerPort: 8080, protocol: 'UDP' }])[0]?.ports[0]?.protocol).toBe('UDP');
    expect(pod('f', http, 'other')[0]?.name).toBe('other');
    expect(pod('g', [])).toEqual([]);
    // A malformed port is still refused, known ports or not.
    expect(
      slimPod({ metadata: { name: 'h', namespace: 'n' }, spec: { containers: containers([{ name: 'http' }]) } }),
    ).toEqual({
      ok: false,
      reason: 'spec.containers[].ports has an entry without a numeric containerPort',
    });
  });

  it('keep of a Node its pod CIDRs, addresses, NetworkUnavailable and only strand.dev/ annotations', () => {
    const raw = {
      metadata: {
        name: 'n1',
        resourceVersion: '7',
        labels: { zone: 'a' },
        annotations: { 'strand.dev/vtep-mac': '0e:00:00:00:00:01', 'node.alpha.kubernetes.io/ttl': '0' },
      },
      spec: { podCIDR: '10.244.1.0/24', providerID: 'x' },
      status: {
        addresses: [{ type: 'InternalIP', address: '198.18.0.1' }, { type: 'Hostname', address: 'n1' }, 'junk'],
        conditions: [
          { type: 'Ready', status: 'True' },
          { type: 'NetworkUnavailable', status: 'True', reason: 'NoRouteCreated', message: 'm' },
        ],
        images: [{ names: ['a'] }],
      },
    };
    expect(slimNode(raw)).toEqual({
      ok: true,
      value: {
        metadata: {
          name: 'n1',
          resourceVersion: '7',
          labels: { zone: 'a' },
          annotations: { 'strand.dev/vtep-mac': '0e:00:00:00:00:01' },
        },
        spec: { podCIDRs: ['10.244.1.0/24'] },
        status: {
          addresses: [
            { type: 'InternalIP', address: '198.18.0.1' },
            { type: 'Hostname', address: 'n1' },
          ],
          conditions: [{ type: 'NetworkUnavailable', status: 'True', reason: 'NoRouteCreated' }],
        },
      },
    });
    // The creation time is kept (it decides which of two overlapping Nodes keeps its pod CIDR); a bad
    // one does not make the Node unusable.
    const created = slimNode({ metadata: { name: 'n2', creationTimestamp: '2026-01-01T00:00:00Z' } });
    expect(created.ok && created.value.metadata.createdAt).toBe('2026-01-01T00:00:00Z');
    const badTime = slimNode({ metadata: { name: 'n2', creationTimestamp: 7 } });
    expect(badTime.ok && badTime.value.metadata).toEqual({ name: 'n2' });
    // podCIDRs wins over podCIDR when both are set.
    const dual = slimNode({
      metadata: { name: 'n2' },
      spec: { podCIDR: '10.244.2.0/24', podCIDRs: ['10.244.2.0/24', 'fd00:2::/64'] },
    });
    expect(dual.ok && dual.value.spec.podCIDRs).toEqual(['10.244.2.0/24', 'fd00:2::/64']);
  });

  it('keep namespaces and policies whole where Strand needs them', () => {
    expect(slimNamespace({ metadata: { name: 'shop', labels: { team: 'a' } }, status: { phase: 'Active' } })).toEqual({
      ok: true,
      value: { metadata: { name: 'shop', labels: { team: 'a' } } },
    });
    const spec = {
      podSelector: { matchLabels: { app: 'web' } },
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ podSelector: {} }] }],
    };
    expect(slimNetworkPolicy({ metadata: { name: 'p', namespace: 'shop', managedFields: [] }, spec })).toEqual({
      ok: true,
      value: { metadata: { name: 'p', namespace: 'shop' }, spec },
    });
  });

  it('refuse malformed objects with the reason', () => {
    const reason = (r: { ok: boolean; reason?: string }) => (r.ok ? 'ok' : r.reason);
    expect(reason(slimPod('a string'))).toBe('not an object');
    expect(reason(slimPod({ kind: 'Pod', spec: {} }))).toBe('metadata is missing or not an object');
    expect(reason(slimPod({ metadata: { namespace: 'd' } }))).toBe('metadata.name is missing');
    expect(reason(slimPod({ metadata: { name: 'p' } }))).toBe('metadata.namespace is missing');
    expect(reason(slimPod({ metadata: { name: 'p', namespace: 'd', labels: { a: 1 } } }))).toBe(
      'metadata.labels is not a map of strings',
    );
    expect(reason(slimPod({ metadata: { name: 'p', namespace: 'd' }, spec: 'x' }))).toBe('spec is not an object');
    expect(reason(slimPod({ metadata: { name: 'p', namespace: 'd' }, spec: { containers: 'x' } }))).toBe(
      'spec.containers is not an array',
    );
    expect(
      reason(
        slimPod({
          metadata: { name: 'p', namespace: 'd' },
          spec: { containers: [{ ports: [{ containerPort: '80' }] }] },
        }),
      ),
    ).toBe('spec.containers[].ports has an entry without a numeric containerPort');
    expect(reason(slimPod({ metadata: { name: 'p', namespace: 'd' }, spec: { hostNetwork: 'yes' } }))).toBe(
      'spec.hostNetwork is not a boolean',
    );
    expect(reason(slimPod({ metadata: { name: 'p', namespace: 'd' }, status: { podIPs: 'x' } }))).toBe(
      'status.podIPs is not an array',
    );
    expect(reason(slimNode({ metadata: { name: 'n' }, spec: { podCIDRs: [1] } }))).toBe(
      'spec.podCIDRs has a value that is not a string',
    );
    expect(reason(slimNode({ metadata: { name: 'n' }, status: [] }))).toBe('status is not an object');
    expect(reason(slimNetworkPolicy({ metadata: { name: 'p', namespace: 'd' } }))).toBe(
      'spec is missing or not an object',
    );
    expect(reason(slimNamespace({ metadata: { name: '' } }))).toBe('metadata.name is missing');
  });
});

describe('restart backoff', () => {
  it('doubles from the initial delay up to the cap, with ±20 % jitter', () => {
    const opts = { initialMs: 500, maxMs: 30_000 };
    const mid = () => 0.5;
    expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => backoffDelay(n, opts, mid))).toEqual([
      500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
    expect(backoffDelay(1, opts, () => 0)).toBe(400);
    expect(backoffDelay(1, opts, () => 1)).toBe(600);
    expect(backoffDelay(40, opts, () => 1)).toBe(36000);
  });
});
