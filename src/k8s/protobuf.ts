// Over 500 lines: the wire reader, the envelope and the readers of the three kinds' fields, which share
// one set of rules (field numbers, empty values left out, interning) and are read together.
// Lists of Pods, Nodes and Namespaces in Kubernetes' protobuf encoding (the Accept header asks for it,
// as client-go's components do for built-in types), read for the fields the agent keeps and nothing
// else: every other field (a pod's volumes, env, probes, conditions, container statuses…) is skipped
// by its length, never decoded. At 50,000 pods the JSON lists cost the agent ~1 s of CPU to decode as
// text, parse whole and collect; here a page's bytes are walked once.
//
// Each item becomes the JSON shape of the same fields (what the API's JSON holds of them, the rest
// left out), so the slimmers of objects.ts check and keep them exactly as they do JSON objects. Where
// JSON leaves a field out (omitempty), Kubernetes' protobuf writes an empty string, a false or a zero:
// those are left out here too.
//
// The wire format (k8s.io/apimachinery runtime/serializer/protobuf, api core/v1 and meta/v1
// generated.proto): the magic bytes "k8s\0", then a runtime.Unknown {typeMeta 1 {apiVersion 1,
// kind 2}, raw 2, contentEncoding 3, contentType 4} whose raw is the list {metadata 1 ListMeta
// {resourceVersion 2, continue 3}, items 2}; errors are a Status {message 3, reason 4, code 6} in
// the same envelope.

export const PROTOBUF_TYPE = 'application/vnd.kubernetes.protobuf';
/** A list's Accept header where protobuf is wanted: JSON still taken (a proxy, an old server). */
export const PROTOBUF_ACCEPT = `${PROTOBUF_TYPE}, application/json`;

export type ProtobufKind = 'Pod' | 'Node' | 'Namespace';

export class ProtobufError extends Error {
  override name = 'ProtobufError';
}

/** A list page: its metadata and its items in the JSON shape of the fields the agent reads. */
export interface ProtobufPage {
  kind: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: unknown[];
}

const MAGIC = [0x6b, 0x38, 0x73, 0x00] as const;
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

/** Whether an answer's Content-Type is Kubernetes protobuf. */
export function isProtobuf(contentType: string | string[] | undefined): boolean {
  return typeof contentType === 'string' && contentType.trimStart().startsWith(PROTOBUF_TYPE);
}

/** The read position in one buffer; `p` moves, fields are read up to an end the caller gives. */
class Reader {
  readonly b: Buffer;
  p: number;
  constructor(b: Buffer, p: number) {
    this.b = b;
    this.p = p;
  }

  varint(end: number): number {
    const b = this.b;
    let p = this.p;
    if (p >= end) throw truncated();
    let c = b[p++] as number;
    if (c < 0x80) {
      this.p = p;
      return c;
    }
    let x = c & 0x7f;
    let scale = 128;
    for (let i = 1; ; i++) {
      if (p >= end || i > 9) throw truncated();
      c = b[p++] as number;
      x += (c & 0x7f) * scale;
      if (c < 0x80) break;
      scale *= 128;
    }
    this.p = p;
    return x;
  }

  /** A varint as a signed int64 (exact: a negative one is ten bytes of two's complement). Rare: Node times. */
  int64(end: number): number {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (this.p >= end || shift > 63n) throw truncated();
      const c = this.b[this.p++] as number;
      v |= BigInt(c & 0x7f) << shift;
      if (c < 0x80) break;
    }
    return Number(BigInt.asIntN(64, v));
  }

  /** A length-delimited field's end, its bytes starting at `p`. */
  span(end: number): number {
    const n = this.varint(end);
    const e = this.p + n;
    if (e > end) throw truncated();
    return e;
  }

  skip(wire: number, end: number): void {
    if (wire === VARINT) this.varint(end);
    else if (wire === LEN) this.p = this.span(end);
    else if (wire === I64) this.p += 8;
    else if (wire === I32) this.p += 4;
    else throw new ProtobufError(`unsupported wire type ${wire}`);
    if (this.p > end) throw truncated();
  }

  /** A string field's value (its length read here); '' stays ''. */
  str(end: number): string {
    const e = this.span(end);
    const s = text(this.b, this.p, e);
    this.p = e;
    return s;
  }

  /** A string field whose values repeat across objects (a namespace, a label, a node's name): interned. */
  common(end: number): string {
    const e = this.span(end);
    const s = interned(this.b, this.p, e);
    this.p = e;
    return s;
  }
}

/** Slots of the interning table (a power of two). */
const INTERN_SLOTS = 8192;
/** Longer strings are not interned (hashing and comparing them would cost more than they save). */
const INTERN_MAX = 64;
const internTable: (string | undefined)[] = new Array(INTERN_SLOTS).fill(undefined);

/**
 * The text of these bytes, the same string each time they recur: 50,000 pods in 2,000 namespaces on
 * 100 nodes hold a few thousand distinct namespaces, label keys and values, node names and phases,
 * and each pod kept its own copy of each (~8 MiB at 50,000 pods, every one of them made, then
 * promoted by the collector). A slot is found by a hash of the bytes and checked byte by byte;
 * a miss (or non-ASCII, or long) makes the string and, if short ASCII, takes the slot.
 */
function interned(b: Buffer, s: number, e: number): string {
  const n = e - s;
  if (n === 0) return '';
  if (n > INTERN_MAX) return text(b, s, e);
  let h = 0x811c9dc5;
  for (let i = s; i < e; i++) {
    const c = b[i] as number;
    if (c >= 0x80) return (b as unknown as Slices).utf8Slice(s, e);
    h = Math.imul(h ^ c, 0x01000193);
  }
  const slot = (h >>> 0) & (INTERN_SLOTS - 1);
  const known = internTable[slot];
  if (known !== undefined && known.length === n) {
    let i = 0;
    while (i < n && known.charCodeAt(i) === b[s + i]) i++;
    if (i === n) return known;
  }
  const made = (b as unknown as Slices).latin1Slice(s, e);
  internTable[slot] = made;
  return made;
}

const truncated = () => new ProtobufError('truncated message');

interface Slices {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}

/** Bytes as text: ASCII (names, labels, addresses in practice) is copied as Latin-1, the rest decoded as UTF-8. */
function text(b: Buffer, s: number, e: number): string {
  if (s === e) return '';
  for (let i = s; i < e; i++) if ((b[i] as number) >= 0x80) return (b as unknown as Slices).utf8Slice(s, e);
  return (b as unknown as Slices).latin1Slice(s, e);
}

/**
 * The envelope: the magic, then runtime.Unknown. Returns its kind and where `raw` is. `contentEncoding`
 * other than none is refused (kube-apiserver sends none).
 */
function envelope(b: Buffer): { kind: string; start: number; end: number } {
  if (b.length < 4 || MAGIC.some((m, i) => b[i] !== m))
    throw new ProtobufError('not Kubernetes protobuf (no "k8s\\0")');
  const r = new Reader(b, 4);
  const end = b.length;
  let kind = '';
  let start = -1;
  let rawEnd = -1;
  while (r.p < end) {
    const tag = r.varint(end);
    const f = tag >>> 3;
    if ((tag & 7) !== LEN) {
      r.skip(tag & 7, end);
      continue;
    }
    const e = r.span(end);
    if (f === 1) {
      while (r.p < e) {
        const t = r.varint(e);
        if (t === ((2 << 3) | LEN)) kind = r.str(e);
        else r.skip(t & 7, e);
      }
    } else if (f === 2) {
      start = r.p;
      rawEnd = e;
    } else if (f === 3 && e > r.p) {
      throw new ProtobufError(`content encoding "${text(b, r.p, e)}" is not supported`);
    }
    r.p = e;
  }
  if (start < 0) return { kind, start: end, end };
  return { kind, start, end: rawEnd };
}

/** ListMeta: resourceVersion (2) and continue (3). */
function listMeta(r: Reader, end: number): ProtobufPage['metadata'] {
  const out: ProtobufPage['metadata'] = {};
  while (r.p < end) {
    const t = r.varint(end);
    if (t === ((2 << 3) | LEN)) out.resourceVersion = r.str(end);
    else if (t === ((3 << 3) | LEN)) out.continue = r.str(end);
    else r.skip(t & 7, end);
  }
  return out;
}

/**
 * A list page's kind and metadata without its items (its continue token asks for the next page
 * before this one is read).
 */
export function protobufListHead(b: Buffer): { kind: string; metadata: ProtobufPage['metadata'] } {
  const env = envelope(b);
  const r = new Reader(b, env.start);
  while (r.p < env.end) {
    const t = r.varint(env.end);
    if (t === ((1 << 3) | LEN)) {
      const e = r.span(env.end);
      return { kind: env.kind, metadata: listMeta(r, e) };
    }
    r.skip(t & 7, env.end);
  }
  return { kind: env.kind, metadata: {} };
}

/**
 * A list page of `kind` items (PodList for 'Pod'…). Throws ProtobufError on bytes that are not such a
 * list (wrong kind, truncated); an item is not checked here beyond its encoding (objects.ts does).
 */
export function decodeProtobufList(b: Buffer, kind: ProtobufKind): ProtobufPage {
  const env = envelope(b);
  if (env.kind !== `${kind}List`) throw new ProtobufError(`a ${env.kind || 'message'} where a ${kind}List belongs`);
  const item = ITEMS[kind];
  const r = new Reader(b, env.start);
  const end = env.end;
  let metadata: ProtobufPage['metadata'] = {};
  const items: unknown[] = [];
  while (r.p < end) {
    const t = r.varint(end);
    if (t === ((2 << 3) | LEN)) {
      const e = r.span(end);
      items.push(item(r, e));
      r.p = e;
    } else if (t === ((1 << 3) | LEN)) {
      const e = r.span(end);
      metadata = listMeta(r, e);
    } else r.skip(t & 7, end);
  }
  return { kind: env.kind, metadata, items };
}

/** An error answer's Status: its message, reason and code (undefined when the bytes are not one). */
export function decodeProtobufStatus(b: Buffer): { message?: string; reason?: string; code?: number } | undefined {
  try {
    const env = envelope(b);
    if (env.kind !== 'Status') return undefined;
    const r = new Reader(b, env.start);
    const out: { message?: string; reason?: string; code?: number } = {};
    while (r.p < env.end) {
      const t = r.varint(env.end);
      if (t === ((3 << 3) | LEN)) out.message = r.str(env.end);
      else if (t === ((4 << 3) | LEN)) out.reason = r.str(env.end);
      else if (t === ((6 << 3) | VARINT)) out.code = r.varint(env.end);
      else r.skip(t & 7, env.end);
    }
    return out;
  } catch {
    return undefined;
  }
}

type Json = Record<string, unknown>;

/** map<string, string> entry {key 1, value 2} into `into` (labels and annotations: interned). */
function mapEntry(r: Reader, end: number, into: Record<string, string>): void {
  let key = '';
  let value = '';
  while (r.p < end) {
    const t = r.varint(end);
    if (t === ((1 << 3) | LEN)) key = r.common(end);
    else if (t === ((2 << 3) | LEN)) value = r.common(end);
    else r.skip(t & 7, end);
  }
  into[key] = value;
}

/**
 * metav1.Time {seconds 1 (int64), nanos 2} as the API's JSON writes it (RFC 3339, seconds, UTC);
 * undefined for the zero time, an empty message (JSON's null), or one out of the API's range.
 */
function time(r: Reader, end: number): string | undefined {
  if (r.p === end) return undefined;
  let seconds = 0;
  while (r.p < end) {
    const t = r.varint(end);
    if (t === ((1 << 3) | VARINT)) seconds = r.int64(end);
    else r.skip(t & 7, end);
  }
  const date = new Date(seconds * 1000);
  const year = date.getUTCFullYear();
  if (Number.isNaN(year) || year < 1 || year > 9999) return undefined;
  return date.toISOString().replace('.000Z', 'Z');
}

/**
 * ObjectMeta: name 1, namespace 3, uid 5, resourceVersion 6, creationTimestamp 8 (`created`),
 * labels 11, annotations 12 (`annotations`); empty strings left out.
 */
function objectMeta(r: Reader, end: number, opts: { created?: boolean; annotations?: boolean }): Json {
  const m: Json = {};
  let labels: Record<string, string> | undefined;
  let annotations: Record<string, string> | undefined;
  while (r.p < end) {
    const t = r.varint(end);
    switch (t) {
      case (1 << 3) | LEN:
        m.name = r.str(end);
        break;
      case (3 << 3) | LEN:
        str(m, 'namespace', r.common(end));
        break;
      case (5 << 3) | LEN:
        str(m, 'uid', r.str(end));
        break;
      case (6 << 3) | LEN:
        str(m, 'resourceVersion', r.str(end));
        break;
      case (8 << 3) | LEN:
        if (opts.created) {
          const e = r.span(end);
          const created = time(r, e);
          if (created !== undefined) m.creationTimestamp = created;
          r.p = e;
        } else r.skip(LEN, end);
        break;
      case (11 << 3) | LEN: {
        const e = r.span(end);
        mapEntry(r, e, (labels ??= {}));
        r.p = e;
        break;
      }
      case (12 << 3) | LEN:
        if (opts.annotations) {
          const e = r.span(end);
          mapEntry(r, e, (annotations ??= {}));
          r.p = e;
        } else r.skip(LEN, end);
        break;
      default:
        r.skip(t & 7, end);
    }
  }
  if (labels) m.labels = labels;
  if (annotations) m.annotations = annotations;
  return m;
}

function str(into: Json, key: string, value: string): void {
  if (value !== '') into[key] = value;
}

/** ContainerPort: name 1, containerPort 3, protocol 4. */
function containerPort(r: Reader, end: number): Json {
  const p: Json = {};
  while (r.p < end) {
    const t = r.varint(end);
    if (t === ((1 << 3) | LEN)) str(p, 'name', r.common(end));
    else if (t === ((3 << 3) | VARINT)) p.containerPort = r.varint(end) | 0;
    else if (t === ((4 << 3) | LEN)) str(p, 'protocol', r.common(end));
    else r.skip(t & 7, end);
  }
  return p;
}

/** Container: name 1 and ports 6; undefined when it has no ports (the agent keeps ports only). */
function container(r: Reader, end: number): Json | undefined {
  let name = '';
  let ports: Json[] | undefined;
  while (r.p < end) {
    const t = r.varint(end);
    if (t === ((1 << 3) | LEN)) name = r.common(end);
    else if (t === ((6 << 3) | LEN)) {
      const e = r.span(end);
      (ports ??= []).push(containerPort(r, e));
      r.p = e;
    } else r.skip(t & 7, end);
  }
  return ports ? { name, ports } : undefined;
}

/** PodSpec: containers 2, nodeName 10, hostNetwork 11. */
function podSpec(r: Reader, end: number): Json {
  const s: Json = {};
  let containers: Json[] | undefined;
  while (r.p < end) {
    const t = r.varint(end);
    if (t === ((2 << 3) | LEN)) {
      const e = r.span(end);
      const c = container(r, e);
      if (c) (containers ??= []).push(c);
      r.p = e;
    } else if (t === ((10 << 3) | LEN)) str(s, 'nodeName', r.common(end));
    else if (t === ((11 << 3) | VARINT)) {
      if (r.varint(end) !== 0) s.hostNetwork = true;
    } else r.skip(t & 7, end);
  }
  if (containers) s.containers = containers;
  return s;
}

/** A message whose one string field is `field` (PodIP {ip 1}). */
function oneString(r: Reader, end: number, field: number): string {
  let v = '';
  while (r.p < end) {
    const t = r.varint(end);
    if (t === ((field << 3) | LEN)) v = r.str(end);
    else r.skip(t & 7, end);
  }
  return v;
}

/** PodStatus: phase 1, podIP 6, podIPs 12. */
function podStatus(r: Reader, end: number): Json {
  const s: Json = {};
  let ips: { ip: string }[] | undefined;
  while (r.p < end) {
    const t = r.varint(end);
    if (t === ((1 << 3) | LEN)) str(s, 'phase', r.common(end));
    else if (t === ((6 << 3) | LEN)) str(s, 'podIP', r.str(end));
    else if (t === ((12 << 3) | LEN)) {
      const e = r.span(end);
      (ips ??= []).push({ ip: oneString(r, e, 1) });
      r.p = e;
    } else r.skip(t & 7, end);
  }
  if (ips) s.podIPs = ips;
  return s;
}

type Part = (r: Reader, end: number) => Json;
const PARTS = ['metadata', 'spec', 'status'] as const;

/** An object {metadata 1, spec 2, status 3}: each part read by its reader, the others skipped. */
function object(r: Reader, end: number, readers: readonly (Part | undefined)[]): Json {
  const o: Json = {};
  while (r.p < end) {
    const t = r.varint(end);
    const f = t >>> 3;
    const read = (t & 7) === LEN && f >= 1 && f <= 3 ? readers[f - 1] : undefined;
    if (read === undefined) {
      r.skip(t & 7, end);
      continue;
    }
    const e = r.span(end);
    o[PARTS[f - 1] as string] = read(r, e);
    r.p = e;
  }
  return o;
}

/** NodeSpec: podCIDR 1, podCIDRs 7. */
function nodeSpec(r: Reader, end: number): Json {
  const s: Json = {};
  let cidrs: string[] | undefined;
  while (r.p < end) {
    const t = r.varint(end);
    if (t === ((1 << 3) | LEN)) str(s, 'podCIDR', r.str(end));
    else if (t === ((7 << 3) | LEN)) (cidrs ??= []).push(r.str(end));
    else r.skip(t & 7, end);
  }
  if (cidrs) s.podCIDRs = cidrs;
  return s;
}

/** NodeStatus: conditions 4 {type 1, status 2, reason 5}, addresses 5 {type 1, address 2}. */
function nodeStatus(r: Reader, end: number): Json {
  const conditions: Json[] = [];
  const addresses: Json[] = [];
  while (r.p < end) {
    const t = r.varint(end);
    if (t === ((4 << 3) | LEN) || t === ((5 << 3) | LEN)) {
      const e = r.span(end);
      const o: Json = {};
      const names = t === ((4 << 3) | LEN) ? CONDITION_FIELDS : ADDRESS_FIELDS;
      while (r.p < e) {
        const ft = r.varint(e);
        const name = (ft & 7) === LEN ? names[ft >>> 3] : undefined;
        if (name !== undefined) str(o, name, r.str(e));
        else r.skip(ft & 7, e);
      }
      (t === ((4 << 3) | LEN) ? conditions : addresses).push(o);
      r.p = e;
    } else r.skip(t & 7, end);
  }
  return { conditions, addresses };
}

const CONDITION_FIELDS: (string | undefined)[] = [];
CONDITION_FIELDS[1] = 'type';
CONDITION_FIELDS[2] = 'status';
CONDITION_FIELDS[5] = 'reason';
const ADDRESS_FIELDS: (string | undefined)[] = [];
ADDRESS_FIELDS[1] = 'type';
ADDRESS_FIELDS[2] = 'address';

const podMeta: Part = (r, end) => objectMeta(r, end, {});
const nodeMeta: Part = (r, end) => objectMeta(r, end, { created: true, annotations: true });

const ITEMS: Record<ProtobufKind, Part> = {
  Pod: (r, end) => object(r, end, [podMeta, podSpec, podStatus]),
  Node: (r, end) => object(r, end, [nodeMeta, nodeSpec, nodeStatus]),
  Namespace: (r, end) => object(r, end, [podMeta]),
};
