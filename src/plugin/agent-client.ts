// The plugin side of the pod-start handshake (protocol: src/agent/pod-handshake.ts; the wire in
// agent-exchange.ts). It runs on the pod start path, so it is small: one connection (a blocking socket
// through the libc calls the plugin loads anyway; node:net where they cannot be made), one JSON line
// each way, a hand-written check of the answer (a schema would cost loading zod on every pod start for
// a four-field object).
// The agent never blocks the plugin for long: no socket file or nobody listening returns at once,
// and the whole exchange is bounded by waitMs.
import {
  HANDSHAKE_VERSION,
  MAX_MESSAGE_BYTES,
  type HandshakeRequest,
  type PodStartNotice,
} from '../contracts/agent-socket.ts';
import { K8S_ARG_KEYS, kubernetesPodArgs, parseCniArgs } from '../cni/args.ts';
import type { CniEnv } from '../cni/env.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { EventLog } from '../event-log.ts';
import {
  exchange,
  exchangeLine,
  parseAnswer,
  SentRequest,
  sendBlocking,
  type Exchange,
  type LineExchange,
} from './agent-exchange.ts';

export type NotifyOutcome = 'ok' | 'no-agent' | 'timeout' | 'refused';

/**
 * Tells the agent about a new pod and waits up to `waitMs` for its answer:
 * - 'ok': the agent has what it needs for the pod;
 * - 'no-agent': no socket, or nobody listening on it (the plugin goes on standalone);
 * - 'timeout': no answer within waitMs, the agent hung up without one, or answered something this
 *   plugin cannot read (another protocol version): the pod goes on, the agent reconciles later —
 *   an agent that misbehaves must not stop every pod on the node from starting;
 * - 'refused': the agent answered ok:false, with why.
 */
export async function notifyAgent(
  socketPath: string,
  notice: PodStartNotice,
  waitMs: number,
  opts: { blocking?: boolean } = {},
): Promise<{ outcome: NotifyOutcome; message?: string }> {
  return outcomeOf(await exchange(socketPath, podStartRequest(notice), waitMs, opts.blocking));
}

const podStartRequest = (notice: PodStartNotice): HandshakeRequest => ({
  v: HANDSHAKE_VERSION,
  type: 'pod-start',
  notice,
});

function outcomeOf(r: Exchange): { outcome: NotifyOutcome; message?: string } {
  switch (r.kind) {
    case 'answer':
      if (r.answer.ok) return { outcome: 'ok' };
      return { outcome: 'refused', message: r.answer.message ?? 'the agent refused the pod without a reason' };
    case 'invalid':
      return { outcome: 'timeout', message: r.message };
    default:
      return { outcome: r.kind, message: r.message };
  }
}

/**
 * The agent's readiness, for STATUS: undefined when no agent listens on `socketPath`. An agent that
 * does not answer in time, or answers nonsense, is not ready.
 */
export async function agentStatus(
  socketPath: string,
  waitMs: number,
): Promise<{ ready: boolean; message?: string } | undefined> {
  const r = await exchange(socketPath, { v: HANDSHAKE_VERSION, type: 'status' }, waitMs);
  switch (r.kind) {
    case 'no-agent':
      return undefined;
    case 'answer': {
      const a = r.answer;
      if (!a.ok) return { ready: false, message: a.message ?? 'the agent could not answer a status request' };
      if (a.ready === true) return { ready: true };
      const reasons = a.reasons && a.reasons.length > 0 ? a.reasons.join('; ') : 'no reason given';
      return { ready: false, message: reasons };
    }
    default:
      return { ready: false, message: r.message };
  }
}

// ---- what ADD and STATUS do with it ----------------------------------------------------------------

/** The most a failed ADD waits to take its notice back (connect and send). */
const RETRACT_WAIT_MS = 200;

/** A pod-start notice on its way: the plugin wires the pod while the agent binds its rules. */
export interface Announcement {
  /**
   * Waits for the agent's answer. No agent: go on (standalone). No answer in time: go on with a
   * warning, the agent reconciles the pod from the API later. Refused: fail the ADD with "try again
   * later" (CNI 1.1 §5 code 11) so that the runtime retries, after the caller's undo removed what this
   * ADD made. With whenNoAgent "fail" (policyWhenNoAgent), no agent and no answer in time fail the
   * same way: no pod starts before its NetworkPolicy rules can be in place.
   */
  finish(): Promise<void>;
  /** Hangs up without the answer (the ADD failed first); finish() after it does nothing. */
  abandon(): void;
}

/**
 * ADD's notice to the agent, sent as soon as IPAM gave the pod its addresses: the agent binds the
 * pod's rules while the plugin creates and configures its interfaces (the host end stays down until
 * finish() has the answer, so no packet reaches the pod before its rules are in the kernel either
 * way). Where the blocking socket cannot be made (no libc binding), the whole exchange waits for
 * finish().
 */
export function startAnnouncement(opts: {
  socketPath: string;
  waitMs: number;
  env: CniEnv;
  hostVeth: string;
  /** The pod's addresses as IPAM gave them (CIDR notation); the notice carries them without prefix. */
  ips: string[];
  log: EventLog;
  /** policyWhenNoAgent: "allow" (default) goes on without an agent, "fail" fails the ADD. */
  whenNoAgent?: 'allow' | 'fail';
}): Announcement {
  const { env, log } = opts;
  const notice: PodStartNotice = {
    ...podIdentity(env.args),
    containerId: env.containerId,
    ifname: env.ifname,
    netns: env.netns,
    hostVeth: opts.hostVeth,
    ips: opts.ips.map((a) => a.split('/')[0] as string),
  };
  const who = () =>
    notice.namespace && notice.name ? `pod ${notice.namespace}/${notice.name}` : `container ${notice.containerId}`;
  const sentAt = performance.now();
  let sent: SentRequest | LineExchange | undefined = sendBlocking(
    opts.socketPath,
    podStartRequest(notice),
    opts.waitMs,
  );
  let done = false;
  return {
    abandon() {
      if (done) return;
      done = true;
      if (!(sent instanceof SentRequest)) return;
      sent.close();
      // The agent has the notice: the pod has no addresses after all (IPAM gave them back), so that
      // they are not this pod's in the agent's rules until the notice expires. Best effort, unanswered.
      const retraction = sendBlocking(opts.socketPath, podStartRequest({ ...notice, ips: [] }), RETRACT_WAIT_MS);
      if (retraction instanceof SentRequest) retraction.close();
    },
    async finish() {
      if (done) return;
      done = true;
      const started = performance.now();
      const line =
        sent instanceof SentRequest
          ? sent.answer(MAX_MESSAGE_BYTES)
          : (sent ?? (await exchangeLine(opts.socketPath, podStartRequest(notice), opts.waitMs)));
      sent = undefined;
      const r = outcomeOf(line.kind === 'line' ? parseAnswer(line.text) : line);
      const now = performance.now();
      // ms: what the ADD waited for the answer after wiring the pod; sinceNoticeMs: since the notice.
      const times = {
        agentSocket: opts.socketPath,
        ms: Math.round((now - started) * 10) / 10,
        sinceNoticeMs: Math.round((now - sentAt) * 10) / 10,
      };
      switch (r.outcome) {
        case 'ok':
          log.debug(times, 'the agent acknowledged the pod');
          return;
        case 'no-agent':
          if (opts.whenNoAgent === 'fail') {
            throw new CniError(
              ErrorCode.TryAgainLater,
              `no Strand agent answers for ${who()} and policyWhenNoAgent is "fail": ${r.message ?? 'no agent'}`,
            );
          }
          log.debug({ ...times, reason: r.message }, 'no agent to notify; going on');
          return;
        case 'timeout':
          if (opts.whenNoAgent === 'fail') {
            throw new CniError(
              ErrorCode.TryAgainLater,
              `the Strand agent did not acknowledge ${who()} in time and policyWhenNoAgent is "fail": ${r.message ?? 'no answer'}`,
            );
          }
          log.warn(
            { ...times, reason: r.message },
            'the agent did not acknowledge the pod in time; going on, it reconciles later',
          );
          return;
        case 'refused':
          throw new CniError(
            ErrorCode.TryAgainLater,
            `the Strand agent refused ${who()}: ${r.message ?? 'no reason given'}`,
          );
      }
    },
  };
}

/** STATUS's check: a configured agent that answers "not ready" makes the plugin not available (50). */
export async function checkAgentReady(socketPath: string, waitMs: number): Promise<void> {
  const s = await agentStatus(socketPath, waitMs);
  if (s && !s.ready) {
    throw new CniError(
      ErrorCode.PluginNotAvailable,
      `the Strand agent on ${socketPath} is not ready: ${s.message ?? 'no reason given'}`,
    );
  }
}

/**
 * K8S_POD_NAMESPACE, K8S_POD_NAME and K8S_POD_UID from CNI_ARGS (kubelet's runtimes send them with
 * IgnoreUnknown=1). CNI_ARGS was validated when the config was loaded; should it fail here anyway,
 * the notice goes without the pod's identity rather than failing the ADD over it.
 */
function podIdentity(cniArgs: string): Pick<PodStartNotice, 'namespace' | 'name' | 'uid'> {
  try {
    const pod = kubernetesPodArgs(parseCniArgs(cniArgs, ['MAC', 'IP', ...K8S_ARG_KEYS]));
    const out: Pick<PodStartNotice, 'namespace' | 'name' | 'uid'> = {};
    if (pod.namespace) out.namespace = pod.namespace;
    if (pod.name) out.name = pod.name;
    if (pod.uid) out.uid = pod.uid;
    return out;
  } catch {
    return {};
  }
}
