// The agent's health and metrics endpoint (node:http): what kubelet's probes and Prometheus read.
//   GET /healthz  200 "ok" while the process is alive and its loops turn, else 503
//   GET /readyz   200 "ok" when ready, else 503 with the reasons, one per line
//   GET /metrics  the registry in Prometheus text format
// HEAD answers like GET without a body. Any other path is 404, any other method on these paths 405.
// A probe must never take the agent down: a malformed request gets a 400 from node:http's parser
// (clientError below), and an exception in a callback becomes a 500 or 503, never a crash.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.ts';

export interface HealthServerOptions {
  /** "host:port"; "[v6]:port" for IPv6; port 0 picks any free port. */
  addr: string;
  registry: Registry;
  alive: () => boolean;
  ready: () => { ready: boolean; reasons: string[] };
  log: Logger;
}

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

/** Splits "host:port" ("0.0.0.0:9797", "[::]:9797", "localhost:0"); throws naming what is wrong. */
export function parseHostPort(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr);
  if (!m) throw new Error(`invalid address "${addr}": expected HOST:PORT, with an IPv6 host in brackets ([::]:9797)`);
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`invalid address "${addr}": port ${port} is out of range`);
  if (m[1] !== undefined && isIP(host) !== 6)
    throw new Error(`invalid address "${addr}": "${host}" is not an IPv6 address`);
  if (host === '')
    throw new Error(`invalid address "${addr}": the host is empty (use 0.0.0.0 or [::] for all addresses)`);
  return { host, port };
}

const TEXT = 'text/plain; charset=utf-8';

export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const { host, port } = parseHostPort(opts.addr);
  const { log } = opts;

  const server = createServer((req, res) => {
    handle(opts, req, res).catch((err: unknown) => {
      log.error({ err }, 'health server: answering a request failed');
      if (!res.headersSent) send(res, req, 500, 'internal error\n');
      else res.destroy();
    });
  });
  // Bytes that are not HTTP: answer 400 when the socket can still take it, and never throw.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    log.debug({ err: err.message, code: err.code }, 'health server: bad request');
    if (socket.writable && err.code !== 'ECONNRESET') {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    } else {
      socket.destroy();
    }
  });
  // Probes come every few seconds; a slow or silent client must not hold sockets open for long.
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) =>
      reject(new Error(`health server: cannot listen on ${opts.addr}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'health server error'));
  const bound = (server.address() as AddressInfo).port;
  log.info({ addr: opts.addr, port: bound }, 'health server listening');

  let closing: Promise<void> | undefined;
  return {
    port: bound,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections (Prometheus keeps one) would hold close() open otherwise.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function handle(opts: HealthServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  const route = ROUTES[path ?? ''];
  if (!route) return send(res, req, 404, 'not found\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, req, 405, 'method not allowed\n');
  }
  return route(opts, req, res);
}

type Route = (opts: HealthServerOptions, req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

const ROUTES: Record<string, Route> = {
  '/healthz': (opts, req, res) => {
    let alive = false;
    try {
      alive = opts.alive();
    } catch (err) {
      opts.log.warn({ err }, 'health server: the liveness check threw');
    }
    send(res, req, alive ? 200 : 503, alive ? 'ok\n' : 'not alive\n');
  },
  '/readyz': (opts, req, res) => {
    let r: { ready: boolean; reasons: string[] };
    try {
      r = opts.ready();
    } catch (err) {
      r = {
        ready: false,
        reasons: [`the readiness check failed: ${err instanceof Error ? err.message : String(err)}`],
      };
    }
    if (r.ready) return send(res, req, 200, 'ok\n');
    const reasons = r.reasons.length > 0 ? r.reasons : ['not ready'];
    send(res, req, 503, reasons.map((s) => `${s.replace(/\n/g, ' ')}\n`).join(''));
  },
  '/metrics': async (opts, req, res) => {
    const text = await opts.registry.metrics();
    send(res, req, 200, text, opts.registry.contentType);
  },
};

function send(res: ServerResponse, req: IncomingMessage, status: number, body: string, contentType = TEXT): void {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': bytes.length, 'Cache-Control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}
