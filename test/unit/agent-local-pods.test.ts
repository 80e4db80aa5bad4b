// The local-pods step (src/agent/steps/local-pods.ts) over a real IPAM store written through the
// plugin's write path: what `strand status` lists (the host veth and container from IPAM, pods known
// only from a notice while IPAM holds their address) follows the store as it changes, with the store
// read incrementally and once per pass (the IPAM gauges' step reads the same list).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NETWORK_NAME } from '../../src/agent/cni-conflist.ts';
import type { AgentConfig } from '../../src/agent/config.ts';
import { PodStartNotices } from '../../src/agent/pod-notices.ts';
import { LocalPodsStep } from '../../src/agent/steps/local-pods.ts';
import type { PassContext } from '../../src/agent/steps/step.ts';
import { systemClock } from '../../src/agent/clock.ts';
import { parseIp, type IpAddr } from '../../src/ipam/range.ts';
import { withStore } from '../../src/ipam/store.ts';
import type { PodInfo } from '../../src/k8s/objects.ts';
import pino from 'pino';
import { silentLogger } from '../../src/log.ts';
import { hostVethName } from '../../src/plugin/names.ts';

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'strand-local-pods-'));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

const reserve = (addr: string, containerID: string) =>
  withStore(dataDir, NETWORK_NAME, (s) => s.reserve(parseIp(addr) as IpAddr, { containerID, ifname: 'eth0' }, 0));
const release = (containerID: string) =>
  withStore(dataDir, NETWORK_NAME, (s) => s.releaseAttachment({ containerID, ifname: 'eth0' }));
const pod = (name: string, ip?: string): PodInfo => ({
  metadata: { name, namespace: 'default', uid: `uid-${name}` },
  spec: { nodeName: 'n1', containers: [] },
  status: { podIPs: ip ? [{ ip }] : [] },
});
const ctx = (): PassContext => ({ node: undefined, now: Date.now(), due: new Set(['local-pods']) });

describe('LocalPodsStep', () => {
  let pods: PodInfo[];
  let notices: PodStartNotices;
  let step: LocalPodsStep;
  beforeEach(() => {
    pods = [];
    notices = new PodStartNotices(systemClock, { apiPod: () => undefined });
    step = new LocalPodsStep({
      config: { nodeName: 'n1', ipamDataDir: dataDir } as AgentConfig,
      pods: { list: () => pods },
      notices,
      log: silentLogger,
    });
  });
  const shown = () =>
    step
      .known()
      .map((p) => `${p.name} ${p.ips.join()} ${p.containerId ?? '-'} ${p.hostVeth ?? '-'} ${p.source}`)
      .sort();
  const veth = (id: string) => hostVethName(NETWORK_NAME, id, 'eth0');

  it('lists the API pods with their IPAM attachments as the store changes', async () => {
    pods = [pod('a', '10.9.0.2'), pod('b', '10.9.0.3')];
    await reserve('10.9.0.2', 'ctr-a');
    step.pass(ctx());
    expect(shown()).toEqual([`a 10.9.0.2 ctr-a ${veth('ctr-a')} api`, 'b 10.9.0.3 - - api']);

    // Reserved, then released and reserved again under the same address by another container.
    await reserve('10.9.0.3', 'ctr-b');
    step.pass(ctx());
    expect(shown()).toEqual([`a 10.9.0.2 ctr-a ${veth('ctr-a')} api`, `b 10.9.0.3 ctr-b ${veth('ctr-b')} api`]);
    await release('ctr-b');
    await reserve('10.9.0.3', 'ctr-b2');
    step.pass(ctx());
    expect(shown()).toEqual([`a 10.9.0.2 ctr-a ${veth('ctr-a')} api`, `b 10.9.0.3 ctr-b2 ${veth('ctr-b2')} api`]);
    await release('ctr-a');
    step.pass(ctx());
    expect(shown()).toEqual(['a 10.9.0.2 - - api', `b 10.9.0.3 ctr-b2 ${veth('ctr-b2')} api`]);
  });

  it('lists a pod known from its notice only while IPAM holds its address for its container', async () => {
    await reserve('10.9.0.7', 'ctr-n');
    notices.record({
      namespace: 'default',
      name: 'n',
      ips: ['10.9.0.7'],
      containerId: 'ctr-n',
      hostVeth: veth('ctr-n'),
    });
    step.pass(ctx());
    expect(shown()).toEqual([`n 10.9.0.7 ctr-n ${veth('ctr-n')} plugin`]);
    // Another container holds the address now: not this notice's pod any more.
    await release('ctr-n');
    await reserve('10.9.0.7', 'ctr-other');
    step.pass(ctx());
    expect(shown()).toEqual([]);
  });

  it('reads the store once per pass, for every step that asks', async () => {
    await reserve('10.9.0.2', 'ctr-a');
    const c = ctx();
    const first = step.reservations(c);
    expect(step.reservations(c)).toBe(first);
    expect(first.reservations.map((r) => r.containerID)).toEqual(['ctr-a']);
    await reserve('10.9.0.3', 'ctr-b');
    // Same pass: the list read at its start; the next pass sees the new file.
    expect(step.reservations(c)).toBe(first);
    const next = step.reservations(ctx());
    expect(next.version).toBeGreaterThan(first.version);
    expect(next.reservations.map((r) => r.containerID).sort()).toEqual(['ctr-a', 'ctr-b']);
  });

  it('logs a first list of many pods in one line, and the pods that come later one by one', () => {
    const lines: { msg: string; level: number; pods?: number; first?: string[]; name?: string }[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
    const logged = new LocalPodsStep({
      config: { nodeName: 'n1', ipamDataDir: dataDir } as AgentConfig,
      pods: { list: () => pods },
      notices,
      log,
    });
    pods = Array.from({ length: 30 }, (_, i) => pod(`p${String(i).padStart(2, '0')}`, `10.9.1.${i + 1}`));
    logged.pass(ctx());
    expect(lines.map((l) => l.msg)).toEqual(['30 pods on this node (the first 20 named; each at debug level)']);
    expect(lines[0]?.pods).toBe(30);
    expect(lines[0]?.first).toHaveLength(20);
    expect(lines[0]?.first?.[0]).toBe('default/p00');
    lines.length = 0;
    pods = [...pods, pod('late', '10.9.1.99')];
    logged.pass(ctx());
    expect(lines.map((l) => `${l.msg} ${l.name}`)).toEqual(['pod on this node late']);
    expect(logged.known()).toHaveLength(31);
  });
});
