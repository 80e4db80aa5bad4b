// One internal result (the CNI 1.1 shape) and its conversion to every version Strand speaks
// (CNI 1.1 §5 "Success"; reference pkg/types/100 and pkg/types/040 conversions).
// Results are also read back: a prevResult in any supported version, and a delegated IPAM result.
import type * as z from 'zod';
import { ipFamily } from '../net/text.ts';
import { zod } from '../util/lazy-zod.ts';
import { isObject, isStringArray, isUint, type Json } from '../util/plain.ts';
import { CniError, ErrorCode } from './errors.ts';
import { atLeast, type SpecVersion } from './versions.ts';

export interface Interface {
  name: string;
  mac?: string;
  /** 1.1 */
  mtu?: number;
  sandbox?: string;
  /** 1.1 */
  socketPath?: string;
  /** 1.1 */
  pciID?: string;
}

export interface IpConfig {
  /** CIDR notation: the address with the prefix length of its subnet. */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

export interface Route {
  dst: string;
  gw?: string;
  /** 1.1 route attributes */
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Result {
  interfaces?: Interface[];
  ips?: IpConfig[];
  routes?: Route[];
  dns?: Dns;
}

/** The CNI result's `version` of an address ("4" or "6", as results before 1.0.0 carry it). */
export function ipVersionOf(cidr: string): '4' | '6' {
  const addr = cidr.split('/')[0] ?? '';
  const f = ipFamily(addr);
  if (f === 0) throw new CniError(ErrorCode.DecodingFailure, `invalid IP address "${cidr}"`);
  return f === 4 ? '4' : '6';
}

function dnsJson(dns: Dns | undefined): Dns {
  const out: Dns = {};
  if (!dns) return out;
  if (dns.nameservers?.length) out.nameservers = [...dns.nameservers];
  if (dns.domain) out.domain = dns.domain;
  if (dns.search?.length) out.search = [...dns.search];
  if (dns.options?.length) out.options = [...dns.options];
  return out;
}

function defined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

/** The result as the JSON object of `version`, dropping what that version does not define. */
export function resultToVersion(result: Result, version: SpecVersion): Record<string, unknown> {
  const v11 = atLeast(version, '1.1.0');
  const v1 = atLeast(version, '1.0.0');
  const out: Record<string, unknown> = { cniVersion: version };
  if (result.interfaces?.length) {
    out.interfaces = result.interfaces.map((i) =>
      defined({
        name: i.name,
        mac: i.mac || undefined,
        mtu: v11 && i.mtu ? i.mtu : undefined,
        sandbox: i.sandbox || undefined,
        socketPath: v11 && i.socketPath ? i.socketPath : undefined,
        pciID: v11 && i.pciID ? i.pciID : undefined,
      }),
    );
  }
  if (result.ips?.length) {
    out.ips = result.ips.map((ip) =>
      defined({
        version: v1 ? undefined : ipVersionOf(ip.address),
        interface: ip.interface,
        address: ip.address,
        gateway: ip.gateway || undefined,
      }),
    );
  }
  if (result.routes?.length) {
    out.routes = result.routes.map((r) =>
      defined({
        dst: r.dst,
        gw: r.gw || undefined,
        mtu: v11 ? r.mtu : undefined,
        advmss: v11 ? r.advmss : undefined,
        priority: v11 ? r.priority : undefined,
        table: v11 ? r.table : undefined,
        scope: v11 ? r.scope : undefined,
      }),
    );
  }
  out.dns = dnsJson(result.dns);
  return out;
}

export function formatResult(result: Result, version: SpecVersion): string {
  return JSON.stringify(resultToVersion(result, version));
}

const isResultCidr = (s: string): boolean => /^[^/]+\/\d{1,3}$/.test(s) && ipFamily(s.split('/')[0] ?? '') !== 0;

let schema: z.ZodType | undefined;
// Built on first use, and only for a result plainResult does not take.
export function resultSchema(): z.ZodType {
  if (schema) return schema;
  const z = zod();
  const cidr = z.string().refine(isResultCidr, 'not an IP address in CIDR notation');
  const ip = z.string().refine((s) => ipFamily(s) !== 0, 'not an IP address');
  const uint = z.number().int().nonnegative();
  schema = z.object({
    cniVersion: z.string().optional(),
    interfaces: z
      .array(
        z.object({
          name: z.string(),
          mac: z.string().optional(),
          mtu: uint.optional(),
          sandbox: z.string().optional(),
          socketPath: z.string().optional(),
          pciID: z.string().optional(),
        }),
      )
      .nullish(),
    ips: z
      .array(
        z.object({
          version: z.enum(['4', '6']).optional(),
          address: cidr,
          gateway: ip.optional(),
          interface: uint.nullish(),
        }),
      )
      .nullish(),
    routes: z
      .array(
        z.object({
          dst: cidr,
          gw: ip.optional(),
          mtu: uint.optional(),
          advmss: uint.optional(),
          priority: uint.optional(),
          table: uint.optional(),
          scope: uint.optional(),
        }),
      )
      .nullish(),
    dns: z
      .object({
        nameservers: z.array(z.string()).nullish(),
        domain: z.string().optional(),
        search: z.array(z.string()).nullish(),
        options: z.array(z.string()).nullish(),
      })
      .nullish(),
  });
  return schema;
}

/** Human text for a zod failure: each problem with the path of the field it is about. */
export function describeIssues(err: z.ZodError, prefix = ''): string {
  return err.issues
    .map((i) => {
      const path = [prefix, ...i.path.map(String)].filter((p) => p !== '').join('.');
      return path ? `${path}: ${i.message}` : i.message;
    })
    .join('; ');
}

type ResultIn = {
  interfaces?: Interface[] | null;
  ips?: { version?: '4' | '6'; address: string; gateway?: string; interface?: number | null }[] | null;
  routes?: Route[] | null;
  dns?: { nameservers?: string[] | null; domain?: string; search?: string[] | null; options?: string[] | null } | null;
};

const isStr = (v: unknown): v is string => typeof v === 'string';

/**
 * Copies the keys of `v` that `fields` names after checking each (absent is fine), as z.object does
 * (unknown keys dropped); undefined when a field fails its check.
 */
function plainFields<T>(
  v: unknown,
  fields: Record<string, (x: unknown) => boolean>,
  required: readonly string[] = [],
): T | undefined {
  if (!isObject(v)) return undefined;
  const out: Json = {};
  for (const k of required) if (v[k] === undefined) return undefined;
  for (const [k, check] of Object.entries(fields)) {
    const x = v[k];
    if (x === undefined) continue;
    if (!check(x)) return undefined;
    out[k] = x;
  }
  return out as T;
}

const INTERFACE_FIELDS = { name: isStr, mac: isStr, mtu: isUint, sandbox: isStr, socketPath: isStr, pciID: isStr };
const IP_FIELDS = {
  version: (x: unknown) => x === '4' || x === '6',
  address: (x: unknown) => isStr(x) && isResultCidr(x),
  gateway: (x: unknown) => isStr(x) && ipFamily(x) !== 0,
  interface: (x: unknown) => x === null || isUint(x),
};
const ROUTE_FIELDS = {
  dst: (x: unknown) => isStr(x) && isResultCidr(x),
  gw: (x: unknown) => isStr(x) && ipFamily(x) !== 0,
  mtu: isUint,
  advmss: isUint,
  priority: isUint,
  table: isUint,
  scope: isUint,
};
const nullishStrings = (x: unknown) => x === null || isStringArray(x);
const DNS_FIELDS = { nameservers: nullishStrings, domain: isStr, search: nullishStrings, options: nullishStrings };

function plainList<T>(
  v: unknown,
  fields: Record<string, (x: unknown) => boolean>,
  required: readonly string[],
): T[] | null | undefined | false {
  if (v === undefined || v === null) return v;
  if (!Array.isArray(v)) return false;
  const out: T[] = [];
  for (const item of v) {
    const x = plainFields<T>(item, fields, required);
    if (!x) return false;
    out.push(x);
  }
  return out;
}

/** A result the schema plainly accepts, as the schema would give it; undefined for anything else. */
export function plainResult(json: unknown): ResultIn | undefined {
  if (!isObject(json) || (json.cniVersion !== undefined && !isStr(json.cniVersion))) return undefined;
  const interfaces = plainList<Interface>(json.interfaces, INTERFACE_FIELDS, ['name']);
  const ips = plainList<NonNullable<ResultIn['ips']>[number]>(json.ips, IP_FIELDS, ['address']);
  const routes = plainList<Route>(json.routes, ROUTE_FIELDS, ['dst']);
  if (interfaces === false || ips === false || routes === false) return undefined;
  const out: ResultIn & { cniVersion?: string } = {};
  if (json.cniVersion !== undefined) out.cniVersion = json.cniVersion;
  if (interfaces !== undefined) out.interfaces = interfaces;
  if (ips !== undefined) out.ips = ips;
  if (routes !== undefined) out.routes = routes;
  if (json.dns !== undefined) {
    if (json.dns === null) out.dns = null;
    else {
      const dns = plainFields<NonNullable<ResultIn['dns']>>(json.dns, DNS_FIELDS);
      if (!dns) return undefined;
      out.dns = dns;
    }
  }
  return out;
}

/**
 * Reads a result of any supported version (a prevResult, or what a delegated plugin printed) into
 * the internal shape. `what` names it in errors.
 */
export function parseResult(json: unknown, what: string): Result {
  let src = plainResult(json);
  if (!src) {
    const parsed = resultSchema().safeParse(json);
    if (!parsed.success) {
      throw new CniError(ErrorCode.DecodingFailure, `could not parse ${what}: ${describeIssues(parsed.error)}`);
    }
    src = parsed.data as ResultIn;
  }
  const out: Result = {};
  if (src.interfaces?.length) out.interfaces = src.interfaces.map((i) => defined({ ...i }));
  if (src.ips?.length) {
    out.ips = src.ips.map((ip) => {
      if (ip.version && ip.version !== ipVersionOf(ip.address)) {
        throw new CniError(
          ErrorCode.DecodingFailure,
          `could not parse ${what}: address ${ip.address} is not IPv${ip.version}`,
        );
      }
      return defined({ address: ip.address, gateway: ip.gateway, interface: ip.interface ?? undefined });
    });
  }
  if (src.routes?.length) out.routes = src.routes.map((rt) => defined({ ...rt }));
  if (src.dns) {
    const dns = dnsJson({
      nameservers: src.dns.nameservers ?? undefined,
      domain: src.dns.domain,
      search: src.dns.search ?? undefined,
      options: src.dns.options ?? undefined,
    });
    if (Object.keys(dns).length > 0) out.dns = dns;
  }
  return out;
}
