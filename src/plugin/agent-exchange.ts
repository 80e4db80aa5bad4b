// The wire half of the plugin's side of the agent socket (protocol: src/contracts/agent-socket.ts):
// one request line, one answer line, over a blocking socket made with the libc calls the plugin has
// bound for its netlink work, or node:net where they cannot be made (and for the command line). The
// blocking exchange comes in two halves (sendBlocking, then SentRequest.answer), so that ADD can send
// its pod-start notice early and read the answer after wiring the pod (agent-client.ts).
import { existsSync } from 'node:fs';
import {
  encodeMessage,
  HANDSHAKE_VERSION,
  MAX_MESSAGE_BYTES,
  type AgentAnswer,
  type HandshakeRequest,
} from '../contracts/agent-socket.ts';
import { errno, libc } from '../kernel/libc.ts';

type Answer = AgentAnswer;

export type Exchange =
  | { kind: 'answer'; answer: Answer }
  | { kind: 'no-agent'; message: string }
  | { kind: 'timeout'; message: string }
  | { kind: 'invalid'; message: string };

/** One request, one answer, at most waitMs from connect to answer. Never rejects. `blocking`: the
 * caller's process waits for nothing else (the plugin), so exchangeLineBlocking may serve it; never
 * where the agent answers in the same process (its event loop would not run). */
export async function exchange(
  socketPath: string,
  request: HandshakeRequest,
  waitMs: number,
  blocking = false,
): Promise<Exchange> {
  const r =
    (blocking ? exchangeLineBlocking(socketPath, request, waitMs) : undefined) ??
    (await exchangeLine(socketPath, request, waitMs));
  return r.kind === 'line' ? parseAnswer(r.text) : r;
}

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SO_SNDTIMEO = 21;
const EINTR = 4;
const EAGAIN = 11;
const EINPROGRESS = 115;

/**
 * exchangeLine for the plugin's own requests, with the libc calls it has bound already for its netlink
 * work (src/kernel/libc.ts: bun:ffi in the CNI executable, koffi under Node) instead of node:net: the
 * plugin has nothing else to do while it waits, so a
 * blocking socket bounded by SO_SNDTIMEO/SO_RCVTIMEO answers as the event loop would, without
 * loading node:net (a few ms of every pod start under Bun) or a turn of the loop per step.
 * Undefined when the calls cannot be made here (no libc binding): the caller uses exchangeLine.
 */
function exchangeLineBlocking(
  socketPath: string,
  request: HandshakeRequest,
  waitMs: number,
  maxBytes = MAX_MESSAGE_BYTES,
): LineExchange | undefined {
  const sent = sendBlocking(socketPath, request, waitMs);
  return sent instanceof SentRequest ? sent.answer(maxBytes) : sent;
}

/**
 * The first half of exchangeLineBlocking: connected and the request written, the answer not read yet
 * (SentRequest), or how it ended before that. Undefined when the libc calls cannot be made here.
 */
export function sendBlocking(
  socketPath: string,
  request: HandshakeRequest,
  waitMs: number,
): SentRequest | LineExchange | undefined {
  if (!existsSync(socketPath)) return { kind: 'no-agent', message: `no agent socket at ${socketPath}` };
  const path = Buffer.from(socketPath);
  // sockaddr_un: sun_family (u16) and sun_path[108], NUL-terminated.
  if (path.length > 107) return undefined;
  let c: ReturnType<typeof libc>;
  try {
    c = libc();
  } catch {
    return undefined;
  }
  const fd = c.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return undefined;
  const sent = new SentRequest(c, fd, socketPath, waitMs);
  let kept = false;
  try {
    const sa = Buffer.alloc(110);
    sa.writeUInt16LE(AF_UNIX, 0);
    path.copy(sa, 2);
    sent.timeout(SO_SNDTIMEO);
    if (c.connect(fd, sa, 2 + path.length + 1) !== 0) {
      const e = errno();
      // A full backlog within the wait is an agent that does not answer; anything else before the
      // connection (ENOENT, ECONNREFUSED: a stale socket file) is nobody there, as with node:net.
      if (e === EAGAIN || e === EINPROGRESS) return sent.late();
      return { kind: 'no-agent', message: `no agent on ${socketPath} (errno ${e})` };
    }
    const out = Buffer.from(encodeMessage(request));
    for (let n = 0; n < out.length; ) {
      sent.timeout(SO_SNDTIMEO);
      const k = Number(c.send(fd, out.subarray(n), out.length - n, 0));
      if (k < 0) {
        const e = errno();
        if (e === EINTR) continue;
        return e === EAGAIN ? sent.late() : sent.failed(`errno ${e}`);
      }
      n += k;
    }
    kept = true;
    return sent;
  } finally {
    if (!kept) sent.close();
  }
}

/** A request written on a blocking socket whose answer is still to be read (or never: close()). */
export class SentRequest {
  private readonly c: ReturnType<typeof libc>;
  private fd: number;
  private readonly socketPath: string;
  private readonly waitMs: number;
  private readonly deadline: number;

  constructor(c: ReturnType<typeof libc>, fd: number, socketPath: string, waitMs: number) {
    this.c = c;
    this.fd = fd;
    this.socketPath = socketPath;
    this.waitMs = waitMs;
    this.deadline = performance.now() + waitMs;
  }

  /** Sets a send or receive timeout to what is left of the wait. */
  timeout(option: number): void {
    // At least 1 ms: a zero timeval means "wait for ever".
    const ms = Math.max(1, Math.ceil(this.deadline - performance.now()));
    const tv = Buffer.alloc(16); // struct timeval { long tv_sec; long tv_usec; }
    tv.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
    tv.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
    this.c.setsockopt(this.fd, SOL_SOCKET, option, tv, 16);
  }

  late(): LineExchange {
    return { kind: 'timeout', message: `no answer from the agent on ${this.socketPath} within ${this.waitMs} ms` };
  }

  failed(what: string): LineExchange {
    return { kind: 'timeout', message: `the exchange with the agent on ${this.socketPath} failed: ${what}` };
  }

  /** Reads the answer line (waiting what is left of the wait) and closes the socket. */
  answer(maxBytes: number): LineExchange {
    try {
      const answer = new AnswerLine(this.socketPath, maxBytes);
      const buf = Buffer.allocUnsafe(4096);
      for (;;) {
        if (performance.now() >= this.deadline) return this.late();
        this.timeout(SO_RCVTIMEO);
        const n = Number(this.c.recv(this.fd, buf, buf.length, 0));
        if (n < 0) {
          const e = errno();
          if (e === EINTR) continue;
          return e === EAGAIN ? this.late() : this.failed(`errno ${e}`);
        }
        if (n === 0) return answer.end();
        // Copied: the receive buffer is read into again.
        const done = answer.push(Buffer.from(buf.subarray(0, n)));
        if (done) return done;
      }
    } finally {
      this.close();
    }
  }

  /** Hangs up without the answer (idempotent). */
  close(): void {
    if (this.fd < 0) return;
    this.c.close(this.fd);
    this.fd = -1;
  }
}

export type LineExchange = { kind: 'line'; text: string } | Exclude<Exchange, { kind: 'answer' }>;

/**
 * One request line, one answer line (at most maxBytes), at most waitMs from connect to answer; the
 * answer is not interpreted. Never rejects. Also the command line's (src/cli/agent-query.ts), whose
 * answers may be larger than a pod-start message.
 */
export async function exchangeLine(
  socketPath: string,
  request: HandshakeRequest,
  waitMs: number,
  maxBytes = MAX_MESSAGE_BYTES,
): Promise<LineExchange> {
  // No socket file is the common standalone case: answer it without making a socket at all.
  if (!existsSync(socketPath)) return { kind: 'no-agent', message: `no agent socket at ${socketPath}` };
  // node:net only when there is a socket to talk to: loading it is about 3 ms of a pod start.
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    let settled = false;
    const answer = new AnswerLine(socketPath, maxBytes);
    const socket = connect(socketPath);
    const settle = (r: LineExchange) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () => settle({ kind: 'timeout', message: `no answer from the agent on ${socketPath} within ${waitMs} ms` }),
      waitMs,
    );

    let connected = false;
    socket.once('connect', () => {
      connected = true;
      socket.end(encodeMessage(request));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // Before the connection: nobody there, as no socket file (ENOENT) or a stale one nobody
      // listens on (ECONNREFUSED). After it: a broken exchange with an agent that is there.
      if (connected)
        settle({ kind: 'timeout', message: `the exchange with the agent on ${socketPath} failed: ${err.message}` });
      else settle({ kind: 'no-agent', message: `no agent on ${socketPath} (${err.code ?? err.message})` });
    });
    socket.on('data', (data: Buffer) => {
      const done = answer.push(data);
      if (done) settle(done);
    });
    socket.on('end', () => settle(answer.end()));
  });
}

/** The agent's answer as its bytes come: the first line, at most maxBytes, or what came before the end. */
class AnswerLine {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private readonly socketPath: string;
  private readonly maxBytes: number;
  constructor(socketPath: string, maxBytes: number) {
    this.socketPath = socketPath;
    this.maxBytes = maxBytes;
  }

  /** The exchange's outcome once this chunk ends the line (or breaks the limit), else undefined. */
  push(data: Buffer): LineExchange | undefined {
    const nl = data.indexOf(0x0a);
    const part = nl >= 0 ? data.subarray(0, nl) : data;
    this.size += part.length;
    if (this.size > this.maxBytes)
      return { kind: 'invalid', message: `the agent's answer is larger than ${this.maxBytes} bytes` };
    this.chunks.push(part);
    return nl >= 0 ? { kind: 'line', text: Buffer.concat(this.chunks).toString('utf8') } : undefined;
  }

  /** The agent closed the connection: what came is the answer, if anything came. */
  end(): LineExchange {
    const text = Buffer.concat(this.chunks).toString('utf8');
    if (text.trim() === '')
      return { kind: 'timeout', message: `the agent on ${this.socketPath} closed the connection without an answer` };
    return { kind: 'line', text };
  }
}

export function parseAnswer(line: string): Exchange {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { kind: 'invalid', message: `the agent's answer is not JSON: ${line.slice(0, 200)}` };
  }
  const a = json as Record<string, unknown> | null;
  if (typeof a !== 'object' || a === null || Array.isArray(a))
    return { kind: 'invalid', message: "the agent's answer is not a JSON object" };
  if (a.v !== HANDSHAKE_VERSION)
    return {
      kind: 'invalid',
      message: `the agent answered in protocol version ${JSON.stringify(a.v)}, not ${HANDSHAKE_VERSION}`,
    };
  if (typeof a.ok !== 'boolean') return { kind: 'invalid', message: 'the agent\'s answer has no boolean "ok"' };
  const answer: Answer = { ok: a.ok };
  if (typeof a.message === 'string') answer.message = a.message;
  if (typeof a.ready === 'boolean') answer.ready = a.ready;
  if (Array.isArray(a.reasons)) answer.reasons = a.reasons.filter((x): x is string => typeof x === 'string');
  return { kind: 'answer', answer };
}
