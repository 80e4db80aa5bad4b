// The agent's health and metrics server over real HTTP on 127.0.0.1 (port 0): what kubelet's probes
// and Prometheus see, including requests that are not HTTP at all.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseHostPort, startHealthServer, type HealthServer } from '../../src/agent/health.ts';
import {
  createMetrics,
  ipamNetwork,
  setIpamGauges,
  updateIpamGauges,
  type AgentMetrics,
} from '../../src/agent/metrics.ts';
import { ReservationReader } from '../../src/ipam/reservation-reader.ts';
import { silentLogger } from '../../src/log.ts';

let server: HealthServer;
let metrics: AgentMetrics;
let alive: () => boolean;
let ready: () => { ready: boolean; reasons: string[] };

beforeEach(async () => {
  metrics = createMetrics();
  alive = () => true;
  ready = () => ({ ready: true, reasons: [] });
  server = await startHealthServer({
    addr: '127.0.0.1:0',
    registry: metrics.registry,
    alive: () => alive(),
    ready: () => ready(),
    log: silentLogger,
  });
});
afterEach(async () => {
  await server.close();
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(path: string, method = 'GET', port = server.port, host = '127.0.0.1'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Raw bytes to the server; whatever it sends back until it closes (or 2 s pass). */
function raw(bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const c = connect(server.port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => c.destroy(), 2_000);
    c.setEncoding('utf8');
    c.on('data', (d: string) => (out += d));
    c.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    c.on('error', () => undefined);
    c.on('connect', () => c.write(bytes));
  });
}

describe('health server', () => {
  it('/healthz is 200 "ok" while alive, 503 when not, and when the check throws', async () => {
    expect(await get('/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    alive = () => false;
    expect((await get('/healthz')).status).toBe(503);
    alive = () => {
      throw new Error('loop stuck');
    };
    expect((await get('/healthz')).status).toBe(503);
  });

  it('/readyz is 200 when ready, 503 with one reason per line when not', async () => {
    const ok = await get('/readyz');
    expect(ok).toMatchObject({ status: 200, body: 'ok\n' });
    expect(ok.headers['content-type']).toBe('text/plain; charset=utf-8');
    ready = () => ({ ready: false, reasons: ['node has no pod CIDR yet', 'conflist not written'] });
    expect(await get('/readyz')).toMatchObject({
      status: 503,
      body: 'node has no pod CIDR yet\nconflist not written\n',
    });
    ready = () => ({ ready: false, reasons: [] });
    expect(await get('/readyz')).toMatchObject({ status: 503, body: 'not ready\n' });
    ready = () => {
      throw new Error('cache gone');
    };
    expect(await get('/readyz')).toMatchObject({ status: 503, body: 'the readiness check failed: cache gone\n' });
  });

  it('/metrics is Prometheus text with the Strand metrics and the default process metrics', async () => {
    metrics.reconcileTotal.inc({ result: 'ok' });
    metrics.reconcileDuration.observe(0.012);
    metrics.watchRestarts.inc({ resource: 'pods' });
    metrics.apiErrors.inc({ resource: 'nodes' });
    metrics.podStartNotices.inc({ result: 'ok' });
    const r = await get('/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    for (const name of [
      'strand_reconcile_total',
      'strand_reconcile_duration_seconds',
      'strand_watch_restarts_total',
      'strand_api_errors_total',
      'strand_ipam_addresses',
      'strand_pod_start_notices_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(r.body).toContain(`# HELP ${name} `);
      expect(r.body).toContain(`# TYPE ${name} `);
    }
    expect(r.body).toContain('strand_reconcile_total{result="ok"} 1');
    expect(r.body).toContain('strand_reconcile_duration_seconds_bucket{le="0.025"} 1');
    expect(r.body).toContain('strand_watch_restarts_total{resource="pods"} 1');
  });

  it('HEAD answers like GET without a body; other paths are 404, other methods 405', async () => {
    const h = await get('/healthz', 'HEAD');
    expect(h.status).toBe(200);
    expect(h.body).toBe('');
    expect(h.headers['content-length']).toBe('3');
    expect((await get('/metrics', 'HEAD')).status).toBe(200);
    expect((await get('/')).status).toBe(404);
    expect((await get('/healthz/x')).status).toBe(404);
    expect((await get('/nope', 'POST')).status).toBe(404);
    const post = await get('/healthz', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    // A query string does not change the route (kubelet does not send one, curl users might).
    expect((await get('/readyz?verbose')).status).toBe(200);
  });

  it('malformed requests get 400 or a closed socket, and the server keeps answering', async () => {
    expect(await raw('this is not http\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw(`GET /${'a'.repeat(20_000)} HTTP/1.1\r\nX: ${'b'.repeat(20_000)}\r\n\r\n`)).toMatch(
      /^HTTP\/1\.1 431|^HTTP\/1\.1 400|^$/,
    );
    expect(await raw('\u0000\u0001\u0002\u00ff\r\n\r\n')).toMatch(/^HTTP\/1\.1 400|^$/);
    // Half a request, then the client goes away.
    const c = connect(server.port, '127.0.0.1');
    await new Promise<void>((r) => c.on('connect', () => r()));
    c.write('GET /heal');
    c.destroy();
    expect(await get('/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
  });

  it('a failing metrics collection is a 500, not a crash', async () => {
    const { Gauge } = await import('prom-client');
    new Gauge({
      name: 'strand_test_broken',
      help: 'a collect callback that throws',
      registers: [metrics.registry],
      collect() {
        throw new Error('collector broke');
      },
    });
    expect((await get('/metrics')).status).toBe(500);
    expect((await get('/healthz')).status).toBe(200);
  });

  it('close() returns while a client holds a keep-alive connection', async () => {
    const { Agent } = await import('node:http');
    const agent = new Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      request({ host: '127.0.0.1', port: server.port, path: '/healthz', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      })
        .on('error', reject)
        .end();
    });
    const t0 = Date.now();
    await server.close();
    expect(Date.now() - t0).toBeLessThan(1_000);
    agent.destroy();
  });
});

describe('health server addresses', () => {
  it('parses host:port, IPv6 in brackets, and refuses the rest', () => {
    expect(parseHostPort('0.0.0.0:9797')).toEqual({ host: '0.0.0.0', port: 9797 });
    expect(parseHostPort('[::]:9797')).toEqual({ host: '::', port: 9797 });
    expect(parseHostPort('[fd00::1]:0')).toEqual({ host: 'fd00::1', port: 0 });
    expect(parseHostPort('localhost:8080')).toEqual({ host: 'localhost', port: 8080 });
    expect(() => parseHostPort('9797')).toThrow(/HOST:PORT/);
    expect(() => parseHostPort(':9797')).toThrow(/host is empty/);
    expect(() => parseHostPort('::1:9797')).toThrow(/brackets/);
    expect(() => parseHostPort('[nope]:1')).toThrow(/not an IPv6 address/);
    expect(() => parseHostPort('1.2.3.4:70000')).toThrow(/out of range/);
  });

  it('listens on [::1]:0', async () => {
    const s = await startHealthServer({
      addr: '[::1]:0',
      registry: metrics.registry,
      alive: () => true,
      ready: () => ({ ready: true, reasons: [] }),
      log: silentLogger,
    });
    try {
      expect(await get('/healthz', 'GET', s.port, '::1')).toMatchObject({ status: 200, body: 'ok\n' });
    } finally {
      await s.close();
    }
  });

  it('a port in use is a clear error', async () => {
    await expect(
      startHealthServer({
        addr: `127.0.0.1:${server.port}`,
        registry: metrics.registry,
        alive: () => true,
        ready: () => ({ ready: true, reasons: [] }),
        log: silentLogger,
      }),
    ).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  });
});

describe('IPAM gauges', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'strand-metrics-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('used and free per network and family, from the IPAM store; unreadable networks are reported and dropped', async () => {
    const net = (name: string, ipam: Record<string, unknown>) => ({
      cniVersion: '1.1.0',
      name,
      type: 'strand',
      ipam: { type: 'strand-ipam', dataDir: dir, ...ipam },
    });
    const dual = net('dual', { ranges: [[{ subnet: '10.9.0.0/24' }], [{ subnet: 'fd09::/120' }]] });
    mkdirSync(join(dir, 'dual'));
    writeFileSync(join(dir, 'dual', '10.9.0.2'), 'ctr1\r\neth0');
    writeFileSync(join(dir, 'dual', '10.9.0.3'), 'ctr2\r\neth0');
    writeFileSync(join(dir, 'dual', 'fd09::2'), 'ctr1\r\neth0');
    const broken = net('needs-node-state', { subnet: 'usePodCidr', stateDir: join(dir, 'no-state') });

    const problems = updateIpamGauges(metrics, [dual, broken]);
    expect(problems.map((p) => p.network)).toEqual(['needs-node-state']);
    const values = (await metrics.ipamAddresses.get()).values.map((v) => [
      v.labels.network,
      v.labels.family,
      v.labels.state,
      v.value,
    ]);
    // A /24 hands out .1-.254 without the gateway (.1): 253; a /120 ::1-::ff (no broadcast in IPv6) without it: 254.
    expect(values).toEqual(
      expect.arrayContaining([
        ['dual', '4', 'used', 2],
        ['dual', '4', 'free', 251],
        ['dual', '6', 'used', 1],
        ['dual', '6', 'free', 253],
      ]),
    );
    expect(values).toHaveLength(4);

    // A network that is gone loses its series.
    updateIpamGauges(metrics, []);
    expect((await metrics.ipamAddresses.get()).values).toEqual([]);

    // From a network resolved once and the reservations a reader has already read (the agent's
    // step): the same series, and the store is not read again for them.
    const reader = new ReservationReader(join(dir, 'dual'));
    const { reservations } = reader.read();
    const asked: string[] = [];
    const resolved = [ipamNetwork(dual), ipamNetwork(broken)];
    expect(resolved[1]?.problem).toBeDefined();
    const again = setIpamGauges(metrics, resolved, (d) => {
      asked.push(d);
      return d === reader.dir ? reservations : undefined;
    });
    expect(again.map((p) => p.network)).toEqual(['needs-node-state']);
    expect(asked).toEqual([reader.dir]);
    const values2 = (await metrics.ipamAddresses.get()).values.map((v) => [
      v.labels.network,
      v.labels.family,
      v.labels.state,
      v.value,
    ]);
    expect(values2).toEqual(values);
  });
});
