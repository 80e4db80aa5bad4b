// Kubernetes protobuf for the test API server's lists: what kube-apiserver sends a client whose Accept
// header asks for application/vnd.kubernetes.protobuf (client-go's components do), written here from
// the wire format alone so that the agent's decoder (src/k8s) is tested against an encoder that does
// not share its code.
//
// A body is the magic "k8s\0" and a runtime.Unknown {typeMeta 1 {apiVersion 1, kind 2}, raw 2 (the
// object: a PodList, a Status), contentEncoding 3, contentType 4}. Objects are encoded as the Go
// types' gogo-generated marshallers do (k8s.io/api core/v1, apimachinery meta/v1): fields in ascending
// number; a field of a non-pointer Go type is always written, its zero value when the JSON leaves it
// out (a string as "", a bool or int as 0, a struct with its own fields); a pointer field (`*string`,
// `*Time`, `*int64`) and an empty list or map are left out; a map is a repeated entry {key 1, value 2}
// in key order; metav1.Time is {seconds 1, nanos 2} (nanos always 0: k8s keeps seconds), its zero an
// empty message; resource.Quantity is {string 1}; an inline struct (a Volume's VolumeSource) is a
// field of its own although its JSON fields sit in the parent's object.
//
// SCHEMA below is the table: message → JSON field → [number, type]. A type is a scalar (string, bool,
// int32, int64), Time, Quantity, IntOrString or a message of the table; `*T` is a pointer (written
// only when present), `[]T` a list, `map<string>` / `map<Quantity>` a map, and the key '...' marks the
// inline struct. A JSON field the table does not know throws an Error naming its path
// (`pod.spec.containers[0].foo`), and so does a value of the wrong JSON type: the test API server
// then answers that list in JSON. Fields the table leaves out are listed in a comment on the message.
//
//   const item = encodeItem('Pod', pod);                         // the Pod message, no envelope
//   const parts = encodeList('PodList', { resourceVersion: '7' }, [item]);   // the body, in parts
//   const body = encodeStatus(new ApiError(410, 'Expired', '...').toStatus());
import { isObject, type JsonObject, type JsonValue } from './patch.ts';

export const PROTOBUF = 'application/vnd.kubernetes.protobuf';

/** "k8s\0": the start of every Kubernetes protobuf body. */
export const MAGIC: Buffer = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

export type ItemKind = 'Pod' | 'Node' | 'Namespace';
export type ListKind = 'PodList' | 'NodeList' | 'NamespaceList';

type FieldSpec = readonly [number, string];

/**
 * Messages of k8s.io/api core/v1 and apimachinery meta/v1 (field numbers and Go types from their
 * generated.proto and types.go): JSON field → [field number, type].
 */
const SCHEMA: Readonly<Record<string, Readonly<Record<string, FieldSpec>>>> = {
  // Not covered: shardInfo.
  ListMeta: {
    selfLink: [1, 'string'],
    resourceVersion: [2, 'string'],
    continue: [3, 'string'],
    remainingItemCount: [4, '*int64'],
  },
  // Not covered: managedFields.
  ObjectMeta: {
    name: [1, 'string'],
    generateName: [2, 'string'],
    namespace: [3, 'string'],
    selfLink: [4, 'string'],
    uid: [5, 'string'],
    resourceVersion: [6, 'string'],
    generation: [7, 'int64'],
    creationTimestamp: [8, 'Time'],
    deletionTimestamp: [9, '*Time'],
    deletionGracePeriodSeconds: [10, '*int64'],
    labels: [11, 'map<string>'],
    annotations: [12, 'map<string>'],
    ownerReferences: [13, '[]OwnerReference'],
    finalizers: [14, '[]string'],
  },
  OwnerReference: {
    kind: [1, 'string'],
    name: [3, 'string'],
    uid: [4, 'string'],
    apiVersion: [5, 'string'],
    controller: [6, '*bool'],
    blockOwnerDeletion: [7, '*bool'],
  },
  Status: {
    metadata: [1, 'ListMeta'],
    status: [2, 'string'],
    message: [3, 'string'],
    reason: [4, 'string'],
    details: [5, '*StatusDetails'],
    code: [6, 'int32'],
  },
  StatusDetails: {
    name: [1, 'string'],
    group: [2, 'string'],
    kind: [3, 'string'],
    causes: [4, '[]StatusCause'],
    retryAfterSeconds: [5, 'int32'],
    uid: [6, 'string'],
  },
  StatusCause: { reason: [1, 'string'], message: [2, 'string'], field: [3, 'string'] },
  Pod: { metadata: [1, 'ObjectMeta'], spec: [2, 'PodSpec'], status: [3, 'PodStatus'] },
  PodList: { metadata: [1, 'ListMeta'], items: [2, '[]Pod'] },
  // Not covered: securityContext, affinity, dnsConfig, topologySpreadConstraints, ephemeralContainers, os, schedulingGates, resourceClaims, schedulingGroup, evictionResponders.
  PodSpec: {
    volumes: [1, '[]Volume'],
    containers: [2, '[]Container'],
    restartPolicy: [3, 'string'],
    terminationGracePeriodSeconds: [4, '*int64'],
    activeDeadlineSeconds: [5, '*int64'],
    dnsPolicy: [6, 'string'],
    nodeSelector: [7, 'map<string>'],
    serviceAccountName: [8, 'string'],
    serviceAccount: [9, 'string'],
    nodeName: [10, 'string'],
    hostNetwork: [11, 'bool'],
    hostPID: [12, 'bool'],
    hostIPC: [13, 'bool'],
    imagePullSecrets: [15, '[]LocalObjectReference'],
    hostname: [16, 'string'],
    subdomain: [17, 'string'],
    schedulerName: [19, 'string'],
    initContainers: [20, '[]Container'],
    automountServiceAccountToken: [21, '*bool'],
    tolerations: [22, '[]Toleration'],
    hostAliases: [23, '[]HostAlias'],
    priorityClassName: [24, 'string'],
    priority: [25, '*int32'],
    shareProcessNamespace: [27, '*bool'],
    readinessGates: [28, '[]PodReadinessGate'],
    runtimeClassName: [29, '*string'],
    enableServiceLinks: [30, '*bool'],
    preemptionPolicy: [31, '*string'],
    overhead: [32, 'map<Quantity>'],
    setHostnameAsFQDN: [35, '*bool'],
    hostUsers: [37, '*bool'],
    resources: [40, '*ResourceRequirements'],
    hostnameOverride: [41, '*string'],
  },
  // Not covered: livenessProbe, readinessProbe, lifecycle, securityContext, envFrom, volumeDevices, startupProbe, resizePolicy, restartPolicyRules.
  Container: {
    name: [1, 'string'],
    image: [2, 'string'],
    command: [3, '[]string'],
    args: [4, '[]string'],
    workingDir: [5, 'string'],
    ports: [6, '[]ContainerPort'],
    env: [7, '[]EnvVar'],
    resources: [8, 'ResourceRequirements'],
    volumeMounts: [9, '[]VolumeMount'],
    terminationMessagePath: [13, 'string'],
    imagePullPolicy: [14, 'string'],
    stdin: [16, 'bool'],
    stdinOnce: [17, 'bool'],
    tty: [18, 'bool'],
    terminationMessagePolicy: [20, 'string'],
    restartPolicy: [24, '*string'],
  },
  ContainerPort: {
    name: [1, 'string'],
    hostPort: [2, 'int32'],
    containerPort: [3, 'int32'],
    protocol: [4, 'string'],
    hostIP: [5, 'string'],
  },
  EnvVar: { name: [1, 'string'], value: [2, 'string'], valueFrom: [3, '*EnvVarSource'] },
  // Not covered: fileKeyRef.
  EnvVarSource: {
    fieldRef: [1, '*ObjectFieldSelector'],
    resourceFieldRef: [2, '*ResourceFieldSelector'],
    configMapKeyRef: [3, '*ConfigMapKeySelector'],
    secretKeyRef: [4, '*SecretKeySelector'],
  },
  ObjectFieldSelector: { apiVersion: [1, 'string'], fieldPath: [2, 'string'] },
  ResourceFieldSelector: { containerName: [1, 'string'], resource: [2, 'string'], divisor: [3, 'Quantity'] },
  ConfigMapKeySelector: { '...': [1, 'LocalObjectReference'], key: [2, 'string'], optional: [3, '*bool'] },
  SecretKeySelector: { '...': [1, 'LocalObjectReference'], key: [2, 'string'], optional: [3, '*bool'] },
  ResourceRequirements: {
    limits: [1, 'map<Quantity>'],
    requests: [2, 'map<Quantity>'],
    claims: [3, '[]ResourceClaim'],
  },
  ResourceClaim: { name: [1, 'string'], request: [2, 'string'] },
  VolumeMount: {
    name: [1, 'string'],
    readOnly: [2, 'bool'],
    mountPath: [3, 'string'],
    subPath: [4, 'string'],
    mountPropagation: [5, '*string'],
    subPathExpr: [6, 'string'],
    recursiveReadOnly: [7, '*string'],
    bindMountOptions: [8, '[]string'],
  },
  Volume: { name: [1, 'string'], '...': [2, 'VolumeSource'] },
  // Not covered: gcePersistentDisk, awsElasticBlockStore, gitRepo, nfs, iscsi, glusterfs, rbd, flexVolume, cinder, cephfs, flocker, fc, azureFile, vsphereVolume, quobyte, azureDisk, photonPersistentDisk, portworxVolume, scaleIO, storageos, csi, ephemeral, image.
  VolumeSource: {
    hostPath: [1, '*HostPathVolumeSource'],
    emptyDir: [2, '*EmptyDirVolumeSource'],
    secret: [6, '*SecretVolumeSource'],
    persistentVolumeClaim: [10, '*PersistentVolumeClaimVolumeSource'],
    downwardAPI: [16, '*DownwardAPIVolumeSource'],
    configMap: [19, '*ConfigMapVolumeSource'],
    projected: [26, '*ProjectedVolumeSource'],
  },
  ProjectedVolumeSource: { sources: [1, '[]VolumeProjection'], defaultMode: [2, '*int32'], defaultUser: [3, '*int64'] },
  // Not covered: clusterTrustBundle, podCertificate.
  VolumeProjection: {
    secret: [1, '*SecretProjection'],
    downwardAPI: [2, '*DownwardAPIProjection'],
    configMap: [3, '*ConfigMapProjection'],
    serviceAccountToken: [4, '*ServiceAccountTokenProjection'],
  },
  ServiceAccountTokenProjection: {
    audience: [1, 'string'],
    expirationSeconds: [2, '*int64'],
    path: [3, 'string'],
    user: [4, '*int64'],
  },
  ConfigMapProjection: { '...': [1, 'LocalObjectReference'], items: [2, '[]KeyToPath'], optional: [4, '*bool'] },
  SecretProjection: { '...': [1, 'LocalObjectReference'], items: [2, '[]KeyToPath'], optional: [4, '*bool'] },
  DownwardAPIProjection: { items: [1, '[]DownwardAPIVolumeFile'] },
  DownwardAPIVolumeFile: {
    path: [1, 'string'],
    fieldRef: [2, '*ObjectFieldSelector'],
    resourceFieldRef: [3, '*ResourceFieldSelector'],
    mode: [4, '*int32'],
    user: [5, '*int64'],
  },
  DownwardAPIVolumeSource: {
    items: [1, '[]DownwardAPIVolumeFile'],
    defaultMode: [2, '*int32'],
    defaultUser: [3, '*int64'],
  },
  EmptyDirVolumeSource: { medium: [1, 'string'], sizeLimit: [2, '*Quantity'], mode: [3, '*int32'] },
  ConfigMapVolumeSource: {
    '...': [1, 'LocalObjectReference'],
    items: [2, '[]KeyToPath'],
    defaultMode: [3, '*int32'],
    optional: [4, '*bool'],
    defaultUser: [5, '*int64'],
  },
  SecretVolumeSource: {
    secretName: [1, 'string'],
    items: [2, '[]KeyToPath'],
    defaultMode: [3, '*int32'],
    optional: [4, '*bool'],
    defaultUser: [5, '*int64'],
  },
  HostPathVolumeSource: { path: [1, 'string'], type: [2, '*string'] },
  PersistentVolumeClaimVolumeSource: { claimName: [1, 'string'], readOnly: [2, 'bool'] },
  KeyToPath: { key: [1, 'string'], path: [2, 'string'], mode: [3, '*int32'], user: [4, '*int64'] },
  LocalObjectReference: { name: [1, 'string'] },
  Toleration: {
    key: [1, 'string'],
    operator: [2, 'string'],
    value: [3, 'string'],
    effect: [4, 'string'],
    tolerationSeconds: [5, '*int64'],
  },
  PodReadinessGate: { conditionType: [1, 'string'] },
  HostAlias: { ip: [1, 'string'], hostnames: [2, '[]string'] },
  // Not covered: resourceClaimStatuses, extendedResourceClaimStatus, nodeAllocatableResourceClaimStatuses, volumeHealth.
  PodStatus: {
    phase: [1, 'string'],
    conditions: [2, '[]PodCondition'],
    message: [3, 'string'],
    reason: [4, 'string'],
    hostIP: [5, 'string'],
    podIP: [6, 'string'],
    startTime: [7, '*Time'],
    containerStatuses: [8, '[]ContainerStatus'],
    qosClass: [9, 'string'],
    initContainerStatuses: [10, '[]ContainerStatus'],
    nominatedNodeName: [11, 'string'],
    podIPs: [12, '[]PodIP'],
    ephemeralContainerStatuses: [13, '[]ContainerStatus'],
    resize: [14, 'string'],
    hostIPs: [16, '[]HostIP'],
    observedGeneration: [17, 'int64'],
    allocatedResources: [19, 'map<Quantity>'],
    resources: [20, '*ResourceRequirements'],
  },
  PodCondition: {
    type: [1, 'string'],
    status: [2, 'string'],
    lastProbeTime: [3, 'Time'],
    lastTransitionTime: [4, 'Time'],
    reason: [5, 'string'],
    message: [6, 'string'],
    observedGeneration: [7, 'int64'],
  },
  HostIP: { ip: [1, 'string'] },
  PodIP: { ip: [1, 'string'] },
  // Not covered: volumeMounts, user, allocatedResourcesStatus.
  ContainerStatus: {
    name: [1, 'string'],
    state: [2, 'ContainerState'],
    lastState: [3, 'ContainerState'],
    ready: [4, 'bool'],
    restartCount: [5, 'int32'],
    image: [6, 'string'],
    imageID: [7, 'string'],
    containerID: [8, 'string'],
    started: [9, '*bool'],
    allocatedResources: [10, 'map<Quantity>'],
    resources: [11, '*ResourceRequirements'],
    stopSignal: [15, '*string'],
  },
  ContainerState: {
    waiting: [1, '*ContainerStateWaiting'],
    running: [2, '*ContainerStateRunning'],
    terminated: [3, '*ContainerStateTerminated'],
  },
  ContainerStateRunning: { startedAt: [1, 'Time'] },
  ContainerStateWaiting: { reason: [1, 'string'], message: [2, 'string'] },
  ContainerStateTerminated: {
    exitCode: [1, 'int32'],
    signal: [2, 'int32'],
    reason: [3, 'string'],
    message: [4, 'string'],
    startedAt: [5, 'Time'],
    finishedAt: [6, 'Time'],
    containerID: [7, 'string'],
  },
  Node: { metadata: [1, 'ObjectMeta'], spec: [2, 'NodeSpec'], status: [3, 'NodeStatus'] },
  NodeList: { metadata: [1, 'ListMeta'], items: [2, '[]Node'] },
  // Not covered: configSource, podPreemptionPolicy.
  NodeSpec: {
    podCIDR: [1, 'string'],
    externalID: [2, 'string'],
    providerID: [3, 'string'],
    unschedulable: [4, 'bool'],
    taints: [5, '[]Taint'],
    podCIDRs: [7, '[]string'],
  },
  Taint: { key: [1, 'string'], value: [2, 'string'], effect: [3, 'string'], timeAdded: [4, '*Time'] },
  // Not covered: config, runtimeHandlers, features.
  NodeStatus: {
    capacity: [1, 'map<Quantity>'],
    allocatable: [2, 'map<Quantity>'],
    phase: [3, 'string'],
    conditions: [4, '[]NodeCondition'],
    addresses: [5, '[]NodeAddress'],
    daemonEndpoints: [6, 'NodeDaemonEndpoints'],
    nodeInfo: [7, 'NodeSystemInfo'],
    images: [8, '[]ContainerImage'],
    volumesInUse: [9, '[]string'],
    volumesAttached: [10, '[]AttachedVolume'],
    declaredFeatures: [14, '[]string'],
  },
  NodeCondition: {
    type: [1, 'string'],
    status: [2, 'string'],
    lastHeartbeatTime: [3, 'Time'],
    lastTransitionTime: [4, 'Time'],
    reason: [5, 'string'],
    message: [6, 'string'],
  },
  NodeAddress: { type: [1, 'string'], address: [2, 'string'] },
  NodeDaemonEndpoints: { kubeletEndpoint: [1, 'DaemonEndpoint'] },
  DaemonEndpoint: { Port: [1, 'int32'] },
  NodeSystemInfo: {
    machineID: [1, 'string'],
    systemUUID: [2, 'string'],
    bootID: [3, 'string'],
    kernelVersion: [4, 'string'],
    osImage: [5, 'string'],
    containerRuntimeVersion: [6, 'string'],
    kubeletVersion: [7, 'string'],
    kubeProxyVersion: [8, 'string'],
    operatingSystem: [9, 'string'],
    architecture: [10, 'string'],
    swap: [11, '*NodeSwapStatus'],
  },
  NodeSwapStatus: { capacity: [1, '*int64'] },
  ContainerImage: { names: [1, '[]string'], sizeBytes: [2, 'int64'] },
  AttachedVolume: { name: [1, 'string'], devicePath: [2, 'string'] },
  Namespace: { metadata: [1, 'ObjectMeta'], spec: [2, 'NamespaceSpec'], status: [3, 'NamespaceStatus'] },
  NamespaceList: { metadata: [1, 'ListMeta'], items: [2, '[]Namespace'] },
  NamespaceSpec: { finalizers: [1, '[]string'] },
  NamespaceStatus: { phase: [1, 'string'], conditions: [2, '[]NamespaceCondition'] },
  NamespaceCondition: {
    type: [1, 'string'],
    status: [2, 'string'],
    lastTransitionTime: [4, 'Time'],
    reason: [5, 'string'],
    message: [6, 'string'],
  },
};

const SCALARS = new Set(['string', 'bool', 'int32', 'int64']);
/** Messages with a marshaller of their own rather than a table entry. */
const SPECIAL = new Set(['Time', 'Quantity', 'IntOrString']);

interface Field {
  json: string;
  no: number;
  /** A scalar, a special message or a table message. */
  type: string;
  shape: 'value' | 'pointer' | 'list' | 'map';
  inline: boolean;
}

interface Message {
  name: string;
  /** In ascending field number. */
  fields: Field[];
  /** Every JSON field name of the message, an inline struct's included. */
  known: Set<string>;
}

const compiled = new Map<string, Message>();

function messageOf(name: string): Message {
  let msg = compiled.get(name);
  if (msg) return msg;
  const table = SCHEMA[name];
  if (!table) throw new Error(`protobuf schema: no message ${name}`);
  msg = { name, fields: [], known: new Set() };
  compiled.set(name, msg);
  for (const [json, [no, spec]] of Object.entries(table)) {
    const inline = json === '...';
    let type = spec;
    let shape: Field['shape'] = 'value';
    if (spec.startsWith('*')) [shape, type] = ['pointer', spec.slice(1)];
    else if (spec.startsWith('[]')) [shape, type] = ['list', spec.slice(2)];
    else if (spec.startsWith('map<')) [shape, type] = ['map', spec.slice(4, -1)];
    if (!SCALARS.has(type) && !SPECIAL.has(type) && !SCHEMA[type])
      throw new Error(`protobuf schema: ${name}.${json} has the unknown type ${spec}`);
    msg.fields.push({ json, no, type, shape, inline });
    if (!inline) msg.known.add(json);
  }
  msg.fields.sort((a, b) => a.no - b.no);
  for (const f of msg.fields) if (f.inline) for (const k of messageOf(f.type).known) msg.known.add(k);
  return msg;
}

// ---- a growing buffer ----

class Writer {
  buf = Buffer.allocUnsafe(4096);
  pos = 0;

  reset(): void {
    this.pos = 0;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** A non-negative integer below 2^53, or a negative one as its 64-bit two's complement (10 bytes). */
  varint(n: number): void {
    this.room(10);
    if (n < 0) {
      let v = BigInt.asUintN(64, BigInt(n));
      while (v >= 0x80n) {
        this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
        v >>= 7n;
      }
      this.buf[this.pos++] = Number(v);
      return;
    }
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  tag(no: number, wireType: 0 | 2): void {
    this.varint(no * 8 + wireType);
  }

  string(s: string): void {
    const len = Buffer.byteLength(s);
    this.varint(len);
    this.room(len);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  /** Starts a length-delimited body; end() writes its length in front of it. */
  begin(): number {
    this.room(1);
    return this.pos++;
  }

  end(start: number): void {
    const len = this.pos - start - 1;
    const size = varintSize(len);
    if (size > 1) {
      this.room(size - 1);
      this.buf.copyWithin(start + size, start + 1, this.pos);
      this.pos += size - 1;
    }
    let n = len;
    let at = start;
    while (n >= 0x80) {
      this.buf[at++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[at] = n;
  }

  take(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

// ---- values ----

function describe(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

function fail(path: string, what: string, v: unknown): never {
  throw new Error(`${path}: ${what}, not ${describe(v)} (protobuf encoder, test/kit/k8s/protobuf.ts)`);
}

function int(v: JsonValue, type: string, path: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(path, `expected an ${type}`, v);
  if (type === 'int32' && (v < -0x80000000 || v > 0x7fffffff)) fail(path, 'expected an int32', v);
  return v;
}

/** Seconds since the epoch of an RFC 3339 time, as metav1.Time's JSON has it. */
function seconds(v: JsonValue, path: string): number {
  if (typeof v !== 'string') fail(path, 'expected an RFC 3339 time', v);
  const ms = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(v) ? Date.parse(v) : Number.NaN;
  if (Number.isNaN(ms)) fail(path, 'expected an RFC 3339 time', v);
  return Math.floor(ms / 1000);
}

/** A value of `type` (present: not undefined or null) or, for undefined, the type's zero value. */
function writeValue(w: Writer, f: Field, type: string, v: JsonValue | undefined, path: string): void {
  const present = v !== undefined && v !== null;
  switch (type) {
    case 'string':
      if (present && typeof v !== 'string') fail(path, 'expected a string', v);
      w.tag(f.no, 2);
      w.string(present ? (v as string) : '');
      return;
    case 'bool':
      if (present && typeof v !== 'boolean') fail(path, 'expected a boolean', v);
      w.tag(f.no, 0);
      w.varint(v === true ? 1 : 0);
      return;
    case 'int32':
    case 'int64':
      w.tag(f.no, 0);
      w.varint(present ? int(v, type, path) : 0);
      return;
  }
  w.tag(f.no, 2);
  const start = w.begin();
  switch (type) {
    case 'Time':
      // The zero time (absent, null, "") is an empty message.
      if (present && v !== '') {
        w.tag(1, 0);
        w.varint(seconds(v, path));
        w.tag(2, 0);
        w.varint(0);
      }
      break;
    case 'Quantity':
      if (present && typeof v !== 'string' && typeof v !== 'number') fail(path, 'expected a quantity', v);
      w.tag(1, 2);
      w.string(present ? String(v) : '0');
      break;
    case 'IntOrString':
      if (present && typeof v !== 'string' && typeof v !== 'number') fail(path, 'expected an int or a string', v);
      w.tag(1, 0);
      w.varint(typeof v === 'string' ? 1 : 0);
      w.tag(2, 0);
      w.varint(typeof v === 'number' ? int(v, 'int32', path) : 0);
      w.tag(3, 2);
      w.string(typeof v === 'string' ? v : '');
      break;
    default:
      if (present && !isObject(v)) fail(path, `expected an object (${type})`, v);
      writeFields(w, messageOf(type), present ? (v as JsonObject) : {}, path);
  }
  w.end(start);
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function writeFields(w: Writer, msg: Message, obj: JsonObject, path: string, inline = false): void {
  if (!inline) {
    for (const key of Object.keys(obj)) {
      if (!msg.known.has(key) && obj[key] !== undefined)
        throw new Error(
          `${path}.${key}: not in the protobuf schema of ${msg.name} (add it to test/kit/k8s/protobuf.ts SCHEMA)`,
        );
    }
  }
  for (const f of msg.fields) {
    if (f.inline) {
      w.tag(f.no, 2);
      const start = w.begin();
      writeFields(w, messageOf(f.type), obj, path, true);
      w.end(start);
      continue;
    }
    const v = obj[f.json];
    const at = `${path}.${f.json}`;
    if (f.shape === 'value') writeValue(w, f, f.type, v, at);
    else if (f.shape === 'pointer') {
      if (v !== undefined && v !== null) writeValue(w, f, f.type, v, at);
    } else if (f.shape === 'list') {
      if (v === undefined || v === null) continue;
      if (!Array.isArray(v)) fail(at, 'expected a list', v);
      for (let i = 0; i < v.length; i++) writeValue(w, f, f.type, v[i], `${at}[${i}]`);
    } else {
      if (v === undefined || v === null) continue;
      if (!isObject(v)) fail(at, 'expected a map', v);
      // gogo sorts a map's keys (as Go compares strings: by bytes).
      const keys = Object.keys(v).sort(byteOrder);
      const key: Field = { json: 'key', no: 1, type: 'string', shape: 'value', inline: false };
      const value: Field = { json: 'value', no: 2, type: f.type, shape: 'value', inline: false };
      for (const k of keys) {
        if (v[k] === undefined) continue;
        w.tag(f.no, 2);
        const start = w.begin();
        writeValue(w, key, 'string', k, at);
        writeValue(w, value, f.type, v[k], `${at}[${JSON.stringify(k)}]`);
        w.end(start);
      }
    }
  }
}

const writer = new Writer();

/**
 * One message of the table from its JSON: the bytes of its fields (no tag, no length). For tests of
 * the encoder itself; the server uses encodeItem, encodeList and encodeStatus.
 */
export function encodeMessage(message: string, json: unknown, path = message): Buffer {
  if (!isObject(json)) fail(path, `expected an object (${message})`, json);
  writer.reset();
  writeFields(writer, messageOf(message), json, path);
  return writer.take();
}

const ITEM_PATHS: Record<ItemKind, string> = { Pod: 'pod', Node: 'node', Namespace: 'namespace' };

/**
 * A Pod, Node or Namespace as an item of a list (the message alone, without the envelope): kind and
 * apiVersion are dropped (the items of a list have none). An object whose metadata is not an object
 * (a malformed one a test stored) cannot be written in protobuf: it throws, as an unknown field does.
 */
export function encodeItem(kind: ItemKind, obj: unknown): Buffer {
  const path = ITEM_PATHS[kind];
  if (!isObject(obj)) fail(path, `expected an object (${kind})`, obj);
  if (!isObject(obj.metadata))
    fail(`${path}.metadata`, 'expected an object (protobuf has no object without metadata)', obj.metadata);
  const { kind: _kind, apiVersion: _apiVersion, ...item } = obj;
  return encodeMessage(kind, item, path);
}

/** runtime.Unknown's fields up to (and with) the tag and length of `raw`. */
function envelopeHead(kind: string, rawLength: number): Buffer {
  const w = new Writer();
  w.tag(1, 2);
  const start = w.begin();
  w.tag(1, 2);
  w.string('v1');
  w.tag(2, 2);
  w.string(kind);
  w.end(start);
  w.tag(2, 2);
  w.varint(rawLength);
  return w.take();
}

/** Unknown's contentEncoding and contentType, both "". */
const ENVELOPE_TAIL = Buffer.from([0x1a, 0x00, 0x22, 0x00]);

export interface ListMetaJson {
  resourceVersion?: string;
  continue?: string;
  remainingItemCount?: number;
  [field: string]: JsonValue | undefined;
}

/**
 * A whole list body in parts (magic, envelope, ListMeta, each item's tag and length, the items' own
 * buffers as given, the envelope's end): written together, nothing of the items is copied.
 */
export function encodeList(listKind: ListKind, listMeta: ListMetaJson, items: readonly Buffer[]): Buffer[] {
  const meta = encodeMessage('ListMeta', listMeta as JsonObject, 'listMeta');
  // The items' tags and lengths, in one buffer.
  let prefixBytes = 0;
  let itemBytes = 0;
  for (const item of items) {
    prefixBytes += 1 + varintSize(item.length);
    itemBytes += item.length;
  }
  const prefixes = Buffer.allocUnsafe(prefixBytes);
  const metaField = 1 + varintSize(meta.length) + meta.length;
  const rawLength = metaField + prefixBytes + itemBytes;
  const head = envelopeHead(listKind, rawLength);
  const first = Buffer.allocUnsafe(MAGIC.length + head.length + metaField);
  let at = MAGIC.copy(first, 0);
  at += head.copy(first, at);
  first[at++] = 0x0a;
  at = writeVarintAt(first, at, meta.length);
  meta.copy(first, at);
  const parts: Buffer[] = [first];
  let p = 0;
  for (const item of items) {
    const from = p;
    prefixes[p++] = 0x12;
    p = writeVarintAt(prefixes, p, item.length);
    parts.push(prefixes.subarray(from, p), item);
  }
  parts.push(ENVELOPE_TAIL);
  return parts;
}

function writeVarintAt(buf: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[at++] = n;
  return at;
}

/** A Status (ApiError.toStatus()) as a whole protobuf body: magic and envelope (kind Status, v1). */
export function encodeStatus(status: unknown): Buffer {
  if (!isObject(status)) fail('status', 'expected an object (Status)', status);
  const { kind: _kind, apiVersion: _apiVersion, ...rest } = status;
  const raw = encodeMessage('Status', rest, 'status');
  return Buffer.concat([MAGIC, envelopeHead('Status', raw.length), raw, ENVELOPE_TAIL]);
}

// ---- content negotiation ----

const SERVED = ['application/json', 'application/yaml', PROTOBUF] as const;

/**
 * Whether a request with this Accept header gets protobuf from kube-apiserver for a type it can
 * serve in protobuf (its negotiation: the clauses by q-value, then the more specific first; the
 * first clause that names or matches a served media type wins, a wildcard meaning JSON, the first
 * served). A clause asking for a conversion (`;as=Table`) or with q=0 is skipped. No header: JSON.
 */
export function prefersProtobuf(accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return false;
  const clauses = accept
    .split(',')
    .map((text, order) => {
      const [range = '', ...params] = text.split(';').map((s) => s.trim());
      let q = 1;
      let conversion = false;
      for (const param of params) {
        const [k = '', val = ''] = param.split('=').map((s) => s.trim());
        if (k.toLowerCase() === 'q') q = Number.parseFloat(val);
        if (k.toLowerCase() === 'as') conversion = true;
      }
      const [type = '', subtype = ''] = range.toLowerCase().split('/');
      const specificity = type === '*' ? 0 : subtype === '*' ? 1 : 2;
      return { type, subtype, q: Number.isNaN(q) ? 0 : q, conversion, specificity, order };
    })
    .filter((c) => c.q > 0 && !c.conversion && c.type !== '' && c.subtype !== '')
    .sort((a, b) => b.q - a.q || b.specificity - a.specificity || a.order - b.order);
  for (const c of clauses) {
    const match = SERVED.find((m) => {
      const [type, subtype] = m.split('/');
      return (c.type === '*' || c.type === type) && (c.subtype === '*' || c.subtype === subtype);
    });
    if (match !== undefined) return match === PROTOBUF;
  }
  return false;
}

// ---- reading (for a bench's pages; tests read the wire format with their own reader) ----

/** The kind and ListMeta of a protobuf list body (resourceVersion, continue, remainingItemCount). */
export function readListMeta(body: Uint8Array): {
  kind: string;
  resourceVersion: string;
  continue: string;
  remainingItemCount?: number;
} {
  if (body.length < 4 || !MAGIC.equals(body.subarray(0, 4))) throw new Error('not a Kubernetes protobuf body');
  const out: { kind: string; resourceVersion: string; continue: string; remainingItemCount?: number } = {
    kind: '',
    resourceVersion: '',
    continue: '',
  };
  const text = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  for (const [no, v] of fieldsOf(body.subarray(4))) {
    if (no === 1 && v instanceof Uint8Array)
      for (const [n, t] of fieldsOf(v)) if (n === 2 && t instanceof Uint8Array) out.kind = text(t);
    if (no !== 2 || !(v instanceof Uint8Array)) continue;
    for (const [n, list] of fieldsOf(v)) {
      if (n !== 1 || !(list instanceof Uint8Array)) continue;
      for (const [m, x] of fieldsOf(list)) {
        if (m === 2 && x instanceof Uint8Array) out.resourceVersion = text(x);
        if (m === 3 && x instanceof Uint8Array) out.continue = text(x);
        if (m === 4 && typeof x === 'number') out.remainingItemCount = x;
      }
      break;
    }
  }
  return out;
}

/** The fields of a message: varints (below 2^53) as numbers, length-delimited ones as bytes. */
function* fieldsOf(buf: Uint8Array): Generator<[number, number | Uint8Array]> {
  let at = 0;
  const varint = (): number => {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = buf[at++];
      if (b === undefined) throw new Error('truncated protobuf');
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 0x80;
    }
  };
  while (at < buf.length) {
    const key = varint();
    const no = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) yield [no, varint()];
    else if (wire === 2) {
      const len = varint();
      if (at + len > buf.length) throw new Error('truncated protobuf');
      yield [no, buf.subarray(at, at + len)];
      at += len;
    } else throw new Error(`protobuf wire type ${wire} is not read here`);
  }
}
