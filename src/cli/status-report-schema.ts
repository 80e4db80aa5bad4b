// The shape of `strand status -o json`, written once as its zod schema: the report's types are
// inferred from it (z.infer), so the schema scripts and tests check and the type the code builds
// cannot drift apart. The schema is built on first use, as the other CLI schemas are.
import * as z from 'zod';
import { apiSchema, policySummarySchema } from './agent-query.ts';

const str = () => z.string();
const sizes = () => z.record(z.string(), z.number());

function entryCheckSchema() {
  return z.object({
    object: z.enum(['route', 'neighbour', 'fdb']),
    /** The entry as it should be (ip syntax), or as the kernel has it for an extra one. */
    detail: str(),
    state: z.enum(['ok', 'missing', 'differs', 'extra']),
  });
}

function peerStatusSchema() {
  return z.object({
    /** The Node's name; absent when the peer is known only from the kernel. */
    name: str().optional(),
    podCIDRs: z.array(str()),
    underlayIps: z.array(str()),
    source: z.enum(['agent', 'kernel']),
    entries: z.array(entryCheckSchema()),
    ok: z.boolean(),
  });
}

function findingSchema() {
  /** `see`: the command or file that shows it. */
  return z.object({ severity: z.enum(['problem', 'warning']), message: str(), see: str() });
}

function linkViewSchema() {
  /** `lower`: for the VXLAN device, its lower device. */
  return z.object({
    name: str(),
    mtu: z.number().int(),
    up: z.boolean(),
    lower: str().optional(),
    offload: sizes().optional(),
  });
}

function ipamNetworkStatusSchema() {
  const range = z.object({
    index: z.number().int(),
    family: z.union([z.literal(4), z.literal(6)]),
    ranges: str(),
    capacity: z.number(),
    used: z.number().int(),
    free: z.number(),
  });
  return z.object({ network: str(), dir: str(), ranges: z.array(range), error: str().optional() });
}

function buildStatusReportSchema() {
  return z.object({
    kind: z.literal('StrandStatus'),
    v: z.literal(1),
    verdict: z.enum(['healthy', 'unhealthy', 'unknown']),
    node: z.object({
      name: str().optional(),
      backend: str().optional(),
      podCIDRs: z.array(str()),
      clusterCIDRs: z.array(str()),
      podMtu: z.number().int().optional(),
      podOffload: sizes().optional(),
      underlay: z
        .object({ iface: str(), addresses: z.array(str()), mtu: z.number().int(), offload: sizes() })
        .optional(),
      vxlanDevice: linkViewSchema().optional(),
      bridge: linkViewSchema().optional(),
      /** Where the node facts came from. */
      source: z.enum(['agent', 'files']),
    }),
    agent: z.object({
      running: z.boolean(),
      socket: str(),
      error: str().optional(),
      version: str().optional(),
      pid: z.number().int().optional(),
      startedAt: str().optional(),
      uptimeSeconds: z.number().optional(),
      ready: z.boolean().optional(),
      reasons: z.array(str()).optional(),
      lastPassAt: str().optional(),
      api: apiSchema().optional(),
    }),
    peers: z.array(peerStatusSchema()),
    ipam: z.array(ipamNetworkStatusSchema()),
    policy: policySummarySchema().optional(),
    problems: z.array(findingSchema()),
    /** What could not be looked at, and why. */
    unseen: z.array(str()),
  });
}

export type EntryCheck = z.infer<ReturnType<typeof entryCheckSchema>>;
export type EntryState = EntryCheck['state'];
export type PeerStatus = z.infer<ReturnType<typeof peerStatusSchema>>;
export type Finding = z.infer<ReturnType<typeof findingSchema>>;
export type LinkView = z.infer<ReturnType<typeof linkViewSchema>>;
export type IpamNetworkStatus = z.infer<ReturnType<typeof ipamNetworkStatusSchema>>;
export type StatusReport = z.infer<ReturnType<typeof buildStatusReportSchema>>;

let schemaCache: ReturnType<typeof buildStatusReportSchema> | undefined;

/** The schema of `strand status -o json` (tests check every output against it). */
export function statusReportSchema(): z.ZodType<StatusReport> {
  schemaCache ??= buildStatusReportSchema();
  return schemaCache;
}
