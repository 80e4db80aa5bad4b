// The CNI_* environment of one invocation, validated per verb as CNI 1.1 §2 ("Parameters") and the
// reference skel (containernetworking/cni pkg/skel, pkg/utils) do.
import { CniError, ErrorCode } from './errors.ts';

export const VERBS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'] as const;
export type Verb = (typeof VERBS)[number];

export interface CniEnv {
  command: Verb;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS as given; parse it with parseCniArgs against the keys a plugin knows. */
  args: string;
  /** CNI_PATH split on ':' with empty entries dropped. */
  path: string[];
}

// Spec §2 lists what each verb requires; CNI_PATH is optional for the attachment verbs there (the
// reference skel demands it anyway; Strand asks for it only when it has to find a delegate).
const REQUIRED: Record<Verb, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  GC: [],
  STATUS: [],
  VERSION: [],
};

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** IFNAMSIZ is 16 including the terminating NUL. */
export const MAX_IFNAME = 15;

export function isVerb(s: string): s is Verb {
  return (VERBS as readonly string[]).includes(s);
}

/** Why an interface name is unusable, or undefined when it is fine (reference utils.ValidateInterfaceName). */
export function interfaceNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name.length > MAX_IFNAME) return `is longer than ${MAX_IFNAME} characters`;
  if (name === '.' || name === '..') return 'is "." or ".."';
  if (/[/:\s]/.test(name)) return 'contains "/", ":" or white space';
  return undefined;
}

export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const raw = env.CNI_COMMAND ?? '';
  if (!isVerb(raw)) {
    throw new CniError(
      ErrorCode.InvalidEnvironment,
      `unknown CNI_COMMAND "${raw}"`,
      `expected one of ${VERBS.join(', ')}`,
    );
  }
  const command = raw;
  const missing = REQUIRED[command].filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new CniError(ErrorCode.InvalidEnvironment, `required env variables [${missing.join(',')}] missing`);
  }
  const containerId = env.CNI_CONTAINERID ?? '';
  if (containerId !== '' && !CONTAINER_ID.test(containerId)) {
    throw new CniError(
      ErrorCode.InvalidEnvironment,
      `invalid CNI_CONTAINERID "${containerId}": must match ${CONTAINER_ID.source}`,
    );
  }
  const ifname = env.CNI_IFNAME ?? '';
  if (REQUIRED[command].includes('CNI_IFNAME')) {
    const problem = interfaceNameProblem(ifname);
    if (problem) throw new CniError(ErrorCode.InvalidEnvironment, `invalid CNI_IFNAME "${ifname}": ${problem}`);
  }
  return {
    command,
    containerId,
    netns: env.CNI_NETNS ?? '',
    ifname,
    args: env.CNI_ARGS ?? '',
    path: (env.CNI_PATH ?? '').split(':').filter((p) => p !== ''),
  };
}
