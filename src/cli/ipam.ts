// `strand ipam` and `strand ipam gc`: the reservations of strand-ipam's store per network, with the
// container and interface each belongs to, and those whose pod interface no longer exists.
//
// The proof that an attachment is gone, on a node without a runtime socket to ask: the plugin names
// the host end of every pod's veth from (network, container ID, ifname) (src/plugin/names.ts), so an
// address of the strand network whose host veth is absent belongs to no working pod: its DEL or the
// rest of its ADD never happened (a killed ADD, a runtime that lost the sandbox). An ADD takes the
// address before it makes the veth, so a reservation younger than --min-age may be one in progress
// and is left alone; and while the agent answers, an address it still sees on a pod of this node is
// left alone too. --force drops those two guards, never the first. Reservations of other networks
// (a host-local network sharing the data dir) are listed but never judged: their interface names
// are not Strand's to derive.
//
// gc releases under the store's lock (src/ipam/store.ts, the lock host-local takes too) and
// checks every candidate again inside it, so a concurrent ADD or DEL is never raced.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { agentSocketPath } from '../contracts/agent-socket.ts';
import type { InspectSnapshot } from '../agent/inspect.ts';
import { findLink, NetlinkSocket } from '../kernel/index.ts';
import { NETWORK_NAME } from '../contracts/conflist.ts';
import { formatIp } from '../ipam/range.ts';
import { readReservations, withStore, type Reservation } from '../ipam/store.ts';
import { hostVethName } from '../plugin/names.ts';
import { inspectAgent } from './agent-query.ts';
import { ipamConfigOf, readConflist } from './node-files.ts';
import { EXIT, type NodePaths } from './output.ts';

/** Younger reservations may belong to an ADD still running (it reserves before it makes the veth). */
export const DEFAULT_MIN_AGE_S = 300;

export type ReservationState = 'in-use' | 'leaked' | 'recent' | 'held-by-pod' | 'not-judged';

export interface ReservationView {
  ip: string;
  containerId: string;
  ifname?: string;
  ageSeconds: number;
  /** Strand's network only: the host veth the plugin made for it, and whether it exists. */
  hostVeth?: string;
  hostVethPresent?: boolean;
  /** The pod the agent sees with this address, when it answers. */
  pod?: string;
  state: ReservationState;
}

export interface IpamNetworkView {
  network: string;
  dir: string;
  judged: boolean;
  reservations: ReservationView[];
}

export interface IpamReport {
  kind: 'StrandIpam';
  v: 1;
  dataDir: string;
  agent: 'answered' | 'not-running' | 'error';
  minAgeSeconds: number;
  networks: IpamNetworkView[];
  leaked: number;
  /** gc only. */
  gc?: {
    dryRun: boolean;
    force: boolean;
    released: { network: string; ip: string; containerId: string }[];
    kept: { network: string; ip: string; why: string }[];
  };
  unseen: string[];
}

export interface JudgeInput {
  network: string;
  reservation: Pick<ReservationView, 'ip' | 'containerId' | 'ifname' | 'ageSeconds'>;
  vethPresent: ((name: string) => boolean) | undefined;
  /** Addresses → "namespace/name" of the pods the agent sees; undefined when it did not answer. */
  podsByIp: Map<string, string> | undefined;
  minAgeSeconds: number;
  force: boolean;
}

/** One reservation judged (pure). */
export function judgeReservation(i: JudgeInput): ReservationView {
  const r = i.reservation;
  const v: ReservationView = { ...r, state: 'not-judged' };
  if (i.network !== NETWORK_NAME || !i.vethPresent) return v;
  v.hostVeth = hostVethName(i.network, r.containerId, r.ifname ?? 'eth0');
  v.hostVethPresent = i.vethPresent(v.hostVeth);
  const pod = i.podsByIp?.get(r.ip);
  if (pod) v.pod = pod;
  if (v.hostVethPresent) v.state = 'in-use';
  else if (!i.force && pod) v.state = 'held-by-pod';
  else if (!i.force && r.ageSeconds < i.minAgeSeconds) v.state = 'recent';
  else v.state = 'leaked';
  return v;
}

function ageOf(dir: string, name: string, now: number): number {
  try {
    return Math.max(0, Math.round((now - statSync(join(dir, name)).mtimeMs) / 1000));
  } catch {
    return 0;
  }
}

function podsByIp(snap: InspectSnapshot | undefined): Map<string, string> | undefined {
  if (!snap) return undefined;
  const m = new Map<string, string>();
  for (const p of snap.pods) for (const ip of p.ips) m.set(ip, `${p.namespace}/${p.name}`);
  return m;
}

function view(
  network: string,
  dir: string,
  r: Reservation,
  now: number,
  ctx: Omit<JudgeInput, 'network' | 'reservation'>,
): ReservationView {
  const base: JudgeInput['reservation'] = {
    ip: formatIp(r.ip),
    containerId: r.containerID,
    ageSeconds: ageOf(dir, r.name, now),
  };
  if (r.ifname !== undefined) base.ifname = r.ifname;
  return judgeReservation({ ...ctx, network, reservation: base });
}

export interface IpamOptions {
  minAgeSeconds: number;
  force: boolean;
  gc?: { dryRun: boolean };
}

export async function runIpam(paths: NodePaths, opts: IpamOptions): Promise<IpamReport> {
  const conf = ipamConfigOf(paths, readConflist(paths.cniConfDir));
  const agent = await inspectAgent(agentSocketPath(paths.stateDir));
  const snap = agent.kind === 'answer' ? agent.value : undefined;
  const unseen: string[] = [];
  if (agent.kind !== 'answer')
    unseen.push(
      `the pods the agent sees (${agent.kind === 'not-running' ? 'the agent is not running' : agent.message}): only the host veths are proof`,
    );
  const nl = NetlinkSocket.open();
  try {
    const present = (name: string) => findLink(nl, name) !== undefined;
    const ctx = {
      vethPresent: present,
      podsByIp: podsByIp(snap),
      minAgeSeconds: opts.minAgeSeconds,
      force: opts.force,
    };
    let names: string[] = [];
    try {
      names = readdirSync(conf.dataDir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new Error(`cannot list the IPAM data dir ${conf.dataDir}: ${(err as Error).message}`, { cause: err });
      unseen.push(`the IPAM data dir ${conf.dataDir} does not exist (no pod has had an address yet)`);
    }
    const now = Date.now();
    const networks: IpamNetworkView[] = names.map((network) => {
      const dir = join(conf.dataDir, network);
      return {
        network,
        dir,
        judged: network === NETWORK_NAME,
        reservations: readReservations(dir).map((r) => view(network, dir, r, now, ctx)),
      };
    });
    const report: IpamReport = {
      kind: 'StrandIpam',
      v: 1,
      dataDir: conf.dataDir,
      agent: snap ? 'answered' : agent.kind === 'not-running' ? 'not-running' : 'error',
      minAgeSeconds: opts.minAgeSeconds,
      networks,
      leaked: networks.reduce((n, net) => n + net.reservations.filter((r) => r.state === 'leaked').length, 0),
      unseen,
    };
    if (opts.gc)
      report.gc = await collect(conf.dataDir, networks, opts.gc.dryRun, opts.force, (network, dir, r) =>
        view(network, dir, r, Date.now(), ctx),
      );
    return report;
  } finally {
    nl.close();
  }
}

/** Releases the leaked reservations, each judged again under the store's lock. */
async function collect(
  dataDir: string,
  networks: IpamNetworkView[],
  dryRun: boolean,
  force: boolean,
  rejudge: (network: string, dir: string, r: Reservation) => ReservationView,
): Promise<NonNullable<IpamReport['gc']>> {
  const out: NonNullable<IpamReport['gc']> = { dryRun, force, released: [], kept: [] };
  for (const net of networks) {
    const candidates = new Set(net.reservations.filter((r) => r.state === 'leaked').map((r) => r.ip));
    if (candidates.size === 0) continue;
    await withStore(dataDir, net.network, (store) => {
      for (const r of store.reservations()) {
        const ip = formatIp(r.ip);
        if (!candidates.has(ip)) continue;
        const now = rejudge(net.network, store.dir, r);
        if (now.state !== 'leaked') {
          out.kept.push({ network: net.network, ip, why: `now ${now.state}` });
          continue;
        }
        if (!dryRun && !store.remove(r)) {
          out.kept.push({ network: net.network, ip, why: 'released meanwhile' });
          continue;
        }
        out.released.push({ network: net.network, ip, containerId: r.containerID });
      }
      if (!dryRun) store.sync();
    });
  }
  return out;
}

export function ipamExitCode(r: IpamReport): number {
  if (r.gc)
    return r.gc.dryRun
      ? r.gc.released.length > 0
        ? EXIT.not
        : EXIT.ok
      : r.leaked - r.gc.released.length > 0
        ? EXIT.not
        : EXIT.ok;
  return r.leaked > 0 ? EXIT.not : EXIT.ok;
}

// ---- text -------------------------------------------------------------------------------------------

export function formatIpam(r: IpamReport): string {
  const out: string[] = [`IPAM data dir ${r.dataDir}`];
  for (const net of r.networks) {
    out.push(
      '',
      `network ${net.network} (${net.reservations.length} reserved)${net.judged ? '' : ": not Strand's, not judged"}`,
    );
    for (const v of net.reservations) {
      const who = `${v.containerId.slice(0, 12)} ${v.ifname ?? '(no ifname)'}`;
      const veth = v.hostVeth ? ` ${v.hostVeth} ${v.hostVethPresent ? 'present' : 'ABSENT'}` : '';
      out.push(
        `  ${v.ip.padEnd(16)} ${who.padEnd(20)}${veth}${v.pod ? ` pod ${v.pod}` : ''} ${v.state.toUpperCase()} (${v.ageSeconds} s old)`,
      );
    }
  }
  out.push(
    '',
    `${r.leaked} leaked (host veth gone${r.minAgeSeconds > 0 ? `, older than ${r.minAgeSeconds} s` : ''}${r.agent === 'answered' ? ', no pod the agent sees' : ''})`,
  );
  if (r.gc) {
    const verb = r.gc.dryRun ? 'would release' : 'released';
    for (const x of r.gc.released)
      out.push(`  ${verb} ${x.ip} of ${x.network} (container ${x.containerId.slice(0, 12)})`);
    for (const x of r.gc.kept) out.push(`  kept ${x.ip} of ${x.network}: ${x.why}`);
    if (r.gc.released.length === 0) out.push(`  nothing to release`);
  }
  for (const u of r.unseen) out.push(`could not see: ${u}`);
  return `${out.join('\n')}\n`;
}

// ---- schema -----------------------------------------------------------------------------------------

let schemaCache: z.ZodType<IpamReport> | undefined;

export function ipamReportSchema(): z.ZodType<IpamReport> {
  if (schemaCache) return schemaCache;
  const str = z.string();
  schemaCache = z.object({
    kind: z.literal('StrandIpam'),
    v: z.literal(1),
    dataDir: str,
    agent: z.enum(['answered', 'not-running', 'error']),
    minAgeSeconds: z.number(),
    networks: z.array(
      z.object({
        network: str,
        dir: str,
        judged: z.boolean(),
        reservations: z.array(
          z.object({
            ip: str,
            containerId: str,
            ifname: str.optional(),
            ageSeconds: z.number(),
            hostVeth: str.optional(),
            hostVethPresent: z.boolean().optional(),
            pod: str.optional(),
            state: z.enum(['in-use', 'leaked', 'recent', 'held-by-pod', 'not-judged']),
          }),
        ),
      }),
    ),
    leaked: z.number().int(),
    gc: z
      .object({
        dryRun: z.boolean(),
        force: z.boolean(),
        released: z.array(z.object({ network: str, ip: str, containerId: str })),
        kept: z.array(z.object({ network: str, ip: str, why: str })),
      })
      .optional(),
    unseen: z.array(str),
  });
  return schemaCache;
}
