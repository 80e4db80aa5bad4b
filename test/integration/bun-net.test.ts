// The CNI executable's socket to the agent (src/sea/bun-net.ts: node:net's connect over Bun.connect),
// run under the pinned Bun against a server in this process that behaves as the agent's does
// (half-open allowed, answer after the request's newline). The plugin's handshake tests cover it
// through dist/cni/strand; this checks the edges node:net callers rely on directly.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const BUN = resolve(ROOT, 'node_modules/@oven/bun-linux-x64/bin/bun');
const SHIM = resolve(ROOT, 'src/sea/bun-net.ts');

let dir: string | undefined;
let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((done) => (server ? server.close(() => done()) : done()));
  server = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Runs the client under Bun: connect, send `request` with end(), report every event in order. */
function client(path: string, request: string): Promise<string[]> {
  const script = `
    const events = [];
    const timer = setTimeout(() => { events.push('timeout'); done(); }, 5000);
    const done = () => { clearTimeout(timer); process.stdout.write(JSON.stringify(events)); };
    const s = require(${JSON.stringify(SHIM)}).connect(${JSON.stringify(path)});
    s.once('connect', () => { events.push('connect'); s.end(${JSON.stringify(request)}); });
    s.on('data', (d) => events.push('data:' + Buffer.from(d).toString()));
    s.on('end', () => { events.push('end'); s.destroy(); done(); });
    s.on('error', (e) => { events.push('error:' + e.code); s.destroy(); done(); });
  `;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(BUN, ['-e', script], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) =>
      code === 0 ? resolvePromise(JSON.parse(out) as string[]) : reject(new Error(`bun exited ${code}: ${err}`)),
    );
  });
}

function socketPath(): string {
  dir = mkdtempSync(join(tmpdir(), 'stt-bunnet-'));
  return join(dir, 'agent.sock');
}

describe('node:net connect over Bun.connect (the CNI executable)', () => {
  it('writes the request, half-closes, and still receives the answer and the end', async () => {
    const path = socketPath();
    const received: string[] = [];
    server = createServer({ allowHalfOpen: true }, (s) => {
      let got = '';
      s.on('data', (d) => {
        got += d;
        // Answer later than the client's half-close, as an agent that has work to do would.
        if (got.includes('\n')) setTimeout(() => s.end('{"ok":true}\n'), 50);
      });
      s.on('end', () => received.push(`request:${got}`));
    });
    await new Promise<void>((done) => server?.listen(path, done));
    expect(await client(path, '{"hello":1}\n')).toEqual(['connect', 'data:{"ok":true}\n', 'end']);
    expect(received).toEqual(['request:{"hello":1}\n']);
  });

  it('reports a missing socket file and a socket nobody listens on as node:net does, after connect() returns', async () => {
    const path = socketPath();
    expect(await client(path, 'x\n')).toEqual(['error:ENOENT']);
    writeFileSync(path, '');
    expect(await client(path, 'x\n')).toEqual(['error:ECONNREFUSED']);
  });
});
