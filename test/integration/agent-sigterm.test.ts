// Issue 16 item 3: SIGTERM while pod-start notices wait ends `strand agent` (dist/strand) promptly: every
// waiting notice is answered (refused: the plugin fails the ADD with code 11, try again) and the
// process exits within 2 s. Before the fix the policy enforcer's stop() cleared its debounce timer but
// left it marked set, so its settle loop never ended while events kept it armed.
//
// The agent runs in the root namespace but touches nothing there: its Node has no pod CIDR (node
// set-up waits, no bridge), and NetworkPolicies never list (injected 500s: no policy pass, no nft).
// The notices wait for the node state; Pod updates stream in until the SIGTERM, as in a rollout.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { STRAND } from '../support/cni.ts';
import { TestApiServer } from '../kit/k8s-api-server.ts';

function notify(socket: string, i: number): Promise<{ ok: boolean; message?: string } | 'dropped'> {
  const notice = {
    namespace: 'default',
    name: `p${i}`,
    uid: `u${i}`,
    containerId: `c${i}`,
    ifname: 'eth0',
    netns: '/proc/1/ns/net',
    hostVeth: `vethsig${i}`,
    ips: [`10.77.0.${10 + i}`],
  };
  return new Promise((resolve) => {
    const s = connect(socket);
    let text = '';
    s.on('connect', () => s.write(`${JSON.stringify({ v: 1, type: 'pod-start', notice })}\n`));
    s.on('data', (d) => (text += d.toString('utf8')));
    s.on('error', () => resolve('dropped'));
    s.on('close', () => {
      try {
        resolve(JSON.parse(text) as { ok: boolean; message?: string });
      } catch {
        resolve('dropped');
      }
    });
  });
}

describe('strand agent on SIGTERM with pod starts waiting', () => {
  let dir: string | undefined;
  let api: TestApiServer | undefined;
  afterEach(async () => {
    await api?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers all 20 waiting notices (refused) and exits within 2 s', async () => {
    dir = mkdtempSync(join(tmpdir(), 'strand-sigterm-'));
    api = await TestApiServer.start();
    api.create('nodes', { metadata: { name: 'sig-node' }, spec: {} });
    api.create('namespaces', { metadata: { name: 'default' } });
    api.create('pods', {
      metadata: { name: 'churn', namespace: 'default', labels: { n: '0' } },
      spec: { nodeName: 'other', containers: [{ name: 'c', image: 'x' }] },
    });
    api.failRequests({ verb: 'list', resource: 'networkpolicies' }, 500, 100_000);
    const kubeconfig = join(dir, 'kubeconfig');
    api.writeKubeconfig(kubeconfig);
    const state = join(dir, 'state');
    const args = [
      'agent',
      '--kubeconfig',
      kubeconfig,
      '--node-name',
      'sig-node',
      '--state-dir',
      state,
      '--cni-conf-dir',
      join(dir, 'conf'),
      '--cni-bin-dir',
      join(dir, 'bin'),
      '--ipam-data-dir',
      join(dir, 'ipam'),
      '--log-file',
      join(dir, 'agent.log'),
      '--health-addr',
      '127.0.0.1:0',
      '--pod-start-wait-ms',
      '20000',
    ];
    const proc = spawn(STRAND, args, { env: { PATH: process.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
      proc.on('exit', (code) => resolve({ code, at: Date.now() })),
    );
    const sock = join(state, 'agent.sock');
    for (let i = 0; i < 100; i++) {
      const probe = await new Promise<boolean>((resolve) =>
        connect(sock)
          .on('connect', function (this: import('node:net').Socket) {
            this.destroy();
            resolve(true);
          })
          .on('error', () => resolve(false)),
      );
      if (probe) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const answers = Array.from({ length: 20 }, (_, i) => notify(sock, i));
    // Pod events keep the policy loop's debounce armed, as pod starts do.
    let n = 0;
    const churn = setInterval(
      () => api?.patch('pods', 'churn', { metadata: { labels: { n: String(++n) } } }, { namespace: 'default' }),
      5,
    );
    const log = join(dir, 'agent.log');
    const noticed = () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l.includes('pod-start notice from the plugin')).length;
    for (let i = 0; i < 100 && noticed() < 20; i++) await new Promise((r) => setTimeout(r, 100));
    expect(noticed()).toBe(20);
    const sentAt = Date.now();
    proc.kill('SIGTERM');
    const exit = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000))]);
    clearInterval(churn);
    if (exit === 'hung') proc.kill('SIGKILL');
    expect(exit).not.toBe('hung');
    expect(exit !== 'hung' && exit.code).toBe(0);
    expect(exit !== 'hung' && exit.at - sentAt).toBeLessThan(2_000);
    const got = await Promise.all(answers);
    expect(got.filter((a) => a === 'dropped')).toHaveLength(0);
    expect(got.every((a) => a !== 'dropped' && a.ok === false)).toBe(true);
  });
});
