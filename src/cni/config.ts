// The network configuration a plugin reads from stdin (CNI 1.1 §1 and §3): the fields every plugin
// shares, checked here in the order that gives each problem its own error code. Plugins validate
// their own fields with parseFields().
import type * as z from 'zod';
import { zod, type Zod } from '../util/lazy-zod.ts';
import { isObject, isStringArray, optional, type Json } from '../util/plain.ts';
import { CniError, ErrorCode } from './errors.ts';
import type { Verb } from './env.ts';
import { describeIssues, parseResult, type Dns, type Result } from './result.ts';
import { atLeast, negotiateVersion, SUPPORTED_VERSIONS, type SpecVersion } from './versions.ts';

export interface Attachment {
  containerID: string;
  ifname: string;
}

export interface NetConf {
  /** The version this request runs at (negotiated from cniVersion and cniVersions). */
  cniVersion: SpecVersion;
  name: string;
  type: string;
  ipam?: { type?: string } & Record<string, unknown>;
  dns?: Dns;
  prevResult?: Result;
  runtimeConfig: Record<string, unknown>;
  capabilities: Record<string, boolean>;
  args?: Record<string, unknown>;
  /** GC (1.1): the attachments to keep. */
  validAttachments?: Attachment[];
  disableCheck: boolean;
  disableGC: boolean;
}

export const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Parses `schema` against the raw config; a failure is code 7 naming each field and why. */
export function parseFields<T extends z.ZodType>(schema: T, raw: unknown, prefix = ''): z.infer<T> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new CniError(
      ErrorCode.InvalidNetworkConfig,
      `invalid network configuration: ${describeIssues(parsed.error, prefix)}`,
    );
  }
  return parsed.data;
}

// The reference accepts the strings "true"/"false" for these flags as well as booleans.
const looseBool = (z: Zod) =>
  z
    .union([z.boolean(), z.enum(['true', 'false'])])
    .optional()
    .transform((v) => v === true || v === 'true');

/** The shared fields, as the schema (or plainBase) gives them. */
interface BaseFields {
  type: string;
  ipam?: { type?: string } & Json;
  dns?: Dns;
  runtimeConfig?: Json;
  capabilities?: Record<string, boolean>;
  args?: Json;
  'cni.dev/valid-attachments'?: Attachment[] | null;
  'cni.dev/attachments'?: Attachment[] | null;
  disableCheck: boolean;
  disableGC: boolean;
}

let baseSchema: z.ZodType | undefined;
/** The schema of the shared fields (exported for the test that holds plainBase to it). */
export function makeBaseSchema(): z.ZodType {
  const z = zod();
  const attachment = z.object({ containerID: z.string().min(1), ifname: z.string().min(1) });
  return z.looseObject({
    type: z
      .string()
      .min(1)
      .refine((t) => !/[/\\]/.test(t), 'must not contain "/" or "\\"'),
    ipam: z.looseObject({ type: z.string().optional() }).optional(),
    dns: z
      .object({
        nameservers: z.array(z.string()).optional(),
        domain: z.string().optional(),
        search: z.array(z.string()).optional(),
        options: z.array(z.string()).optional(),
      })
      .optional(),
    runtimeConfig: z.record(z.string(), z.unknown()).optional(),
    capabilities: z.record(z.string(), z.boolean()).optional(),
    args: z.record(z.string(), z.unknown()).optional(),
    // libcni sends null for "no valid attachments" (a Go nil slice).
    'cni.dev/valid-attachments': z.array(attachment).nullish(),
    'cni.dev/attachments': z.array(attachment).nullish(),
    disableCheck: looseBool(z),
    disableGC: looseBool(z),
  });
}

const DNS_KEYS = ['nameservers', 'domain', 'search', 'options'] as const;

/** dns as z.object gives it (unknown keys dropped), or undefined when it is not plainly valid. */
function plainDns(v: Json): Dns | undefined {
  const out: Dns = {};
  for (const k of DNS_KEYS) {
    const x = v[k];
    if (x === undefined) continue;
    if (k === 'domain') {
      if (typeof x !== 'string') return undefined;
      out.domain = x;
    } else {
      if (!isStringArray(x)) return undefined;
      out[k] = x;
    }
  }
  return out;
}

function plainAttachments(v: unknown): Attachment[] | null | undefined | false {
  if (v === undefined || v === null) return v;
  if (!Array.isArray(v)) return false;
  const out: Attachment[] = [];
  for (const a of v) {
    if (
      !isObject(a) ||
      typeof a.containerID !== 'string' ||
      a.containerID === '' ||
      typeof a.ifname !== 'string' ||
      a.ifname === ''
    )
      return false;
    out.push({ containerID: a.containerID, ifname: a.ifname });
  }
  return out;
}

function plainLooseBool(v: unknown): boolean | undefined {
  if (v === undefined || v === false || v === 'false') return false;
  if (v === true || v === 'true') return true;
  return undefined;
}

/**
 * The shared fields of a configuration the schema plainly accepts, with the schema's output, checked
 * in microseconds; undefined for anything else, which the schema then decides (and words the error).
 */
export function plainBase(raw: Json): BaseFields | undefined {
  const { type, ipam, dns, runtimeConfig, capabilities, args } = raw;
  if (typeof type !== 'string' || type === '' || /[/\\]/.test(type)) return undefined;
  if (ipam !== undefined && !(isObject(ipam) && optional(ipam.type, (t): t is string => typeof t === 'string')))
    return undefined;
  if (runtimeConfig !== undefined && !isObject(runtimeConfig)) return undefined;
  if (args !== undefined && !isObject(args)) return undefined;
  if (
    capabilities !== undefined &&
    !(isObject(capabilities) && Object.values(capabilities).every((c) => typeof c === 'boolean'))
  )
    return undefined;
  const disableCheck = plainLooseBool(raw.disableCheck);
  const disableGC = plainLooseBool(raw.disableGC);
  if (disableCheck === undefined || disableGC === undefined) return undefined;
  // A loose object, as the schema's: the other keys pass through.
  const out: BaseFields = { ...raw, type, disableCheck, disableGC };
  if (ipam !== undefined) out.ipam = ipam as BaseFields['ipam'];
  if (dns !== undefined) {
    const d = isObject(dns) ? plainDns(dns) : undefined;
    if (!d) return undefined;
    out.dns = d;
  }
  if (runtimeConfig !== undefined) out.runtimeConfig = runtimeConfig as Json;
  if (capabilities !== undefined) out.capabilities = capabilities as Record<string, boolean>;
  if (args !== undefined) out.args = args as Json;
  for (const key of ['cni.dev/valid-attachments', 'cni.dev/attachments'] as const) {
    if (!(key in raw)) continue;
    const list = plainAttachments(raw[key]);
    if (list === false) return undefined;
    out[key] = list;
  }
  return out;
}

// The earliest version at which each verb exists (reference skel: CHECK at 0.4.0, GC and STATUS at 1.1.0).
const VERB_SINCE: Partial<Record<Verb, string>> = { CHECK: '0.4.0', GC: '1.1.0', STATUS: '1.1.0' };

function decodeJson(stdin: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(stdin);
  } catch (err) {
    const why = stdin.trim() === '' ? 'stdin is empty' : (err as Error).message;
    throw new CniError(ErrorCode.DecodingFailure, `failed to decode network configuration: ${why}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new CniError(ErrorCode.DecodingFailure, 'failed to decode network configuration: not a JSON object');
  }
  return json as Record<string, unknown>;
}

/** Decodes and validates the shared part of a request's configuration for `verb`. */
export function loadNetConf(stdin: string, verb: Verb): { conf: NetConf; raw: Record<string, unknown> } {
  const raw = decodeJson(stdin);
  const cniVersion = raw.cniVersion;
  if (cniVersion === undefined || cniVersion === '') {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      'incompatible CNI versions: the network configuration has no cniVersion (0.2.0 is implied)',
      `plugin supports [${SUPPORTED_VERSIONS.join(' ')}]`,
    );
  }
  if (typeof cniVersion !== 'string') {
    throw new CniError(ErrorCode.DecodingFailure, 'failed to decode network configuration: cniVersion is not a string');
  }
  const cniVersions = raw.cniVersions;
  if (cniVersions !== undefined && (!Array.isArray(cniVersions) || !cniVersions.every((v) => typeof v === 'string'))) {
    throw new CniError(
      ErrorCode.DecodingFailure,
      'failed to decode network configuration: cniVersions is not a list of strings',
    );
  }
  const version = negotiateVersion(cniVersion, cniVersions as string[] | undefined);
  const since = VERB_SINCE[verb];
  if (since && !atLeast(version, since)) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `config version ${version} does not allow ${verb}`,
      `${verb} needs cniVersion ${since} or later`,
    );
  }
  const name = raw.name;
  if (typeof name !== 'string' || name === '') {
    throw new CniError(ErrorCode.InvalidNetworkConfig, 'missing network name');
  }
  if (!NETWORK_NAME.test(name)) {
    throw new CniError(
      ErrorCode.InvalidNetworkConfig,
      `invalid network name "${name}": must match ${NETWORK_NAME.source}`,
    );
  }
  const base = plainBase(raw) ?? (parseFields((baseSchema ??= makeBaseSchema()), raw) as BaseFields);
  const conf: NetConf = {
    cniVersion: version,
    name,
    type: base.type,
    runtimeConfig: base.runtimeConfig ?? {},
    capabilities: base.capabilities ?? {},
    disableCheck: base.disableCheck,
    disableGC: base.disableGC,
  };
  if (base.ipam) conf.ipam = base.ipam;
  if (base.dns) conf.dns = base.dns;
  if (base.args) conf.args = base.args;
  // libcni sends both keys: the released 1.1.0 text named it cni.dev/attachments.
  const validKey = 'cni.dev/valid-attachments' in raw ? 'cni.dev/valid-attachments' : 'cni.dev/attachments';
  if (validKey in raw) conf.validAttachments = base[validKey] ?? [];
  if (raw.prevResult !== undefined && raw.prevResult !== null) {
    try {
      conf.prevResult = parseResult(raw.prevResult, 'prevResult');
    } catch (err) {
      // DEL is best effort (CNI 1.1 §2): a damaged cached result must not stop the clean-up.
      if (verb !== 'DEL') throw err;
    }
  }
  return { conf, raw };
}
