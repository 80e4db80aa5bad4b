// The pod path checks configurations with plain code and builds zod schemas only for input the
// plain checks do not take (src/util/lazy-zod.ts). These tests hold each plain check to its schema:
// for input it takes, the same output as the schema; input the schema refuses, it never takes. And
// the plugin's fast path knows every field its schema declares.
import { describe, expect, it } from 'vitest';
import { makeBaseSchema, plainBase } from '../../src/cni/config.ts';
import { plainResult, resultSchema } from '../../src/cni/result.ts';
import { makeSchemas, plainArgs, plainIpam, plainRuntimeConfig } from '../../src/ipam/config.ts';
import { makeSchema, plainPluginFields, PLUGIN_FIELDS, schemaKeys } from '../../src/plugin/config.ts';
import { nodeStateSchema, plainNodeState } from '../../src/contracts/node-state.ts';

type Schema = { safeParse(v: unknown): { success: boolean; data?: unknown } };

/** Every input: the plain check either declines (undefined) or gives exactly what the schema gives. */
function holdsTo(plain: (v: never) => unknown, schema: Schema, inputs: unknown[], mustTake: unknown[]): void {
  for (const input of [...inputs, ...mustTake]) {
    const fast = plain(structuredClone(input) as never);
    const slow = schema.safeParse(structuredClone(input));
    if (fast !== undefined) {
      expect(slow.success, JSON.stringify(input)).toBe(true);
      expect(fast, JSON.stringify(input)).toStrictEqual(slow.data);
    }
  }
  // The usual input must take the fast path, or the pod path loads zod after all.
  for (const input of mustTake)
    expect(plain(structuredClone(input) as never), JSON.stringify(input)).not.toBeUndefined();
}

describe('plain checks against their schemas', () => {
  it('the shared network configuration fields', () => {
    const base = { cniVersion: '1.0.0', name: 'n', type: 'strand' };
    holdsTo(
      plainBase,
      makeBaseSchema() as Schema,
      [
        { ...base, type: '' },
        { ...base, type: 'a/b' },
        { ...base, type: 7 },
        { ...base, ipam: [] },
        { ...base, ipam: { type: 3 } },
        { ...base, ipam: null },
        { ...base, dns: { nameservers: 'x' } },
        { ...base, dns: null },
        { ...base, runtimeConfig: [] },
        { ...base, capabilities: { portMappings: 'yes' } },
        { ...base, disableCheck: 'yes' },
        { ...base, disableGC: 1 },
        { ...base, 'cni.dev/valid-attachments': [{ containerID: '', ifname: 'eth0' }] },
        { ...base, 'cni.dev/valid-attachments': {} },
        { ...base, 'cni.dev/attachments': [{ containerID: 'c' }] },
      ],
      [
        base,
        { ...base, ipam: { type: 'strand-ipam', subnet: '10.0.0.0/24', extra: { x: 1 } } },
        {
          ...base,
          dns: { nameservers: ['10.0.0.10'], search: ['a.b'], options: ['ndots:5'], domain: 'cluster.local', other: 1 },
        },
        {
          ...base,
          runtimeConfig: { portMappings: [] },
          capabilities: { portMappings: true },
          args: { cni: { ips: ['10.0.0.9'] } },
        },
        { ...base, disableCheck: 'true', disableGC: false },
        {
          ...base,
          'cni.dev/valid-attachments': [{ containerID: 'c', ifname: 'eth0', extra: 1 }],
          'cni.dev/attachments': null,
        },
        { ...base, bridge: 'cni0', isGateway: true, mtu: 1450 },
      ],
    );
  });

  it('the plugin fields, with their defaults', () => {
    holdsTo(
      plainPluginFields,
      makeSchema() as Schema,
      [
        { bridge: '' },
        { bridge: 'way-too-long-a-name' },
        { bridge: 'a/b' },
        { isGateway: 'true' },
        { mtu: 67 },
        { mtu: 1500.5 },
        { mtu: 65536 },
        { vlan: 4095 },
        { vlan: -1 },
        { vlanTrunk: {} },
        { preserveDefaultVlan: 'no' },
        { ipMasqBackend: 'ebtables' },
        { stateDir: '' },
        { logFile: 3 },
        { logLevel: 'verbose' },
        { agentSocket: '' },
        { agentSocket: true },
        { agentWaitMs: 60_001 },
        { agentWaitMs: -1 },
      ],
      [
        {},
        {
          bridge: 'cni0',
          isGateway: true,
          isDefaultGateway: true,
          hairpinMode: true,
          ipMasq: false,
          mtu: 1450,
          extra: 'kept',
        },
        {
          vlan: 0,
          vlanTrunk: [],
          preserveDefaultVlan: true,
          ipMasqBackend: 'nftables',
          enabledad: true,
          disableContainerInterface: false,
          macspoofchk: false,
        },
        { stateDir: '/run/s', logFile: '/l.log', logLevel: 'debug', agentSocket: false, agentWaitMs: 0 },
        {
          agentSocket: '/run/strand/agent.sock',
          agentWaitMs: 60_000,
          portIsolation: true,
          promiscMode: false,
          forceAddress: true,
        },
      ],
    );
  });

  it('plainPluginFields checks every field the schema declares', () => {
    expect([...schemaKeys()].sort()).toEqual([...PLUGIN_FIELDS].sort());
  });

  it('the IPAM configuration', () => {
    const s = makeSchemas();
    holdsTo(
      plainIpam,
      s.ipam as Schema,
      [
        [],
        { type: 1 },
        { subnet: 3 },
        { ranges: [[{ subnet: '' }]] },
        { ranges: [{ subnet: '10.0.0.0/24' }] },
        { ranges: [[{ subnet: '10.0.0.0/24', gateway: 1 }]] },
        { routes: [{ dst: '10.0.0.0' }] },
        { routes: [{ dst: '0.0.0.0/0', gw: 'x' }] },
        { routes: [{ dst: '0.0.0.0/0', mtu: -1 }] },
        { dataDir: 5 },
      ],
      [
        { type: 'strand-ipam', subnet: '10.0.0.0/16', dataDir: '/d' },
        {
          type: 'host-local',
          subnet: null,
          ranges: [
            [{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.10', gateway: '10.0.0.1' }],
            [{ subnet: 'fd00::/64' }],
          ],
        },
        {
          subnet: 'usePodCidr',
          routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00::1', mtu: 1400, priority: 5 }],
          resolvConf: '/etc/resolv.conf',
          stateDir: '/s',
        },
      ],
    );
    holdsTo(
      plainRuntimeConfig,
      s.runtimeConfig as Schema,
      [{ ips: 'x' }, { ipRanges: [[{}]] }],
      [{}, { ips: ['10.0.0.5'], ipRanges: [[{ subnet: '10.1.0.0/24' }]], portMappings: [] }],
    );
    holdsTo(
      plainArgs,
      s.args as Schema,
      [{ cni: { ips: [1] } }, { cni: 'x' }],
      [{}, { cni: { ips: ['10.0.0.7'] } }, { cni: null }, { other: 1 }],
    );
  });

  it("a result (prevResult, a delegate's answer)", () => {
    holdsTo(
      plainResult,
      resultSchema() as Schema,
      [
        { ips: [{ address: '10.0.0.2' }] },
        { ips: [{ address: '10.0.0.2/24', version: '5' }] },
        { ips: [{ address: '10.0.0.2/24', gateway: 'x' }] },
        { interfaces: [{ mac: 'x' }] },
        { interfaces: [{ name: 'eth0', mtu: -1 }] },
        { routes: [{ dst: '0.0.0.0/0', gw: 3 }] },
        { dns: { nameservers: [1] } },
        { cniVersion: 1 },
      ],
      [
        {
          cniVersion: '1.0.0',
          interfaces: [
            { name: 'cni0', mac: '02:00:00:00:00:01' },
            { name: 'eth0', mac: 'x', sandbox: '/run/netns/p', mtu: 1450 },
          ],
          ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 1 }],
          routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }],
          dns: {},
        },
        {
          cniVersion: '0.3.1',
          ips: [{ version: '4', address: '10.0.0.2/24', interface: null }],
          routes: null,
          dns: null,
          interfaces: null,
        },
        {
          ips: [{ address: 'fd00::2/64', gateway: 'fe80::1%eth0' }],
          routes: [{ dst: '::/0', priority: 1, table: 100, scope: 0 }],
          dns: { nameservers: null, domain: 'd', search: ['a'], options: null, extra: 1 },
        },
      ],
    );
  });

  it('the node state the agent writes', () => {
    const state = {
      version: 1,
      nodeName: 'n1',
      podCIDRs: ['10.244.1.0/24', 'fd00:1::/64'],
      clusterCIDRs: ['10.244.0.0/16'],
      mtu: 1450,
      backend: 'vxlan',
      updatedAt: '2026-01-01T00:00:00.000Z',
    };
    holdsTo(
      plainNodeState,
      nodeStateSchema() as Schema,
      [
        { ...state, version: 2 },
        { ...state, podCIDRs: ['10.244.1.0'] },
        { ...state, mtu: 67 },
        { ...state, backend: 'flannel' },
        { ...state, updatedAt: 'yesterday' },
        { ...state, updatedAt: '2026-13-01T00:00:00Z' },
        { ...state, podOffload: { gsoMaxSize: 0 } },
        { ...state, agentSocket: '' },
      ],
      [
        state,
        { ...state, updatedAt: '2026-01-01T00:00:00Z', extra: 1 },
        {
          ...state,
          backend: 'host-gw',
          podOffload: { groIpv4MaxSize: 196608, gsoIpv4MaxSize: 196608, other: 1 },
          agentSocket: '/run/strand/agent.sock',
        },
      ],
    );
  });
});
