// The pure parts of the agent's node set-up: pod MTU, default route choice, node state content and
// its change detection, the conflist, pod CIDR checks and the NetworkUnavailable patch; plus the
// write-only-when-changed file helpers on a temp dir.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodePodCidrs } from '../../src/agent/node-addresses.ts';
import {
  agentConflistText as renderConflist,
  buildConflist,
  conflistPath,
  ensureConflist,
  writeIfChanged,
} from '../../src/agent/cni-conflist.ts';
import type { NodeInfo } from '../../src/k8s/objects.ts';
import {
  desiredNodeState,
  ensureNodeState,
  gatewayFor,
  pickDefaultRoute,
  podOffload,
  readCurrentNodeState,
  sameNodeState,
  underlayFamily,
} from '../../src/agent/node-setup.ts';
import { networkAvailablePatch, networkMarkedAvailable } from '../../src/k8s/node-patch.ts';
import { renderConflist as installRenderConflist } from '../../src/contracts/conflist.ts';
import type { Route } from '../../src/kernel/index.ts';
import { podMtu } from '../../src/datapath/mtu.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'strand-agent-unit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const defaults = {
  bridge: 'cni0',
  stateDir: '/run/strand',
  ipamDataDir: '/var/lib/cni/networks',
  cniLogFile: '/var/log/strand/cni.log',
  podStartWaitMs: 2000,
};

function route(dst: string, extra: Partial<Route> = {}): Route {
  return {
    family: dst.includes(':') ? 6 : 4,
    dst,
    gateway: undefined,
    oif: 2,
    src: undefined,
    scope: 0,
    table: 254,
    metric: undefined,
    mtu: undefined,
    advmss: undefined,
    protocol: 3,
    type: 1,
    flags: 0,
    ...extra,
  };
}

function node(podCIDRs: string[], conditions: NodeInfo['status']['conditions'] = []): NodeInfo {
  return { metadata: { name: 'n1' }, spec: { podCIDRs }, status: { addresses: [], conditions } };
}

describe('pod MTU', () => {
  it('takes VXLAN headers off the underlay MTU (more over IPv6) and nothing for host-gw', () => {
    expect(podMtu('vxlan', 1500)).toBe(1450);
    expect(podMtu('vxlan', 9001)).toBe(8951);
    expect(podMtu('vxlan', 1500, 6)).toBe(1430);
    expect(podMtu('host-gw', 1500)).toBe(1500);
    expect(
      underlayFamily({ name: 'eth0', index: 2, mtu: 1500, addresses: ['2001:db8::1', '198.18.0.1'], offload: {} }),
    ).toBe(6);
    expect(underlayFamily({ name: 'eth0', index: 2, mtu: 1500, addresses: [], offload: {} })).toBe(4);
  });
});

describe('pod offload sizes (BIG TCP)', () => {
  const legacy = { gsoMaxSize: 65536, groMaxSize: 65536, gsoIpv4MaxSize: 65536, groIpv4MaxSize: 65536 };

  it("follows the underlay's sizes above 64 KiB with host-gw", () => {
    const big = { ...legacy, gsoIpv4MaxSize: 196608, groIpv4MaxSize: 196608 };
    expect(podOffload('host-gw', 'auto', big)).toEqual({ gsoIpv4MaxSize: 196608, groIpv4MaxSize: 196608 });
    expect(podOffload('host-gw', 'auto', { ...big, gsoMaxSize: 131072 })).toEqual({
      gsoMaxSize: 131072,
      gsoIpv4MaxSize: 196608,
      groIpv4MaxSize: 196608,
    });
  });

  it('stays off with VXLAN (a tunnel packet cannot exceed 64 KiB), when turned off, or when the underlay has none', () => {
    const big = { gsoMaxSize: 196608, groMaxSize: 196608, gsoIpv4MaxSize: 196608, groIpv4MaxSize: 196608 };
    expect(podOffload('vxlan', 'auto', big)).toBeUndefined();
    expect(podOffload('host-gw', 'off', big)).toBeUndefined();
    expect(podOffload('host-gw', 'auto', legacy)).toBeUndefined();
    // A kernel before 5.19 reports none of them.
    expect(podOffload('host-gw', 'auto', {})).toBeUndefined();
  });
});

describe('default route', () => {
  it('picks the IPv4 default with the lowest metric, then IPv6, and ignores other routes', () => {
    const routes = [
      route('10.0.0.0/8', { oif: 9 }),
      route('::/0', { oif: 7 }),
      route('0.0.0.0/0', { oif: 5, metric: 600 }),
      route('0.0.0.0/0', { oif: 4, metric: 100 }),
      route('0.0.0.0/0', { oif: 3, type: 6 /* prohibit */ }),
    ];
    expect(pickDefaultRoute(routes)?.oif).toBe(4);
    expect(pickDefaultRoute([route('::/0', { oif: 7 })])?.oif).toBe(7);
    expect(pickDefaultRoute([route('10.0.0.0/8')])).toBeUndefined();
  });
});

describe('node state', () => {
  const inputs = {
    nodeName: 'n1',
    podCIDRs: ['10.244.1.0/24'],
    clusterCIDRs: ['10.244.0.0/16'],
    mtu: 1450,
    podOffload: undefined,
    backend: 'vxlan' as const,
    agentSocket: '/run/strand/agent.sock',
  };

  it('is written when missing or different, and left alone when only the time would change', async () => {
    const first = desiredNodeState(inputs, new Date('2026-01-01T00:00:00Z'));
    expect(first).toEqual({ version: 1, ...inputs, updatedAt: '2026-01-01T00:00:00.000Z' });
    expect(await ensureNodeState(dir, first)).toBe(true);
    const st = statSync(join(dir, 'node.json'));
    expect(await ensureNodeState(dir, desiredNodeState(inputs, new Date('2026-02-01T00:00:00Z')))).toBe(false);
    expect(statSync(join(dir, 'node.json')).mtimeMs).toBe(st.mtimeMs);
    expect(readCurrentNodeState(dir)?.updatedAt).toBe('2026-01-01T00:00:00.000Z');

    const changed = desiredNodeState({ ...inputs, mtu: 1400 });
    expect(sameNodeState(first, changed)).toBe(false);
    expect(await ensureNodeState(dir, changed)).toBe(true);
    expect(readCurrentNodeState(dir)?.mtu).toBe(1400);
  });

  it("carries the pods' offload sizes, and reads back equal to what was written", async () => {
    const podOffload = { gsoIpv4MaxSize: 196608, groIpv4MaxSize: 196608 };
    const state = desiredNodeState({ ...inputs, backend: 'host-gw', podOffload });
    expect(await ensureNodeState(dir, state)).toBe(true);
    expect(readCurrentNodeState(dir)?.podOffload).toEqual(podOffload);
    expect(await ensureNodeState(dir, desiredNodeState({ ...inputs, backend: 'host-gw', podOffload }))).toBe(false);
    expect(await ensureNodeState(dir, desiredNodeState({ ...inputs, backend: 'host-gw' }))).toBe(true);
    expect(readCurrentNodeState(dir)).not.toHaveProperty('podOffload');
  });

  it('replaces a damaged file', async () => {
    await writeIfChanged(join(dir, 'node.json'), '{"version": 1, "nodeName": ');
    expect(readCurrentNodeState(dir)).toBeUndefined();
    expect(await ensureNodeState(dir, desiredNodeState(inputs))).toBe(true);
    expect(readCurrentNodeState(dir)?.podCIDRs).toEqual(['10.244.1.0/24']);
  });

  it('is written off the event loop into a new directory, with its mode, and no temp file left', async () => {
    const sub = join(dir, 'run', 'strand');
    const writing = ensureNodeState(sub, desiredNodeState(inputs));
    // Not written within the call: the write and its fsyncs are on libuv's threads.
    expect(readCurrentNodeState(sub)).toBeUndefined();
    expect(await writing).toBe(true);
    expect(statSync(join(sub, 'node.json')).mode & 0o777).toBe(0o644);
    expect(readdirSync(sub)).toEqual(['node.json']);
    await writeIfChanged(join(sub, 'node.json'), 'x', 0o600);
    expect(readFileSync(join(sub, 'node.json'), 'utf8')).toBe('x');
    expect(statSync(join(sub, 'node.json')).mode & 0o777).toBe(0o600);
    expect(readdirSync(sub)).toEqual(['node.json']);
  });
});

describe('pod CIDRs of the Node', () => {
  it('normalises them, IPv4 first, and refuses malformed ones or two of a family', () => {
    expect(nodePodCidrs(node(['fd00:1:0:0::/64', '10.244.1.0/24']))).toEqual({
      cidrs: ['10.244.1.0/24', 'fd00:1::/64'],
    });
    expect(nodePodCidrs(node(['10.244.1.0/24', '10.244.2.0/24']))).toEqual({
      problem: 'node n1 has more than one IPv4 pod CIDR: 10.244.1.0/24, 10.244.2.0/24',
    });
    expect(nodePodCidrs(node(['10.244.1.0']))).toMatchObject({
      problem: expect.stringContaining('malformed pod CIDR "10.244.1.0"'),
    });
    expect(nodePodCidrs(node(['garbage']))).toMatchObject({
      problem: expect.stringContaining('malformed pod CIDR "garbage"'),
    });
  });

  it('gives the bridge the first address of each, as strand-ipam hands out', () => {
    expect(gatewayFor('10.244.1.0/24')).toBe('10.244.1.1/24');
    expect(gatewayFor('fd00:1::/64')).toBe('fd00:1::1/64');
  });
});

describe('CNI configuration list', () => {
  it('is the shipped template with the paths filled in, byte for byte what strand install writes', () => {
    const shipped = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../cni-conf/10-strand.conflist'), 'utf8'));
    const ours = buildConflist(defaults);
    const { 'strand.dev/managed': marker, ...rest } = ours;
    expect(marker).toBe(true);
    expect(rest).toEqual(shipped);
    expect(renderConflist(defaults)).toBe(installRenderConflist({}));

    const custom = buildConflist({
      bridge: 'sttbr1',
      stateDir: '/tmp/s',
      ipamDataDir: '/tmp/i',
      cniLogFile: '/tmp/cni.log',
      podStartWaitMs: 2000,
    });
    expect((custom.plugins as unknown[])[0]).toEqual({
      type: 'strand',
      bridge: 'sttbr1',
      isGateway: true,
      isDefaultGateway: true,
      hairpinMode: true,
      stateDir: '/tmp/s',
      logFile: '/tmp/cni.log',
      ipam: { type: 'strand-ipam', subnet: 'usePodCidr', stateDir: '/tmp/s', dataDir: '/tmp/i' },
    });
  });

  it('carries the pod-start wait when it is not the plugin default', () => {
    const plugins = buildConflist({ ...defaults, podStartWaitMs: 500 }).plugins as Record<string, unknown>[];
    expect(plugins[0]?.agentWaitMs).toBe(500);
    expect((buildConflist(defaults).plugins as Record<string, unknown>[])[0]).not.toHaveProperty('agentWaitMs');
  });

  it('is written only when its content changes', async () => {
    expect(await ensureConflist(join(dir, 'net.d'), defaults)).toBe(true);
    const path = conflistPath(join(dir, 'net.d'));
    const st = statSync(path);
    expect(await ensureConflist(join(dir, 'net.d'), defaults)).toBe(false);
    expect(statSync(path).ino).toBe(st.ino);
    expect(await ensureConflist(join(dir, 'net.d'), { ...defaults, bridge: 'br9' })).toBe(true);
    expect(statSync(path).ino).not.toBe(st.ino);
    expect(JSON.parse(readFileSync(path, 'utf8')).plugins[0].bridge).toBe('br9');
  });
});

describe('NetworkUnavailable', () => {
  it('is patched as a False condition with Strand as the reason, unless the Node says so already', () => {
    expect(networkAvailablePatch(new Date('2026-03-04T05:06:07.890Z'))).toEqual({
      status: {
        conditions: [
          {
            type: 'NetworkUnavailable',
            status: 'False',
            reason: 'StrandIsUp',
            message: 'Strand is running on this node',
            lastTransitionTime: '2026-03-04T05:06:07Z',
            lastHeartbeatTime: '2026-03-04T05:06:07Z',
          },
        ],
      },
    });
    expect(networkMarkedAvailable(node([]))).toBe(false);
    expect(
      networkMarkedAvailable(node([], [{ type: 'NetworkUnavailable', status: 'True', reason: 'NoRouteCreated' }])),
    ).toBe(false);
    expect(
      networkMarkedAvailable(node([], [{ type: 'NetworkUnavailable', status: 'False', reason: 'RouteCreated' }])),
    ).toBe(false);
    expect(
      networkMarkedAvailable(node([], [{ type: 'NetworkUnavailable', status: 'False', reason: 'StrandIsUp' }])),
    ).toBe(true);
  });
});
