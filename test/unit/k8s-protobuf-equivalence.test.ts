// The agent's protobuf reader (src/k8s/protobuf.ts) against the test API server's encoder
// (test/kit/k8s/protobuf.ts, written apart from it from the same generated.proto): every Pod, Node and
// Namespace below, written in protobuf and read back, slims to exactly what its JSON slims to. The
// objects are the benches' (realistic: volumes, env, probes, statuses, all skipped) and the shapes
// the agent must tell apart (no address, podIP only, dual-stack, hostNetwork, named and unnamed
// ports of several containers, an old Node with podCIDR only, annotations of its own and others').
import { describe, expect, it } from 'vitest';
// @ts-expect-error: the benches are plain JavaScript, without types.
import { addressPlan, benchPod, nodeObject } from '../../bench/agent-cluster.mjs';
import { slimNamespace, slimNode, slimPod, type Slimmed } from '../../src/k8s/objects.ts';
import { decodeProtobufList, type ProtobufKind } from '../../src/k8s/protobuf.ts';
import { encodeItem, encodeList, type ListKind } from '../kit/k8s/protobuf.ts';

const SLIM: Record<ProtobufKind, (raw: unknown) => Slimmed<unknown>> = {
  Pod: slimPod,
  Node: slimNode,
  Namespace: slimNamespace,
};

/** The objects as one list page in protobuf, read back by the agent's reader. */
function throughProtobuf(kind: ProtobufKind, objects: unknown[]): unknown[] {
  const parts = encodeList(
    `${kind}List` as ListKind,
    { resourceVersion: '7', continue: 'c' },
    objects.map((o) => encodeItem(kind, o)),
  );
  const page = decodeProtobufList(Buffer.concat(parts), kind);
  expect(page.metadata).toEqual({ resourceVersion: '7', continue: 'c' });
  return page.items;
}

function expectSameSlim(kind: ProtobufKind, objects: unknown[]): void {
  const items = throughProtobuf(kind, objects);
  expect(items.length).toBe(objects.length);
  objects.forEach((o, i) => {
    const fromJson = SLIM[kind](JSON.parse(JSON.stringify(o)));
    expect(fromJson.ok).toBe(true);
    expect(SLIM[kind](items[i])).toEqual(fromJson);
  });
}

const sizes = { pods: 600, namespaces: 7, nodes: 5, policies: 0 };
const plan = addressPlan(sizes);

const pod = (over: { metadata?: object; spec?: object; status?: object }) => ({
  metadata: { name: 'p', namespace: 'ns', uid: 'u-1', resourceVersion: '12', ...over.metadata },
  spec: { containers: [{ name: 'c', image: 'i' }], ...over.spec },
  status: { ...over.status },
});

describe('protobuf and JSON give the agent the same objects', () => {
  it("the benches' pods (a page of them)", () => {
    const pods = [];
    for (let p = 0; p < 500; p++) pods.push(benchPod(p, sizes, plan));
    expectSameSlim('Pod', pods);
  });

  it('pods of every shape the agent tells apart', () => {
    expectSameSlim('Pod', [
      pod({}),
      pod({ status: { phase: 'Pending' } }),
      pod({ status: { phase: 'Running', podIP: '10.244.0.9' } }),
      pod({
        spec: { nodeName: 'n1' },
        status: { phase: 'Running', podIP: '10.244.0.9', podIPs: [{ ip: '10.244.0.9' }, { ip: 'fd00::9' }] },
      }),
      pod({
        spec: { nodeName: 'n1', hostNetwork: true },
        status: { podIP: '198.18.0.1', podIPs: [{ ip: '198.18.0.1' }] },
      }),
      pod({ spec: { hostNetwork: false } }),
      pod({
        metadata: { labels: { app: 'web', 'app.kubernetes.io/name': 'web', empty: '' }, annotations: { a: 'b' } },
        spec: {
          containers: [
            {
              name: 'web',
              image: 'w',
              ports: [
                { name: 'http', containerPort: 80, protocol: 'TCP' },
                { containerPort: 53, protocol: 'UDP' },
                { name: 'sctp', containerPort: 9999, protocol: 'SCTP' },
              ],
            },
            { name: 'sidecar', image: 's' },
            { name: 'metrics', image: 'm', ports: [{ name: 'metrics', containerPort: 9090, protocol: 'TCP' }] },
          ],
        },
      }),
      pod({ status: { phase: 'Running', podIP: 'not-an-ip', podIPs: [{ ip: 'not-an-ip' }] } }),
    ]);
  });

  it("the benches' nodes, one of them this node's (no annotations of Strand's)", () => {
    expectSameSlim(
      'Node',
      [0, 1, 2, 3, 4].map((n) => nodeObject(n, plan)),
    );
  });

  it('an older Node with podCIDR only, and one with NetworkUnavailable set by Strand', () => {
    expectSameSlim('Node', [
      {
        metadata: { name: 'old', creationTimestamp: '2020-02-29T12:34:56Z' },
        spec: { podCIDR: '10.244.9.0/24' },
        status: { addresses: [{ type: 'InternalIP', address: '198.18.0.9' }] },
      },
      {
        metadata: { name: 'new', annotations: { 'strand.dev/backend': 'host-gw' } },
        spec: { podCIDRs: ['10.244.1.0/24', 'fd00:1::/64'] },
        status: {
          conditions: [
            { type: 'NetworkUnavailable', status: 'False', reason: 'StrandIsUp', message: 'm' },
            { type: 'Ready', status: 'True', reason: 'KubeletReady' },
          ],
        },
      },
    ]);
  });

  it('namespaces, with and without labels', () => {
    expectSameSlim('Namespace', [
      { metadata: { name: 'a', uid: 'u', resourceVersion: '1', labels: { 'kubernetes.io/metadata.name': 'a' } } },
      { metadata: { name: 'b' }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } },
    ]);
  });
});
