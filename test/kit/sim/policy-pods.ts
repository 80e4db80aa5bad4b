// NetworkPolicy probes on the simulated cluster: policy-pod.mjs runs in each pod (TCP and UDP servers
// on ports 80 and 81, and a probe client driven over its stdin), and probeMatrix() asks every pod to
// connect to every other pod on every port and protocol at once, with short timeouts, so one whole
// truth table takes about one timeout.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO, type SimPod } from './cluster.ts';

export const POLICY_POD = join(REPO, 'test', 'kit', 'sim', 'policy-pod.mjs');
export const POLICY_PORTS = [80, 81] as const;
export type L4 = 'tcp' | 'udp';
export const POLICY_PROTOCOLS: readonly L4[] = ['tcp', 'udp'];
/** How long a probe waits before it calls a cell a drop. An allowed connection between these
 * namespaces answers in milliseconds, and every table check probes again until its deadline, so an
 * allowed answer slower than this costs one more round, never a wrong verdict; most rounds of a
 * table with a denied cell last exactly this long. */
export const DROP_WAIT_MS = 400;

/** The container ports policy-pod.mjs serves, named as the upstream e2e names them (serve-80-tcp …). */
export function policyContainerPorts(): { name: string; containerPort: number; protocol: 'TCP' | 'UDP' }[] {
  return POLICY_PORTS.flatMap((port) =>
    POLICY_PROTOCOLS.map((p) => ({
      name: `serve-${port}-${p}`,
      containerPort: port,
      protocol: p.toUpperCase() as 'TCP' | 'UDP',
    })),
  );
}

/** "ok", "timeout", or a socket error code such as "ECONNREFUSED". */
export type ProbeOutcome = string;

export interface FlowStatus {
  replies: number;
  lastReplyAgoMs: number | null;
  error: string | null;
}

/** The probe program inside one pod. */
export class PolicyPod {
  /** Set by start(pod), or by the caller once the pod exists (start(netns) before its ADD). */
  pod: SimPod;
  private readonly proc: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, (v: Record<string, unknown>) => void>();

  private constructor(pod: SimPod | undefined, proc: ChildProcess) {
    this.pod = pod as SimPod;
    this.proc = proc;
  }

  /** Starts the program in the pod's namespace (or in a namespace whose pod is not added yet),
   * serving TCP and UDP on `ports`. */
  static start(pod: SimPod | string, ports: readonly number[] = POLICY_PORTS): Promise<PolicyPod> {
    const netns = typeof pod === 'string' ? pod : pod.netns;
    const proc = spawn('ip', ['netns', 'exec', netns, process.execPath, POLICY_POD, ports.join(',')], {
      env: { PATH: process.env.PATH },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    proc.on('error', () => {});
    proc.stdin!.on('error', () => {});
    const p = new PolicyPod(typeof pod === 'string' ? undefined : pod, proc);
    return new Promise((resolve, reject) => {
      let err = '';
      proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)));
      proc.once('exit', (code) => reject(new Error(`policy-pod in ${netns} exited (${code}): ${err.trim()}`)));
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        if (line === 'ready') return resolve(p);
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line);
        } catch {
          return;
        }
        const done = p.pending.get(msg.id as number);
        p.pending.delete(msg.id as number);
        done?.(msg);
      });
    });
  }

  private request(op: string, fields: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.proc.stdin!.write(`${JSON.stringify({ id, op, ...fields })}\n`);
    });
  }

  async probe(targets: { ip: string; port: number; proto: L4 }[], timeoutMs = 800): Promise<boolean[]> {
    if (targets.length === 0) return [];
    return (await this.request('probe', { targets, timeoutMs })).results as boolean[];
  }

  /** As probe(), with each target's outcome: "ok", "timeout" (nothing came back: a drop) or the
   * socket's error code ("ECONNREFUSED": a RST or an ICMP unreachable came back, a reject). */
  async probeOutcomes(targets: { ip: string; port: number; proto: L4 }[], timeoutMs = 800): Promise<ProbeOutcome[]> {
    if (targets.length === 0) return [];
    return (await this.request('probe', { targets, timeoutMs })).outcomes as ProbeOutcome[];
  }

  /** A long-lived flow to ip:port, a message every everyMs. */
  async hold(flow: string, ip: string, port: number, proto: L4, everyMs = 50): Promise<void> {
    await this.request('hold', { flow, ip, port, proto, everyMs });
  }

  async flow(flow: string): Promise<FlowStatus> {
    return (await this.request('flow', { flow })) as unknown as FlowStatus;
  }

  async closeFlow(flow: string): Promise<void> {
    await this.request('close', { flow });
  }

  stop(): void {
    this.proc.stdin!.end();
    this.proc.kill('SIGTERM');
  }
}

/** A cell of a truth table: from → to on port/protocol. */
export interface Probe {
  from: string;
  to: string;
  port: number;
  proto: L4;
}

export const cellKey = (p: Probe): string => `${p.from}>${p.to}:${p.port}/${p.proto}`;

/**
 * Every pod to every other pod (self cells left out, R12), on `ports` × `protocols`, all at once:
 * a map from cellKey to whether it connected. Pods are named "<namespace>/<name>".
 */
export async function probeMatrix(
  pods: readonly PolicyPod[],
  opts: { ports?: readonly number[]; protocols?: readonly L4[]; timeoutMs?: number } = {},
): Promise<Map<string, boolean>> {
  const ports = opts.ports ?? POLICY_PORTS;
  const protocols = opts.protocols ?? POLICY_PROTOCOLS;
  const out = new Map<string, boolean>();
  const name = (p: PolicyPod) => `${p.pod.namespace}/${p.pod.name}`;
  await Promise.all(
    pods.map(async (from) => {
      const cells: Probe[] = [];
      const targets: { ip: string; port: number; proto: L4 }[] = [];
      for (const to of pods) {
        if (to === from) continue;
        for (const port of ports) {
          for (const proto of protocols) {
            cells.push({ from: name(from), to: name(to), port, proto });
            targets.push({ ip: to.pod.ip, port, proto });
          }
        }
      }
      const results = await from.probe(targets, opts.timeoutMs);
      cells.forEach((c, i) => out.set(cellKey(c), results[i] === true));
    }),
  );
  return out;
}
