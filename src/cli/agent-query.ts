// The command line's side of the agent's local socket (<state-dir>/agent.sock, protocol in
// src/agent/pod-handshake.ts): one read-only question (inspect, explain), one answer, validated here
// with zod so that a different agent version's answer is reported as such, never misread.
import * as z from 'zod';
import type { InspectSnapshot } from '../agent/inspect.ts';
import { HANDSHAKE_VERSION, MAX_QUERY_ANSWER_BYTES, type HandshakeRequest } from '../contracts/agent-socket.ts';
import { exchangeLine } from '../plugin/agent-exchange.ts';

export type AgentAnswer<T> =
  /** No socket file, or nobody listening on it (ENOENT, ECONNREFUSED): the agent is not running. */
  | { kind: 'not-running'; message: string }
  /** Someone is there but the exchange failed, timed out or answered what this version cannot read. */
  | { kind: 'error'; message: string }
  | { kind: 'answer'; value: T };

/**
 * One request, one answer line, bounded by timeoutMs (the plugin's exchange, with room for large
 * answers). Never rejects.
 */
export async function askAgent(
  socketPath: string,
  request: HandshakeRequest,
  timeoutMs: number,
): Promise<AgentAnswer<unknown>> {
  const r = await exchangeLine(socketPath, request, timeoutMs, MAX_QUERY_ANSWER_BYTES);
  // The socket is root's (0600): not being allowed to connect says nothing about the agent.
  if (r.kind === 'no-agent' && /\((EACCES|EPERM)\)/.test(r.message))
    return { kind: 'error', message: `${r.message}: the agent's socket is root's only; run as root` };
  if (r.kind === 'no-agent') return { kind: 'not-running', message: r.message };
  if (r.kind !== 'line') return { kind: 'error', message: r.message };
  return parse(r.text);
}

function parse(line: string): AgentAnswer<unknown> {
  try {
    return { kind: 'answer', value: JSON.parse(line) };
  } catch {
    return { kind: 'error', message: `the agent's answer is not JSON: ${line.slice(0, 200)}` };
  }
}

/** Checks an answer's envelope and its payload field against `schema`. */
export function unwrap<T>(answer: AgentAnswer<unknown>, field: string, schema: z.ZodType<T>): AgentAnswer<T> {
  if (answer.kind !== 'answer') return answer;
  const env = answer.value as Record<string, unknown> | null;
  if (typeof env !== 'object' || env === null)
    return { kind: 'error', message: "the agent's answer is not a JSON object" };
  if (env.v !== HANDSHAKE_VERSION)
    return {
      kind: 'error',
      message: `the agent answered in protocol version ${JSON.stringify(env.v)}, not ${HANDSHAKE_VERSION}`,
    };
  if (env.ok !== true) {
    const why = typeof env.message === 'string' ? env.message : 'no reason given';
    return {
      kind: 'error',
      message:
        env.error === 'bad-request' || env.error === 'unsupported'
          ? `the agent does not answer this request (an older version?): ${why}`
          : `the agent could not answer: ${why}`,
    };
  }
  const r = schema.safeParse(env[field]);
  if (!r.success) {
    const issue = r.error.issues[0];
    return {
      kind: 'error',
      message: `the agent's ${field} answer is not what this strand reads (another version?): ${issue ? `${issue.path.join('.') || field}: ${issue.message}` : 'invalid'}`,
    };
  }
  return { kind: 'answer', value: r.data };
}

/** The API connection per informer (InspectSnapshot.api), also part of `strand status -o json`. */
export function apiSchema() {
  const str = z.string();
  return z.object({
    server: str,
    informers: z.array(
      z.object({
        resource: z.enum(['nodes', 'pods', 'namespaces', 'networkpolicies', 'clusternetworkpolicies']),
        synced: z.boolean(),
        objects: z.number().int(),
        state: z.enum(['connecting', 'connected', 'failing']),
        lastListAt: str.optional(),
        lastEventAt: str.optional(),
        lastErrorAt: str.optional(),
        lastError: str.optional(),
        failures: z.number().int(),
      }),
    ),
  });
}

/** The policy summary (InspectSnapshot.policy), also part of `strand status -o json`. */
export function policySummarySchema() {
  const str = z.string();
  return z.object({
    policies: z.number().int(),
    pods: z.number().int(),
    lastProgrammingMs: z.number().optional(),
    lastProgrammedAt: str.optional(),
    lastNftFailure: z.object({ at: str, message: str }).optional(),
    clusterNetworkPolicies: z
      .object({
        served: z.boolean(),
        admin: z.number().int(),
        baseline: z.number().int(),
        ambiguous: z.array(
          z.object({
            tier: str,
            priority: z.number(),
            policies: z.array(str),
            sharedPods: z.number(),
            examples: z.array(str),
          }),
        ),
        problems: z.array(z.object({ kind: z.enum(['invalid', 'unsupported']), policy: str, field: str, reason: str })),
      })
      .optional(),
  });
}

let inspectSchemaCache: z.ZodType<InspectSnapshot> | undefined;

/** The agent's inspect snapshot (src/agent/inspect.ts InspectSnapshot). */
export function inspectSchema(): z.ZodType<InspectSnapshot> {
  if (inspectSchemaCache) return inspectSchemaCache;
  const str = z.string();
  const iso = z.string();
  const sizes = z.record(z.string(), z.number());
  const peer = z.object({
    name: str,
    underlayIps: z.array(str),
    podCidrs: z.array(str),
    vtepMac: str.optional(),
    backend: str.optional(),
  });
  const problem = z.object({ peer: str.optional(), message: str });
  const mode = z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('host-gw') }),
    z.object({
      kind: z.literal('vxlan'),
      directRouting: z.boolean(),
      vtepMac: str,
      vtepFamily: z.union([z.literal(4), z.literal(6)]),
    }),
  ]);
  inspectSchemaCache = z.object({
    v: z.literal(1),
    version: str,
    pid: z.number().int(),
    startedAt: iso,
    uptimeSeconds: z.number(),
    ready: z.boolean(),
    reasons: z.array(str),
    lastPassAt: iso.optional(),
    api: apiSchema(),
    node: z.object({
      name: str,
      backend: z.enum(['vxlan', 'host-gw']),
      podCIDRs: z.array(str),
      clusterCIDRs: z.array(str),
      bridge: str,
      vxlanDevice: str.optional(),
      underlay: z.object({ iface: str, addresses: z.array(str), mtu: z.number().int(), offload: sizes }).optional(),
      podMtu: z.number().int().optional(),
      podOffload: sizes.optional(),
      paths: z.object({ stateDir: str, cniConfDir: str, ipamDataDir: str }),
    }),
    datapath: z.object({
      mode: mode.optional(),
      underlayPrefixes: z.array(str),
      peers: z.array(peer),
      unusable: z.array(z.object({ name: str.optional(), reason: str })),
      desired: z.object({
        routes: z.array(
          z.object({ peer: str, dst: str, gateway: str, dev: z.enum(['vxlan', 'underlay']), onlink: z.boolean() }),
        ),
        neighbours: z.array(z.object({ peer: str, ip: str, mac: str })),
        fdb: z.array(z.object({ peer: str, mac: str, dst: str })),
        problems: z.array(problem),
      }),
      lastReconcile: z
        .object({
          at: iso,
          added: z.number(),
          changed: z.number(),
          removed: z.number(),
          unchanged: z.number(),
          problems: z.array(str),
          durationMs: z.number(),
        })
        .optional(),
    }),
    pods: z.array(
      z.object({
        namespace: str,
        name: str,
        ips: z.array(str),
        hostVeth: str.optional(),
        containerId: str.optional(),
        source: str,
      }),
    ),
    policy: policySummarySchema().optional(),
  });
  return inspectSchemaCache;
}

/** The agent's snapshot, or why there is none. */
export async function inspectAgent(socketPath: string, timeoutMs = 5_000): Promise<AgentAnswer<InspectSnapshot>> {
  return unwrap(
    await askAgent(socketPath, { v: HANDSHAKE_VERSION, type: 'inspect' }, timeoutMs),
    'inspect',
    inspectSchema(),
  );
}
