// The agent's reader of Kubernetes protobuf lists (src/k8s/protobuf.ts) on bytes written here by hand,
// field by field, from the wire format (core/v1 and meta/v1 generated.proto): the envelope, the list
// metadata, the fields kept and the ones skipped of every wire type, the empty values Kubernetes
// writes where JSON leaves a field out, times, UTF-8, and bytes that are not such a list.
// test/unit/k8s-protobuf-equivalence.test.ts compares it with JSON through the test API server's encoder.
import { describe, expect, it } from 'vitest';
import {
  decodeProtobufList,
  decodeProtobufStatus,
  isProtobuf,
  ProtobufError,
  protobufListHead,
} from '../../src/k8s/protobuf.ts';
import { slimNode, slimPod } from '../../src/k8s/objects.ts';

// ---- a minimal writer ----------------------------------------------------------------------------

type Bytes = number[];
const varint = (n: number | bigint): Bytes => {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: Bytes = [];
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
};
const tag = (field: number, wire: number) => varint((field << 3) | wire);
const bytes = (field: number, b: Bytes): Bytes => [...tag(field, 2), ...varint(b.length), ...b];
const str = (field: number, s: string): Bytes => bytes(field, [...Buffer.from(s, 'utf8')]);
const num = (field: number, n: number | bigint): Bytes => [...tag(field, 0), ...varint(n)];
const msg = (field: number, ...parts: Bytes[]): Bytes => bytes(field, parts.flat());
const entry = (field: number, k: string, v: string) => msg(field, str(1, k), str(2, v));

function envelope(kind: string, raw: Bytes, extra: Bytes = []): Buffer {
  const unknown = [...msg(1, str(1, 'v1'), str(2, kind)), ...bytes(2, raw), ...str(3, ''), ...str(4, ''), ...extra];
  return Buffer.from([0x6b, 0x38, 0x73, 0x00, ...unknown]);
}
const list = (kind: string, meta: Bytes, ...items: Bytes[]) =>
  envelope(kind, [...msg(1, meta), ...items.flatMap((i) => bytes(2, i))]);

/** A pod as kube-apiserver writes one: every non-pointer field, empty or not, and fields the agent skips. */
function pod(o: {
  name: string;
  ns: string;
  node?: string;
  ip?: string;
  phase?: string;
  hostNetwork?: boolean;
}): Bytes {
  const meta = [
    ...str(1, o.name),
    ...str(2, ''),
    ...str(3, o.ns),
    ...str(4, ''),
    ...str(5, `uid-${o.name}`),
    ...str(6, '42'),
    ...num(7, 0),
    ...msg(8, num(1, 1767225600)),
    ...entry(11, 'app', 'web'),
    ...entry(11, 'tier', 'front'),
    ...entry(12, 'note', 'skipped'),
    ...msg(13, str(1, 'ReplicaSet'), str(3, 'web-rs')),
  ];
  const container = [
    ...str(1, 'main'),
    ...str(2, 'registry.example/web:1'),
    ...msg(6, str(1, 'http'), num(2, 0), num(3, 8080), str(4, 'TCP'), str(5, '')),
    ...msg(6, str(1, ''), num(2, 0), num(3, 53), str(4, 'UDP'), str(5, '')),
    ...msg(7, str(1, 'A'), str(2, 'b')),
    ...msg(10, msg(1, str(1, 'probe'))),
  ];
  const spec = [
    ...msg(1, str(1, 'vol'), msg(2, msg(1, str(1, 'path')))),
    ...msg(2, container),
    ...msg(2, str(1, 'sidecar'), str(2, 'registry.example/side:1')),
    ...str(3, 'Always'),
    ...num(4, 30),
    ...str(10, o.node ?? ''),
    ...num(11, o.hostNetwork ? 1 : 0),
    ...num(12, 0),
  ];
  const status = [
    ...str(1, o.phase ?? ''),
    ...msg(2, str(1, 'Ready'), str(2, 'True'), msg(4, num(1, 1767225600))),
    ...str(3, ''),
    ...str(5, '198.18.0.1'),
    ...str(6, o.ip ?? ''),
    ...(o.ip ? msg(12, str(1, o.ip)) : []),
    ...str(9, 'Burstable'),
  ];
  return [...msg(1, meta), ...msg(2, spec), ...msg(3, status)];
}

describe('decodeProtobufList', () => {
  it('reads a PodList: its metadata and each pod as the JSON shape of the fields the agent keeps', () => {
    const b = list(
      'PodList',
      [...str(1, ''), ...str(2, '1234'), ...str(3, 'next-token'), ...num(4, 7)],
      pod({ name: 'a', ns: 'ns1', node: 'n1', ip: '10.244.1.5', phase: 'Running' }),
      pod({ name: 'b', ns: 'ns2' }),
    );
    const page = decodeProtobufList(b, 'Pod');
    expect(page.kind).toBe('PodList');
    expect(page.metadata).toEqual({ resourceVersion: '1234', continue: 'next-token' });
    expect(page.items).toEqual([
      {
        metadata: {
          name: 'a',
          namespace: 'ns1',
          uid: 'uid-a',
          resourceVersion: '42',
          labels: { app: 'web', tier: 'front' },
        },
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
        status: { phase: 'Running', podIP: '10.244.1.5', podIPs: [{ ip: '10.244.1.5' }] },
      },
      // Empty strings, false and zero (what Kubernetes writes where JSON leaves the field out) are left out.
      {
        metadata: {
          name: 'b',
          namespace: 'ns2',
          uid: 'uid-b',
          resourceVersion: '42',
          labels: { app: 'web', tier: 'front' },
        },
        spec: {
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
        status: {},
      },
    ]);
    // The slimmer takes them as it takes JSON.
    const slim = slimPod(page.items[0]);
    expect(slim.ok && slim.value.status.podIPs).toEqual([{ ip: '10.244.1.5' }]);
    expect(slim.ok && slim.value.spec.containers[0]?.ports.length).toBe(2);
  });

  it('keeps hostNetwork when true, and reads UTF-8 and long (multi-byte length) strings', () => {
    const long = 'x'.repeat(300);
    const b = list('PodList', str(2, '9'), [
      ...msg(1, str(1, long), str(3, 'ns'), entry(11, 'owner', 'Zoë ✓')),
      ...msg(2, str(10, 'n1'), num(11, 1)),
      ...msg(3, str(1, 'Pending')),
    ]);
    const [item] = decodeProtobufList(b, 'Pod').items as { metadata: { name: string; labels: object }; spec: object }[];
    expect(item?.metadata.name).toBe(long);
    expect(item?.metadata.labels).toEqual({ owner: 'Zoë ✓' });
    expect(item?.spec).toEqual({ nodeName: 'n1', hostNetwork: true });
  });

  it('reads repeated values (namespaces, labels, nodes) right however they crowd its interning table', () => {
    // 20,000 distinct values through a table of 8,192 slots, each value twice, with non-ASCII and
    // long ones among them: every one read back as written.
    const values = Array.from({ length: 20_000 }, (_, i) =>
      i % 997 === 0 ? `ü-${i}` : i % 1009 === 0 ? `long-${'x'.repeat(80)}-${i}` : `v${i}`,
    );
    const items = values.flatMap((v, i) => {
      const one = [...msg(1, str(1, `p${i}`), str(3, v), entry(11, 'k', v)), ...msg(2, str(10, v))];
      return [one, one];
    });
    const got = decodeProtobufList(list('PodList', [], ...items), 'Pod').items as {
      metadata: { namespace: string; labels: Record<string, string> };
      spec: { nodeName: string };
    }[];
    expect(got.length).toBe(2 * values.length);
    got.forEach((pod, j) => {
      const v = values[j >> 1];
      expect([pod.metadata.namespace, pod.metadata.labels.k, pod.spec.nodeName]).toEqual([v, v, v]);
    });
  });

  it('skips unknown fields of every wire type (varint, 64-bit, length, 32-bit)', () => {
    const unknown = [
      ...num(90, 300),
      ...tag(91, 1),
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
      ...str(92, 'x'),
      ...tag(93, 5),
      1,
      2,
      3,
      4,
    ];
    const b = list(
      'PodList',
      [...str(2, '5'), ...unknown],
      [...msg(1, str(1, 'p'), str(3, 'ns'), unknown), ...unknown],
    );
    expect(decodeProtobufList(b, 'Pod').items).toEqual([{ metadata: { name: 'p', namespace: 'ns' } }]);
  });

  it('reads a NodeList: CIDRs, addresses, conditions, annotations and the creation time as RFC 3339', () => {
    const node = [
      ...msg(
        1,
        str(1, 'node-1'),
        str(5, 'u1'),
        str(6, '77'),
        msg(8, num(1, 1767225600)),
        entry(11, 'kubernetes.io/hostname', 'node-1'),
        entry(12, 'strand.dev/vtep-mac', '02:00:00:00:00:01'),
        entry(12, 'other/annotation', 'x'),
      ),
      ...msg(2, str(1, '10.244.1.0/24'), str(3, ''), num(4, 0), str(7, '10.244.1.0/24'), str(7, 'fd00:1::/64')),
      ...msg(
        3,
        msg(1, str(1, 'cpu'), msg(2, str(1, '2'))),
        str(3, ''),
        msg(4, str(1, 'Ready'), str(2, 'True'), msg(3, num(1, 1767225600)), str(5, 'KubeletReady'), str(6, 'ok')),
        msg(4, str(1, 'NetworkUnavailable'), str(2, 'False'), str(5, 'StrandIsUp'), str(6, '')),
        msg(5, str(1, 'InternalIP'), str(2, '198.18.0.2')),
        msg(5, str(1, 'Hostname'), str(2, 'node-1')),
        msg(8, str(1, 'registry.example/image:1'), num(2, 1000)),
      ),
    ];
    const page = decodeProtobufList(list('NodeList', str(2, '80'), node), 'Node');
    expect(page.items).toEqual([
      {
        metadata: {
          name: 'node-1',
          uid: 'u1',
          resourceVersion: '77',
          creationTimestamp: '2026-01-01T00:00:00Z',
          labels: { 'kubernetes.io/hostname': 'node-1' },
          annotations: { 'strand.dev/vtep-mac': '02:00:00:00:00:01', 'other/annotation': 'x' },
        },
        spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24', 'fd00:1::/64'] },
        status: {
          conditions: [
            { type: 'Ready', status: 'True', reason: 'KubeletReady' },
            { type: 'NetworkUnavailable', status: 'False', reason: 'StrandIsUp' },
          ],
          addresses: [
            { type: 'InternalIP', address: '198.18.0.2' },
            { type: 'Hostname', address: 'node-1' },
          ],
        },
      },
    ]);
    const slim = slimNode(page.items[0]);
    expect(slim.ok && slim.value.metadata).toEqual({
      name: 'node-1',
      uid: 'u1',
      resourceVersion: '77',
      labels: { 'kubernetes.io/hostname': 'node-1' },
      annotations: { 'strand.dev/vtep-mac': '02:00:00:00:00:01' },
      createdAt: '2026-01-01T00:00:00Z',
    });
  });

  it('reads times before 1970 (a negative int64) and leaves the zero time (an empty message) out', () => {
    const node = (time: Bytes) => msg(1, str(1, 'n'), bytes(8, time));
    const created = (time: Bytes) =>
      (
        decodeProtobufList(list('NodeList', [], node(time)), 'Node').items[0] as {
          metadata: { creationTimestamp?: string };
        }
      ).metadata.creationTimestamp;
    expect(created(num(1, -1))).toBe('1969-12-31T23:59:59Z');
    expect(created([])).toBeUndefined();
    expect(created(num(1, 253402300800n * 10n))).toBeUndefined();
  });

  it('reads a NamespaceList: metadata only', () => {
    const ns = [
      ...msg(1, str(1, 'ns-1'), str(6, '3'), entry(11, 'team', 'a')),
      ...msg(2, str(1, 'kubernetes')),
      ...msg(3, str(1, 'Active')),
    ];
    expect(decodeProtobufList(list('NamespaceList', str(2, '3'), ns), 'Namespace').items).toEqual([
      { metadata: { name: 'ns-1', resourceVersion: '3', labels: { team: 'a' } } },
    ]);
  });

  it('refuses what is not such a list: no magic, another kind, truncated, a group, a content encoding', () => {
    const good = list('PodList', str(2, '1'), pod({ name: 'a', ns: 'n' }));
    expect(() => decodeProtobufList(Buffer.from('{"kind":"PodList"}'), 'Pod')).toThrow(ProtobufError);
    expect(() => decodeProtobufList(good, 'Node')).toThrow(/a PodList where a NodeList belongs/);
    for (const cut of [5, 20, good.length - 1])
      expect(() => decodeProtobufList(good.subarray(0, cut), 'Pod')).toThrow(ProtobufError);
    expect(() => decodeProtobufList(list('PodList', [...tag(5, 3)]), 'Pod')).toThrow(/wire type 3/);
    expect(() => decodeProtobufList(envelope('PodList', [], str(3, 'gzip')), 'Pod')).toThrow(/content encoding "gzip"/);
    // An envelope without raw is an empty list.
    expect(
      decodeProtobufList(Buffer.from([0x6b, 0x38, 0x73, 0x00, ...msg(1, str(2, 'PodList'))]), 'Pod').items,
    ).toEqual([]);
  });
});

describe('protobufListHead', () => {
  it('reads the continue token and version without the items', () => {
    const b = list('PodList', [...str(2, '55'), ...str(3, 'tok')], pod({ name: 'a', ns: 'n' }));
    expect(protobufListHead(b)).toEqual({ kind: 'PodList', metadata: { resourceVersion: '55', continue: 'tok' } });
    expect(protobufListHead(list('PodList', [])).metadata).toEqual({});
  });
});

describe('decodeProtobufStatus', () => {
  it("reads an error answer's message, reason and code; undefined for anything else", () => {
    const status = envelope('Status', [
      ...msg(1, str(2, '')),
      ...str(2, 'Failure'),
      ...str(3, 'too old'),
      ...str(4, 'Expired'),
      ...num(6, 410),
    ]);
    expect(decodeProtobufStatus(status)).toEqual({ message: 'too old', reason: 'Expired', code: 410 });
    expect(decodeProtobufStatus(list('PodList', []))).toBeUndefined();
    expect(decodeProtobufStatus(Buffer.from('nope'))).toBeUndefined();
  });
});

describe('isProtobuf', () => {
  it('tells the Content-Type of a protobuf answer', () => {
    expect(isProtobuf('application/vnd.kubernetes.protobuf')).toBe(true);
    expect(isProtobuf('application/vnd.kubernetes.protobuf;stream=watch')).toBe(true);
    expect(isProtobuf('application/json')).toBe(false);
    expect(isProtobuf(undefined)).toBe(false);
  });
});
