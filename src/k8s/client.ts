// A client of the Kubernetes API from a kubeconfig or the in-cluster service account: one request
// with the kubeconfig's credentials and TLS settings (raw JSON, not the generated client, whose
// deserializer fails a whole list on one malformed item and builds heavy model objects).
// From their own modules, not the package's index: the index loads the whole generated client (every
// API and model class, ~45 ms of every start of the agent and the command line), none of it used here.
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { HttpMethod, RequestContext } from '@kubernetes/client-node/dist/gen/http/http.js';
import { isAscii } from 'node:buffer';
import { type Dispatcher, request } from 'undici';
import { decodeProtobufStatus, isProtobuf } from './protobuf.ts';
import { ApiReachability, PROBE_INTERVAL_MS } from './reachability.ts';

export class KubeConfigError extends Error {
  override name = 'KubeConfigError';
}

/**
 * A kubeconfig file if given (--kubeconfig or KUBECONFIG, merged into the agent's config), else the
 * in-cluster service account. Errors are KubeConfigErrors: the CLI refuses to start on them.
 */
export function loadKubeConfig(kubeconfig: string | undefined, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfig !== undefined) {
    try {
      kc.loadFromFile(kubeconfig);
    } catch (err) {
      throw new KubeConfigError(`kubeconfig ${kubeconfig}: ${(err as Error).message.split('\n')[0]}`);
    }
    if (!kc.getCurrentCluster())
      throw new KubeConfigError(
        `kubeconfig ${kubeconfig}: no current cluster (current-context "${kc.getCurrentContext()}")`,
      );
    return kc;
  }
  if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
    throw new KubeConfigError(
      'no kubeconfig (--kubeconfig or KUBECONFIG) and not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)',
    );
  }
  kc.loadFromCluster();
  return kc;
}

/** A failed API request: the HTTP status (0 when there was no answer) and the server's message. */
export class ApiRequestError extends Error {
  override name = 'ApiRequestError';
  readonly statusCode: number;
  /** ListWatch looks at `code` and `statusCode` for 410. */
  readonly code: number;
  constructor(statusCode: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.statusCode = statusCode;
    this.code = statusCode;
  }
}

/** Short text of any error the client produces, for logs. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const code = (cause as NodeJS.ErrnoException | undefined)?.code ?? (err as NodeJS.ErrnoException).code;
    return code && typeof code === 'string' && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

export class KubeClient {
  readonly kc: KubeConfig;
  readonly server: string;
  /** Whether the API answers, shared by everything that uses this client (reachability.ts). */
  readonly reachability: ApiReachability;

  /** `probeMs`: how often an unreachable API is tried (reachability.ts; tests shorten it). */
  constructor(kc: KubeConfig, opts: { probeMs?: number } = {}) {
    this.kc = kc;
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new KubeConfigError('the kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/+$/, '');
    const probe = () => this.request('GET', '/version', { timeoutMs: 5_000 });
    this.reachability = new ApiReachability(probe, opts.probeMs ?? PROBE_INTERVAL_MS);
  }

  /** One request with the kubeconfig's credentials and TLS settings; the decoded JSON answer. */
  async request(method: 'GET' | 'PATCH', path: string, opts: RequestOptions = {}): Promise<unknown> {
    const text = await this.requestText(method, path, opts);
    return parseAnswer(method, path, text);
  }

  /**
   * The same request, its answer's text undecoded: a list reads the next page's continue token
   * from the head of the text and asks for that page before it parses this one (informer.ts).
   */
  async requestText(method: 'GET' | 'PATCH', path: string, opts: RequestOptions = {}): Promise<string> {
    const answer = await this.requestAnswer(method, path, opts);
    if (answer.format !== 'json') throw new ApiRequestError(200, `${method} ${path}: the answer is not JSON`);
    return answer.text;
  }

  /**
   * The same request, its answer undecoded: JSON as text, or (where `opts.accept` asked for it and
   * the server gave it) Kubernetes protobuf as bytes the caller owns (releaseBody when read).
   */
  async requestAnswer(method: 'GET' | 'PATCH', path: string, opts: RequestOptions = {}): Promise<Answer> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
    const session = opts.session;
    const prepared = session ? (session.prepared ??= this.credentials(url, method)) : this.credentials(url, method);
    const credentials = await prepared;
    const { dispatcher } = credentials;
    const headers = { ...credentials.headers };
    headers.Accept = opts.accept ?? 'application/json';
    if (opts.contentType) headers['Content-Type'] = opts.contentType;
    let status: number;
    let answer: Answer;
    try {
      const res = await request(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        dispatcher,
        signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
      });
      status = res.statusCode;
      const length = res.headers['content-length'];
      answer = isProtobuf(res.headers['content-type'])
        ? { format: 'protobuf', bytes: await bodyBytes(res.body, length) }
        : { format: 'json', text: await bodyText(res.body, length) };
    } catch (err) {
      const failure = new ApiRequestError(0, `${method} ${path}: ${describeError(err)}`, { cause: err });
      this.reachability.failed(failure);
      throw failure;
    } finally {
      if (!session) dispatcher?.close().catch(() => undefined);
    }
    // Any answer, even an error, says the API is reachable.
    this.reachability.succeeded();
    if (status < 200 || status > 299)
      throw new ApiRequestError(status, `${method} ${path}: ${status} ${statusMessage(answer)}`);
    return answer;
  }

  /**
   * The kubeconfig's credentials and TLS settings for a request: headers (a token read afresh) and,
   * when the cluster needs TLS settings, a dispatcher (connection pool) of its own. client-node makes
   * one per request; the request closes it after its answer, so that no idle connection outlives it,
   * unless it belongs to a session.
   */
  private async credentials(url: URL, method: 'GET' | 'PATCH'): Promise<Credentials> {
    const ctx = new RequestContext(url.toString(), method === 'GET' ? HttpMethod.GET : HttpMethod.PATCH);
    await this.kc.applySecurityAuthentication(ctx);
    return { headers: ctx.getHeaders() as Record<string, string>, dispatcher: ctx.getDispatcher() };
  }
}

interface Credentials {
  headers: Record<string, string>;
  dispatcher: Dispatcher | undefined;
}

/**
 * Requests that go together (the pages of one list): the first one's credentials and connection pool
 * serve the others, and close with the session. A list of 50,000 pods is 100 pages; with a pool per
 * request each page opened a connection (a TLS handshake on a real cluster) and closed it.
 */
export class RequestSession {
  prepared: Promise<Credentials> | undefined;
  private open = true;

  constructor() {
    openSessions++;
  }

  close(): void {
    if (this.open) {
      this.open = false;
      // The lists are done: the pooled buffers would only hold memory until the next one (a relist).
      if (--openSessions === 0) bodyPool.length = 0;
    }
    const prepared = this.prepared;
    this.prepared = undefined;
    prepared?.then(
      (c) => c.dispatcher?.close().catch(() => undefined),
      () => undefined,
    );
  }
}

/** An answer's body: JSON text, or Kubernetes protobuf bytes (protobuf.ts). */
export type Answer = { format: 'json'; text: string } | { format: 'protobuf'; bytes: Buffer };

/** An error answer's message: its Status's (JSON or protobuf), else the start of its text. */
function statusMessage(answer: Answer): string {
  if (answer.format === 'protobuf') {
    const status = decodeProtobufStatus(answer.bytes);
    releaseBody(answer.bytes);
    return status?.message ?? 'an error in protobuf that is not a Status';
  }
  const text = answer.text;
  try {
    const status = JSON.parse(text) as { message?: unknown };
    if (typeof status.message === 'string') return status.message;
  } catch {
    // Not a Status object: keep the text.
  }
  return text.slice(0, 300);
}

export interface RequestOptions {
  query?: Record<string, string>;
  /** The Accept header (default application/json). */
  accept?: string;
  /** Shares credentials and connections with the session's other requests. */
  session?: RequestSession;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
}

/**
 * An answer's body as text, read into one buffer: fetch's `text()` kept every chunk, concatenated them
 * and decoded the copy with a TextDecoder, through web streams. With the length announced the chunks
 * go straight into a buffer of that size, kept for the next answer (SPARE_MAX): a list of 50,000 pods
 * is ~100 answers of ~1 MB, each a new buffer outside the heap that V8 counts towards its next
 * collection. An ASCII body (names and labels in practice) is taken as Latin-1, a plain copy.
 */
export async function bodyText(body: AsyncIterable<Buffer>, length: string | string[] | undefined): Promise<string> {
  const announced = typeof length === 'string' ? Number(length) : Number.NaN;
  if (!Number.isSafeInteger(announced) || announced <= 0) {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk);
    return decode(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
  }
  const buf = spare !== undefined && spare.length >= announced ? spare : Buffer.allocUnsafeSlow(announced);
  // Taken: an answer read at the same time (another informer's list) gets a buffer of its own.
  if (buf === spare) spare = undefined;
  let at = 0;
  let extra: Buffer[] | undefined;
  try {
    for await (const chunk of body) {
      if (extra === undefined && at + chunk.length <= announced) {
        chunk.copy(buf, at);
        at += chunk.length;
      } else (extra ??= [buf.subarray(0, at)]).push(chunk);
    }
    return decode(extra === undefined ? buf.subarray(0, at) : Buffer.concat(extra));
  } finally {
    // The text is a copy: the buffer can take the next answer.
    if (buf.length <= SPARE_MAX && (spare === undefined || spare.length < buf.length)) spare = buf;
  }
}

/** The largest buffer kept between answers (a page of 500 pods is ~1 MB; a bigger answer is rare). */
const SPARE_MAX = 4 * 1024 * 1024;
let spare: Buffer | undefined;

/**
 * An answer's body as bytes the caller owns until it gives them back (releaseBody): a protobuf list
 * page is read where it lies. The list asks for the next page while it reads this one, so two or
 * three buffers are in use at once; they come from a small pool rather than a new buffer outside
 * the heap for each of 100 pages.
 */
export async function bodyBytes(body: AsyncIterable<Buffer>, length: string | string[] | undefined): Promise<Buffer> {
  const announced = typeof length === 'string' ? Number(length) : Number.NaN;
  if (!Number.isSafeInteger(announced) || announced <= 0) {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk);
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
  }
  const i = bodyPool.findIndex((b) => b.length >= announced);
  let buf = i >= 0 ? bodyPool.splice(i, 1)[0] : undefined;
  if (buf === undefined) {
    // Rounded up, with room: the pages of a list differ by a few bytes, and a buffer a little too
    // small for the next page would be of no use to it.
    buf = Buffer.allocUnsafeSlow(Math.ceil((announced * 1.25) / BODY_ROUNDING) * BODY_ROUNDING);
    pooled.add(buf.buffer);
  }
  let at = 0;
  let extra: Buffer[] | undefined;
  for await (const chunk of body) {
    if (extra === undefined && at + chunk.length <= buf.length) {
      chunk.copy(buf, at);
      at += chunk.length;
    } else (extra ??= [buf.subarray(0, at)]).push(chunk);
  }
  if (extra === undefined) return buf.subarray(0, at);
  const whole = Buffer.concat(extra);
  releaseBody(buf);
  return whole;
}

/**
 * Gives bodyBytes' buffer back to its pool once its bytes are read. Any Buffer may be given: only
 * memory bodyBytes allocated is kept (never a socket's chunk, which its owner reuses), and only
 * small buffers, at most BODY_POOL_MAX of them.
 */
export function releaseBody(bytes: Buffer): void {
  const memory = bytes.buffer;
  if (!(memory instanceof ArrayBuffer) || !pooled.has(memory) || memory.byteLength > SPARE_MAX) return;
  if (bodyPool.some((b) => b.buffer === memory)) return;
  bodyPool.push(Buffer.from(memory));
  // The largest are kept: a small one left in a full pool would make every larger answer allocate.
  if (bodyPool.length > BODY_POOL_MAX) {
    bodyPool.sort((a, b) => b.length - a.length);
    bodyPool.length = BODY_POOL_MAX;
  }
}

const BODY_POOL_MAX = 3;
/** Lists under way (RequestSession): the pool is emptied when none is. */
let openSessions = 0;
const BODY_ROUNDING = 64 * 1024;
const bodyPool: Buffer[] = [];
/** The memory bodyBytes allocated (the only memory its pool takes back). */
const pooled = new WeakSet<ArrayBufferLike>();

function decode(buf: Buffer): string {
  return isAscii(buf) ? buf.toString('latin1') : buf.toString('utf8');
}

/** A successful answer's text as JSON; not JSON is the request's failure. */
export function parseAnswer(method: string, path: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ApiRequestError(200, `${method} ${path}: the answer is not JSON: ${(err as Error).message}`);
  }
}
