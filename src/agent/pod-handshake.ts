// The agent side of the pod-start handshake (DESIGN.md "The two programs and their contract"): during
// ADD the plugin tells the agent about the new pod and waits, a bounded time, for the answer that the
// pod's routes and policy are in place. The plugin side is src/plugin/agent-client.ts; the protocol
// (the wire format both sides share) is src/contracts/agent-socket.ts.
import { chmodSync, lstatSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { connect, createServer, isIP, type Server, type Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import * as z from 'zod';
import type { Logger } from '../log.ts';
import {
  encodeMessage,
  HANDSHAKE_VERSION,
  MAX_MESSAGE_BYTES,
  type AgentReadiness,
  type ExplainQuery,
  type HandshakeRequest,
  type PodStartAnswer,
  type PodStartNotice,
} from '../contracts/agent-socket.ts';

/** A client that connects and says nothing is dropped after this long. */
const IDLE_CLIENT_MS = 10_000;
/** sun_path is 108 bytes including the terminating NUL (unix(7)). */
const MAX_SOCKET_PATH = 107;

/** The command line's read-only questions (inspect.ts, src/cli/*); each is optional for a server. */
export interface AgentQueries {
  /** May answer later (the snapshot is built in slices). */
  inspect?: () => unknown;
  explain?: (q: ExplainQuery) => unknown;
}

let schemas: ReturnType<typeof makeSchemas> | undefined;
function makeSchemas() {
  const text = z.string().max(1024);
  const notice = z.object({
    namespace: text.optional(),
    name: text.optional(),
    uid: text.optional(),
    containerId: text.min(1),
    ifname: text.min(1),
    netns: text,
    hostVeth: text.min(1),
    ips: z.array(z.string().refine((s) => isIP(s) !== 0, 'is not an IP address')).max(64),
  });
  const request = z.discriminatedUnion('type', [
    z.object({ v: z.literal(HANDSHAKE_VERSION), type: z.literal('pod-start'), notice }),
    z.object({ v: z.literal(HANDSHAKE_VERSION), type: z.literal('status') }),
    z.object({ v: z.literal(HANDSHAKE_VERSION), type: z.literal('inspect') }),
    z.object({
      v: z.literal(HANDSHAKE_VERSION),
      type: z.literal('explain'),
      src: text.min(1),
      dst: text.min(1),
      port: z.number().int().min(1).max(65535).optional(),
      protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
    }),
  ]);
  return { request };
}

/** Validates one request line; throws a message naming the field. */
export function parseRequest(line: string): HandshakeRequest {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (err) {
    throw new Error(`request is not JSON: ${(err as Error).message}`);
  }
  const v = (json as { v?: unknown } | null)?.v;
  if (typeof json === 'object' && json !== null && v !== HANDSHAKE_VERSION) {
    throw new Error(
      `unsupported protocol version ${JSON.stringify(v)}: this agent speaks version ${HANDSHAKE_VERSION}`,
    );
  }
  schemas ??= makeSchemas();
  const r = schemas.request.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'request';
    throw new Error(`invalid request: ${where}: ${issue?.message ?? 'invalid'}`);
  }
  return r.data as HandshakeRequest;
}

/** One parse of a well-formed notice (its answer unused), so that the first real one finds the
 * schemas built and the parser compiled. */
function warmParser(): void {
  const notice = { containerId: 'warm', ifname: 'eth0', netns: '', hostVeth: 'warm', ips: ['192.0.2.1'] };
  parseRequest(JSON.stringify({ v: HANDSHAKE_VERSION, type: 'pod-start', notice }));
}

type ProbeResult = 'live' | 'stale' | 'absent';

/** Is an agent answering on `path`? A socket file nobody listens on (ECONNREFUSED) is stale. */
function probe(path: string, timeoutMs = 1_000): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    const timer = setTimeout(() => {
      // Connected sockets get an answer or a close quickly; a hung accept means someone is there.
      s.destroy();
      resolve('live');
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('live');
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ECONNREFUSED') resolve('stale');
      else if (err.code === 'ENOENT') resolve('absent');
      else reject(new Error(`cannot tell whether an agent listens on ${path}: ${err.message}`, { cause: err }));
    });
  });
}

function inodeOf(path: string): number | undefined {
  try {
    return lstatSync(path).ino;
  } catch {
    return undefined;
  }
}

export class PodHandshakeServer {
  readonly socketPath: string;
  private readonly server: Server;
  private readonly ino: number;
  private readonly log: Logger;
  private readonly connections = new Set<Socket>();
  private closing: Promise<void> | undefined;

  private constructor(socketPath: string, server: Server, ino: number, log: Logger) {
    this.socketPath = socketPath;
    this.server = server;
    this.ino = ino;
    this.log = log;
  }

  /**
   * Listens on `socketPath`. The socket is bound under a temporary name beside it, made 0600, and
   * renamed into place: a plugin never finds a half-set-up socket, and a stale socket file of a dead
   * agent is replaced in one step. A socket some live agent answers on is refused.
   */
  static async start(
    socketPath: string,
    handler: (notice: PodStartNotice) => Promise<PodStartAnswer>,
    log: Logger,
    status?: () => AgentReadiness,
    queries: AgentQueries = {},
  ): Promise<PodHandshakeServer> {
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
      throw new Error(`agent socket path ${socketPath} is longer than ${MAX_SOCKET_PATH} bytes (unix(7) sun_path)`);
    }
    const dir = dirname(socketPath);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const existing = lstatOrUndefined(socketPath);
    if (existing && !existing.isSocket()) {
      throw new Error(`agent socket path ${socketPath} exists and is not a socket: refusing to replace it`);
    }
    if (existing && (await probe(socketPath)) === 'live') {
      throw new Error(`another agent is listening on ${socketPath}`);
    }

    const tmp = join(dir, `.${basename(socketPath)}.${process.pid}`);
    if (Buffer.byteLength(tmp) > MAX_SOCKET_PATH) {
      throw new Error(
        `agent socket path ${socketPath} is too long for its temporary name ${tmp} (${MAX_SOCKET_PATH} bytes)`,
      );
    }
    rmSync(tmp, { force: true });
    // The request schemas are built, and zod's parser for them made, by the first parse: 11 ms that
    // the first pod start would otherwise wait for. Made here, before anyone connects.
    warmParser();

    let self: PodHandshakeServer | undefined;
    const server = createServer({ allowHalfOpen: true }, (socket) => self?.serve(socket, handler, status, queries));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(tmp, () => {
        server.off('error', reject);
        resolve();
      });
    });
    try {
      chmodSync(tmp, 0o600);
      renameSync(tmp, socketPath);
    } catch (err) {
      server.close();
      rmSync(tmp, { force: true });
      throw new Error(`cannot put the agent socket in place at ${socketPath}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    server.on('error', (err) => log.error({ err }, 'pod handshake server error'));
    self = new PodHandshakeServer(socketPath, server, statSync(socketPath).ino, log);
    log.info({ socket: socketPath }, 'pod handshake socket listening');
    return self;
  }

  /** Stops listening, drops open connections and removes the socket file if it is still this one. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      // Another agent may have taken the path over since (after this one was thought dead).
      if (inodeOf(this.socketPath) === this.ino) rmSync(this.socketPath, { force: true });
      for (const c of this.connections) c.destroy();
      this.server.close(() => resolve());
    });
    return this.closing;
  }

  private serve(
    socket: Socket,
    handler: (notice: PodStartNotice) => Promise<PodStartAnswer>,
    status: (() => AgentReadiness) | undefined,
    queries: AgentQueries,
  ): void {
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'pod handshake: connection error'));
    socket.setTimeout(IDLE_CLIENT_MS, () => socket.destroy());

    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (line: string | undefined) => {
      if (done) return;
      done = true;
      socket.removeAllListeners('data');
      socket.setTimeout(0);
      if (line === undefined) {
        // Connected and left without a word: a liveness probe (see probe()).
        socket.end();
        return;
      }
      void this.answer(line, handler, status, queries).then((answer) => {
        if (!socket.destroyed) socket.end(encodeMessage(answer));
      });
    };
    socket.on('data', (data: Buffer) => {
      const nl = data.indexOf(0x0a);
      const take = nl >= 0 ? data.subarray(0, nl) : data;
      size += take.length;
      if (size > MAX_MESSAGE_BYTES) {
        done = true;
        socket.removeAllListeners('data');
        this.log.warn({ bytes: size }, 'pod handshake: request too large');
        socket.end(
          encodeMessage({
            v: HANDSHAKE_VERSION,
            ok: false,
            error: 'bad-request',
            message: `request larger than ${MAX_MESSAGE_BYTES} bytes`,
          }),
        );
        return;
      }
      chunks.push(take);
      if (nl >= 0) finish(Buffer.concat(chunks).toString('utf8'));
    });
    // The request may end with the client's end of the stream instead of "\n".
    socket.on('end', () => {
      const line = Buffer.concat(chunks).toString('utf8');
      finish(line.trim() === '' ? undefined : line);
    });
  }

  private async answer(
    line: string,
    handler: (notice: PodStartNotice) => Promise<PodStartAnswer>,
    status: (() => AgentReadiness) | undefined,
    queries: AgentQueries,
  ): Promise<unknown> {
    let req: HandshakeRequest;
    try {
      req = parseRequest(line);
    } catch (err) {
      const message = (err as Error).message;
      this.log.warn({ message }, 'pod handshake: bad request');
      return { v: HANDSHAKE_VERSION, ok: false, error: 'bad-request', message };
    }
    if (req.type === 'status') {
      // An agent that serves no status callback answers ready: it is up, the socket shows that.
      let r: AgentReadiness = { ready: true, reasons: [] };
      try {
        if (status) r = status();
      } catch (err) {
        r = { ready: false, reasons: [`the readiness check failed: ${(err as Error).message}`] };
      }
      return { v: HANDSHAKE_VERSION, ok: true, ready: r.ready, reasons: r.reasons };
    }
    if (req.type === 'inspect' || req.type === 'explain') return this.query(req, queries);
    try {
      const a = await handler(req.notice);
      return a.message === undefined
        ? { v: HANDSHAKE_VERSION, ok: a.ok }
        : { v: HANDSHAKE_VERSION, ok: a.ok, message: a.message };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.error({ err, notice: req.notice }, 'pod handshake: the handler failed');
      return { v: HANDSHAKE_VERSION, ok: false, message };
    }
  }

  /** A read-only question of the command line; an exception is an answer, never a crash. */
  private async query(
    req: Extract<HandshakeRequest, { type: 'inspect' | 'explain' }>,
    queries: AgentQueries,
  ): Promise<unknown> {
    const fn = req.type === 'inspect' ? queries.inspect : queries.explain;
    if (!fn)
      return {
        v: HANDSHAKE_VERSION,
        ok: false,
        error: 'unsupported',
        message: `this agent does not answer ${req.type} requests`,
      };
    try {
      if (req.type === 'inspect') return { v: HANDSHAKE_VERSION, ok: true, inspect: await (fn as () => unknown)() };
      const q: ExplainQuery = { src: req.src, dst: req.dst };
      if (req.port !== undefined) q.port = req.port;
      if (req.protocol !== undefined) q.protocol = req.protocol;
      return { v: HANDSHAKE_VERSION, ok: true, explain: await (fn as (q: ExplainQuery) => unknown)(q) };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.warn({ type: req.type, message }, 'agent socket: a query failed');
      return { v: HANDSHAKE_VERSION, ok: false, error: 'failed', message };
    }
  }
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
