// The API server's control channel: the simulator drives test/kit/sim/api-server.ts (the test API
// server in a process of its own inside the switch namespace) with JSON lines on its stdin.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { LeastPrivilegeReport } from '../k8s/rbac.ts';
import { REPO, type KubeObject } from './topology.ts';

/** Talks to test/kit/sim/api-server.ts over its stdin/stdout. */
export class ApiControl {
  readonly url: string;
  /** The bearer token of the manifest's DaemonSet ServiceAccount: the agents' identity. */
  readonly agentToken: string;
  private readonly proc: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private stderr = '';
  readonly exited: Promise<void>;

  private constructor(proc: ChildProcess, url: string, agentToken: string) {
    this.proc = proc;
    this.url = url;
    this.agentToken = agentToken;
    this.exited = new Promise((r) => proc.once('exit', () => r()));
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Starts the API server inside `netns`, listening on host:port there, authorizing by the manifest's RBAC. */
  static start(netns: string, host: string, port: number, rbacManifest: string): Promise<ApiControl> {
    const script = join(REPO, 'test', 'kit', 'sim', 'api-server.ts');
    const proc = spawn(
      'ip',
      ['netns', 'exec', netns, process.execPath, script, '--listen', `${host}:${port}`, '--rbac', rbacManifest],
      {
        env: { PATH: process.env.PATH },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    return new Promise((resolvePromise, reject) => {
      let api: ApiControl | undefined;
      let stderr = '';
      proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
        stderr = (stderr + d).slice(-4000);
        if (api) api.stderr = stderr;
      });
      proc.once('exit', (code) => {
        if (!api) reject(new Error(`the API server exited (${code}) before it was ready: ${stderr.trim()}`));
        else
          for (const p of api.pending.values())
            p.reject(new Error(`the API server exited (${code}): ${stderr.trim()}`));
      });
      proc.once('error', reject);
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        let msg: {
          ready?: boolean;
          url?: string;
          agentToken?: string;
          id?: number;
          ok?: boolean;
          result?: unknown;
          error?: string;
          code?: number;
        };
        try {
          msg = JSON.parse(line);
        } catch {
          return;
        }
        if (msg.ready && !api) {
          if (typeof msg.agentToken !== 'string') {
            reject(new Error('the API server started without RBAC (no agent token)'));
            proc.kill('SIGKILL');
            return;
          }
          api = new ApiControl(proc, msg.url ?? `http://${host}:${port}`, msg.agentToken);
          resolvePromise(api);
          return;
        }
        const p = msg.id !== undefined ? api?.pending.get(msg.id) : undefined;
        if (!p || !api) return;
        api.pending.delete(msg.id as number);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(Object.assign(new Error(`API server: ${msg.error}`), { code: msg.code }));
      });
      proc.stdin!.on('error', () => {});
    });
  }

  private request<T>(op: string, fields: Record<string, unknown> = {}): Promise<T> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null)
      return Promise.reject(new Error(`the API server is not running: ${this.stderr.trim()}`));
    const id = this.nextId++;
    return new Promise<T>((resolvePromise, reject) => {
      this.pending.set(id, { resolve: resolvePromise as (v: unknown) => void, reject });
      this.proc.stdin!.write(`${JSON.stringify({ id, op, ...fields })}\n`);
    });
  }

  create<T = KubeObject>(resource: string, body: object): Promise<T> {
    return this.request('create', { resource, body });
  }
  upsert<T = KubeObject>(resource: string, body: object): Promise<T> {
    return this.request('upsert', { resource, body });
  }
  patch<T = KubeObject>(
    resource: string,
    name: string,
    body: unknown,
    opts: { namespace?: string; type?: 'strategic' | 'merge' | 'json'; subresource?: 'status' } = {},
  ): Promise<T> {
    return this.request('patch', { resource, name, body, ...opts });
  }
  delete<T = KubeObject>(resource: string, name: string, namespace?: string): Promise<T | null> {
    return this.request('delete', { resource, name, namespace });
  }
  get<T = KubeObject>(resource: string, name: string, namespace?: string): Promise<T | null> {
    return this.request('get', { resource, name, namespace });
  }
  list<T = KubeObject>(resource: string, namespace?: string): Promise<T[]> {
    return this.request('list', { resource, namespace });
  }
  /** An outage: stops listening and cuts every connection (state kept). */
  stop(): Promise<void> {
    return this.request('stop');
  }
  start(): Promise<void> {
    return this.request('start');
  }
  /** Which of the manifest's permissions the agents' identity was granted, used and refused so far. */
  leastPrivilege(): Promise<LeastPrivilegeReport> {
    return this.request('leastPrivilege');
  }

  /** Installs a resource's CRD (served from then on; 404 before). */
  installCrd(resource: string): Promise<void> {
    return this.request('installCrd', { resource });
  }
  /** Removes a resource's CRD: its objects are deleted, its watches end, it is a 404 from then on. */
  uninstallCrd(resource: string): Promise<void> {
    return this.request('uninstallCrd', { resource });
  }

  /** Closes the control channel: the server stops. Waits up to 3 s, then kills it. */
  async close(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.stdin!.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(timer);
  }

  killSync(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}
