// CNI_ARGS: "K1=V1;K2=V2" (CNI 1.1 §2; reference pkg/types LoadArgs). A pair without exactly one "="
// is an error, and so is a key the plugin does not know, unless IgnoreUnknown is true. Kubernetes
// runtimes send IgnoreUnknown=1 with K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID and
// K8S_POD_UID.
import { CniError, ErrorCode } from './errors.ts';

export const K8S_ARG_KEYS = ['K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID'] as const;

export interface KubernetesPodArgs {
  namespace?: string;
  name?: string;
  infraContainerId?: string;
  uid?: string;
}

// Go's strconv.ParseBool, which the reference UnmarshallableBool uses.
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

function parseBool(key: string, value: string): boolean {
  if (TRUE.has(value)) return true;
  if (FALSE.has(value)) return false;
  throw new CniError(ErrorCode.InvalidEnvironment, `invalid CNI_ARGS: ${key}="${value}" is not a boolean`);
}

/**
 * Parses CNI_ARGS into a map of the keys in `known` (IgnoreUnknown is always known). Unknown keys
 * are an error (code 4) unless IgnoreUnknown is true, as in the reference.
 */
export function parseCniArgs(raw: string, known: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (raw === '') return out;
  const pairs: [string, string][] = [];
  for (const item of raw.split(';')) {
    const kv = item.split('=');
    if (kv.length !== 2) {
      throw new CniError(ErrorCode.InvalidEnvironment, `invalid CNI_ARGS pair "${item}": expected KEY=VALUE`);
    }
    pairs.push([kv[0] as string, kv[1] as string]);
  }
  const ignore = pairs.find(([k]) => k === 'IgnoreUnknown');
  const ignoreUnknown = ignore ? parseBool('IgnoreUnknown', ignore[1]) : false;
  const unknown: string[] = [];
  for (const [k, v] of pairs) {
    if (k === 'IgnoreUnknown') continue;
    if (known.includes(k)) out.set(k, v);
    else unknown.push(k);
  }
  if (unknown.length > 0 && !ignoreUnknown) {
    throw new CniError(
      ErrorCode.InvalidEnvironment,
      `invalid CNI_ARGS: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}`,
      'set IgnoreUnknown=1 to ignore keys the plugin does not know',
    );
  }
  return out;
}

export function kubernetesPodArgs(args: Map<string, string>): KubernetesPodArgs {
  const pod: KubernetesPodArgs = {};
  const ns = args.get('K8S_POD_NAMESPACE');
  const name = args.get('K8S_POD_NAME');
  const infra = args.get('K8S_POD_INFRA_CONTAINER_ID');
  const uid = args.get('K8S_POD_UID');
  if (ns) pod.namespace = ns;
  if (name) pod.name = name;
  if (infra) pod.infraContainerId = infra;
  if (uid) pod.uid = uid;
  return pod;
}
