// The test kit's Kubernetes protobuf encoder (test/kit/k8s/protobuf.ts), byte for byte on small cases
// checked by hand against the wire format (core/v1 and meta/v1 generated.proto, gogo's marshalling:
// fields in ascending number, non-pointer fields always written, maps in key order), the envelope,
// a list written in parts, the Accept negotiation and the error for a field the schema lacks.
import { describe, expect, it } from 'vitest';
import {
  encodeItem,
  encodeList,
  encodeMessage,
  encodeStatus,
  MAGIC,
  PROTOBUF,
  prefersProtobuf,
  readListMeta,
} from '../kit/k8s/protobuf.ts';
import { ApiError } from '../kit/k8s/store.ts';

/** Bytes from hex, spaces allowed: hex('0a 00'). */
const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');
/** A varint's bytes. */
const varint = (n: number) => {
  const out: number[] = [];
  for (; n >= 0x80; n >>>= 7) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return Buffer.from(out);
};
/** A string's UTF-8 bytes as hex. */
const s = (text: string) => Buffer.from(text).toString('hex');

describe('the protobuf encoder of the test kit', () => {
  it('writes a ContainerPort in field order with its zero fields (hostPort 0, hostIP "")', () => {
    // name 1 "http", hostPort 2 = 0, containerPort 3 = 8080 (varint 90 3f), protocol 4 "TCP", hostIP 5 "".
    expect(encodeMessage('ContainerPort', { name: 'http', containerPort: 8080, protocol: 'TCP' })).toEqual(
      hex(`0a 04 ${s('http')} 10 00 18 90 3f 22 03 ${s('TCP')} 2a 00`),
    );
  });

  it('writes an empty string field as its tag and a zero length', () => {
    expect(encodeMessage('LocalObjectReference', {})).toEqual(hex('0a 00'));
    expect(encodeMessage('NodeAddress', { type: 'InternalIP' })).toEqual(hex(`0a 0a ${s('InternalIP')} 12 00`));
  });

  it('writes an ObjectMeta with its labels as map entries in key order', () => {
    const bytes = encodeMessage('ObjectMeta', { name: 'p', labels: { zone: 'a', app: 'web' } });
    expect(bytes).toEqual(
      hex(
        // name "p"; generateName, namespace, selfLink, uid, resourceVersion ""; generation 0;
        // creationTimestamp the zero Time (an empty message); no deletionTimestamp (a pointer).
        `0a 01 70 12 00 1a 00 22 00 2a 00 32 00 38 00 42 00` +
          // labels 11: {key 1 "app", value 2 "web"}, then {key "zone", value "a"}.
          `5a 0a 0a 03 ${s('app')} 12 03 ${s('web')} 5a 09 0a 04 ${s('zone')} 12 01 61`,
      ),
    );
  });

  it('writes a Time as seconds and nanos 0, the zero Time as an empty message', () => {
    // 2026-01-01T00:00:00Z = 1767225600 s = varint 80 f2 d6 ca 06.
    expect(encodeMessage('ContainerStateRunning', { startedAt: '2026-01-01T00:00:00Z' })).toEqual(
      hex('0a 08 08 80 f2 d6 ca 06 10 00'),
    );
    expect(encodeMessage('ContainerStateRunning', {})).toEqual(hex('0a 00'));
    // lastProbeTime 3 absent: an empty Time; lastTransitionTime 4 set; reason, message "", observedGeneration 0.
    expect(
      encodeMessage('PodCondition', { type: 'Ready', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' }),
    ).toEqual(hex(`0a 05 ${s('Ready')} 12 04 ${s('True')} 1a 00 22 08 08 80 f2 d6 ca 06 10 00 2a 00 32 00 38 00`));
  });

  it('writes quantities as {string 1} in a sorted map, leaves nil pointers out and nests an inline VolumeSource', () => {
    expect(encodeMessage('ResourceRequirements', { limits: { memory: '256Mi', cpu: '1' } })).toEqual(
      hex(`0a 0a 0a 03 ${s('cpu')} 12 03 0a 01 31 0a 11 0a 06 ${s('memory')} 12 07 0a 05 ${s('256Mi')}`),
    );
    // HostPathVolumeSource.type is a *HostPathType: absent, not "".
    expect(encodeMessage('HostPathVolumeSource', { path: '/x' })).toEqual(hex(`0a 02 ${s('/x')}`));
    // Volume {name 1, volumeSource 2 {emptyDir 2 {medium 1 ""}}}: the JSON's emptyDir sits in the Volume.
    expect(encodeMessage('Volume', { name: 'v', emptyDir: {} })).toEqual(hex('0a 01 76 12 04 12 02 0a 00'));
    // OwnerReference: kind 1, name 3, uid 4, apiVersion 5, controller 6 (a *bool, here true).
    expect(
      encodeMessage('OwnerReference', {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        name: 'rs',
        uid: 'u',
        controller: true,
      }),
    ).toEqual(hex(`0a 0a ${s('ReplicaSet')} 1a 02 ${s('rs')} 22 01 75 2a 07 ${s('apps/v1')} 30 01`));
  });

  it('wraps a Status in the envelope: magic, Unknown {typeMeta {v1, Status}, raw, "" , ""}', () => {
    const body = encodeStatus(new ApiError(410, 'Expired', 'gone').toStatus());
    expect(body.subarray(0, 4)).toEqual(MAGIC);
    expect(body.subarray(4)).toEqual(
      hex(
        `0a 0c 0a 02 ${s('v1')} 12 06 ${s('Status')}` +
          // raw 2 (35 bytes): metadata 1 an empty ListMeta, status 2, message 3, reason 4, code 6 = 410.
          `12 23 0a 06 0a 00 12 00 1a 00 12 07 ${s('Failure')} 1a 04 ${s('gone')} 22 07 ${s('Expired')} 30 9a 03` +
          // contentEncoding 3 and contentType 4, both "".
          `1a 00 22 00`,
      ),
    );
  });

  it('writes a list in parts whose concatenation is the list encoded whole, items as given', () => {
    const pods = [
      {
        metadata: { name: 'a', namespace: 'ns' },
        spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'pause' }] },
      },
      { metadata: { name: 'b', namespace: 'ns' }, status: { phase: 'Running', podIP: '10.244.1.5' } },
    ];
    const items = pods.map((p) => encodeItem('Pod', p));
    const listMeta = { resourceVersion: '42', continue: 'tok', remainingItemCount: 300 };
    const parts = encodeList('PodList', listMeta, items);
    // The items' own buffers are parts of the answer, not copies.
    expect(parts.filter((p) => items.includes(p))).toHaveLength(2);
    const raw = encodeMessage('PodList', { metadata: listMeta, items: pods });
    const whole = Buffer.concat([
      MAGIC,
      hex(`0a 0d 0a 02 ${s('v1')} 12 07 ${s('PodList')}`),
      hex('12'),
      varint(raw.length),
      raw,
      hex('1a 00 22 00'),
    ]);
    expect(raw.length).toBeGreaterThan(128); // a length of two bytes
    expect(Buffer.concat(parts)).toEqual(whole);
    expect(readListMeta(whole)).toEqual({
      kind: 'PodList',
      resourceVersion: '42',
      continue: 'tok',
      remainingItemCount: 300,
    });
    // An empty last page: ListMeta only, no remainingItemCount (a pointer).
    const empty = Buffer.concat(encodeList('NodeList', { resourceVersion: '7' }, []));
    expect(readListMeta(empty)).toEqual({ kind: 'NodeList', resourceVersion: '7', continue: '' });
  });

  it('drops kind and apiVersion from an item, as a list has them', () => {
    const node = { metadata: { name: 'n1' }, spec: { podCIDR: '10.244.1.0/24' } };
    expect(encodeItem('Node', { kind: 'Node', apiVersion: 'v1', ...node })).toEqual(encodeItem('Node', node));
  });

  it('throws on a field the schema lacks or a value of the wrong type, naming its path', () => {
    const pod = (container: object) => ({ metadata: { name: 'p' }, spec: { containers: [{ name: 'c' }, container] } });
    expect(() => encodeItem('Pod', pod({ name: 'd', foo: 1 }))).toThrow(
      /^pod\.spec\.containers\[1\]\.foo: not in the protobuf schema of Container/,
    );
    expect(() => encodeItem('Pod', pod({ name: 'd', stdin: 'yes' }))).toThrow(
      /^pod\.spec\.containers\[1\]\.stdin: expected a boolean/,
    );
    expect(() => encodeItem('Node', { metadata: { name: 'n', managedFields: [] } })).toThrow(
      /^node\.metadata\.managedFields:/,
    );
    expect(() => encodeItem('Namespace', { metadata: { name: 'x', creationTimestamp: 'yesterday' } })).toThrow(
      /^namespace\.metadata\.creationTimestamp: expected an RFC 3339 time/,
    );
    // A malformed object (no metadata) has no protobuf form either.
    expect(() => encodeItem('Pod', { spec: {} })).toThrow(/^pod\.metadata:/);
  });

  it('negotiates protobuf from the Accept header as kube-apiserver does', () => {
    expect(prefersProtobuf(undefined)).toBe(false);
    expect(prefersProtobuf('application/json')).toBe(false);
    expect(prefersProtobuf('*/*')).toBe(false);
    expect(prefersProtobuf(PROTOBUF)).toBe(true);
    expect(prefersProtobuf(`${PROTOBUF}, application/json`)).toBe(true);
    expect(prefersProtobuf(`application/json, ${PROTOBUF}`)).toBe(false);
    expect(prefersProtobuf(`application/json;q=0.5, ${PROTOBUF}`)).toBe(true);
    expect(prefersProtobuf(`${PROTOBUF};q=0, application/json`)).toBe(false);
    expect(prefersProtobuf(`*/*, ${PROTOBUF}`)).toBe(true);
    expect(prefersProtobuf(`${PROTOBUF};as=Table;g=meta.k8s.io;v=v1, application/json`)).toBe(false);
  });
});
