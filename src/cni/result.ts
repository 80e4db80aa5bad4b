// One internal result (the CNI 1.1 shape) and its conversion to every version Strand speaks
// (CNI 1.1 §5 "Success"; reference pkg/types/100 and pkg/types/040 conversions).
// Results are also read back: a prevResult in any supported version, and a delegated IPAM result.
import { isIP } from 'node:net';
import * as z from 'zod';
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

/** "4" or "6" for an address in CIDR notation. */
export function familyOf(cidr: string): '4' | '6' {
  const addr = cidr.split('/')[0] ?? '';
  const f = isIP(addr);
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
        version: v1 ? undefined : familyOf(ip.address),
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

let schema: z.ZodType | undefined;
// Built on first use: schema construction is start-up time, and VERSION never needs it.
function resultSchema(): z.ZodType {
  if (schema) return schema;
  const cidr = z.string().refine((s) => /^[^/]+\/\d{1,3}$/.test(s) && isIP(s.split('/')[0] ?? '') !== 0, 'not an IP address in CIDR notation');
  const ip = z.string().refine((s) => isIP(s) !== 0, 'not an IP address');
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

/**
 * Reads a result of any supported version (a prevResult, or what a delegated plugin printed) into
 * the internal shape. `what` names it in errors.
 */
export function parseResult(json: unknown, what: string): Result {
  const parsed = resultSchema().safeParse(json);
  if (!parsed.success) {
    throw new CniError(ErrorCode.DecodingFailure, `could not parse ${what}: ${describeIssues(parsed.error)}`);
  }
  const out: Result = {};
  type In = {
    interfaces?: Interface[] | null;
    ips?: { version?: '4' | '6'; address: string; gateway?: string; interface?: number | null }[] | null;
    routes?: Route[] | null;
    dns?: { nameservers?: string[] | null; domain?: string; search?: string[] | null; options?: string[] | null } | null;
  };
  const src = parsed.data as In;
  if (src.interfaces?.length) out.interfaces = src.interfaces.map((i) => defined({ ...i }));
  if (src.ips?.length) {
    out.ips = src.ips.map((ip) => {
      if (ip.version && ip.version !== familyOf(ip.address)) {
        throw new CniError(ErrorCode.DecodingFailure, `could not parse ${what}: address ${ip.address} is not IPv${ip.version}`);
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
