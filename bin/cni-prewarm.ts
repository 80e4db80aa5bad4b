// Builds, ahead of time, what a CNI invocation of the Node executable (dist/strand, kept in the
// CNI roles for an old install) would otherwise build on each start: the configuration modules, by
// parsing representative configurations. The build runs this while making the SEA's startup
// snapshot (scripts/build.mjs). The shipped pod path is dist/cni/strand, which checks these
// configurations with plain code and loads zod only for input that code declines
// (src/util/lazy-zod.ts). Pure parsing: no side effects.
import { AGENT_SOCKET_FILE, STATE_DIR } from '../src/defaults.ts';
import { loadNetConf } from '../src/cni/config.ts';
import { parseResult } from '../src/cni/result.ts';
import type { Invocation } from '../src/cni/skel.ts';

export async function prewarm(): Promise<void> {
  const [{ loadPluginConfig }, { loadIpamConfig }, { parseNodeState }] = await Promise.all([
    import('../src/plugin/config.ts'),
    import('../src/ipam/config.ts'),
    import('../src/contracts/node-state.ts'),
  ]);
  const stdin = JSON.stringify({
    cniVersion: '1.1.0',
    name: 'prewarm',
    type: 'strand',
    ipam: {
      type: 'strand-ipam',
      ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: 'fd00::/64' }]],
      routes: [{ dst: '0.0.0.0/0' }],
    },
    prevResult: {
      cniVersion: '1.1.0',
      interfaces: [{ name: 'eth0', sandbox: '/x' }],
      ips: [{ address: '10.0.0.2/24', interface: 0 }],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: {},
    },
  });
  const { conf, raw } = loadNetConf(stdin, 'ADD');
  const inv: Invocation = {
    env: { command: 'ADD', containerId: 'x', netns: '/x', ifname: 'eth0', args: '', path: [] },
    conf,
    raw,
    stdin,
  };
  loadPluginConfig(inv);
  loadIpamConfig(raw, conf.name, '');
  parseResult({ ips: [{ address: '10.0.0.2/24' }] }, 'prewarm');
  // The node state the agent writes: read on every ADD of a node with an agent (pod MTU, usePodCidr).
  parseNodeState({
    version: 1,
    nodeName: 'prewarm',
    podCIDRs: ['10.244.1.0/24', 'fd00:1::/64'],
    clusterCIDRs: ['10.244.0.0/16'],
    mtu: 1450,
    backend: 'vxlan',
    agentSocket: `${STATE_DIR}/${AGENT_SOCKET_FILE}`,
    updatedAt: '2026-01-01T00:00:00Z',
  });
}
