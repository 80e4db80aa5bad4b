// The simulated cluster's wiring: the switch, the outside and each node's namespace with its links,
// the node's CNI bin dir as `strand install` leaves it, and the agents' kubeconfig.
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SimCluster } from './cluster.ts';
import { sh } from './exec.ts';
import type { SimNode } from './node.ts';
import { setOffloadSizes } from './offload.ts';
import { API_IP, NODE_PROBE_PORTS, OUTSIDE_GW, OUTSIDE_IP, ROUTER_IP } from './topology.ts';

export function buildNetwork(c: SimCluster, addNetns: (name: string) => void): void {
  const sw = c.switchNetns;
  const mtu = String(c.underlayMtu);
  addNetns(sw);
  sh('ip', ['netns', 'exec', sw, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  for (const [br, ip] of [
    ['br0', `${ROUTER_IP}/24`],
    ['mgmt', `${API_IP}/24`],
  ] as const) {
    sh('ip', ['-n', sw, 'link', 'add', br, 'mtu', mtu, 'type', 'bridge']);
    sh('ip', ['-n', sw, 'addr', 'add', ip, 'dev', br]);
    sh('ip', ['-n', sw, 'link', 'set', br, 'up']);
  }
  // The outside: reached through the switch, and routing back only to the underlay's range.
  addNetns(c.outsideNetns);
  sh('ip', [
    '-n',
    sw,
    'link',
    'add',
    'out0',
    'mtu',
    mtu,
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    'mtu',
    mtu,
    'netns',
    c.outsideNetns,
  ]);
  sh('ip', ['-n', sw, 'addr', 'add', `${OUTSIDE_GW}/24`, 'dev', 'out0']);
  sh('ip', ['-n', sw, 'link', 'set', 'out0', 'up']);
  sh('ip', ['-n', c.outsideNetns, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0']);
  sh('ip', ['-n', c.outsideNetns, 'link', 'set', 'eth0', 'up']);
  sh('ip', ['-n', c.outsideNetns, 'route', 'add', '198.18.0.0/16', 'via', OUTSIDE_GW]);
  for (const n of c.nodes) buildNode(c, n, addNetns);
}

export function buildNode(c: SimCluster, n: SimNode, addNetns: (name: string) => void): void {
  const sw = c.switchNetns;
  const mtu = String(c.underlayMtu);
  addNetns(n.netns);
  // The ports the nodes serve as probe targets (the upstream ClusterNetworkPolicy conformance's host
  // ports, 34345-34352) lie in the kernel's ephemeral range: reserved, so that no connection the
  // agent or the runtime opens from the node takes one before the probe program listens on it.
  sh('ip', ['netns', 'exec', n.netns, 'sysctl', '-qw', `net.ipv4.ip_local_reserved_ports=${NODE_PROBE_PORTS}`]);
  for (const [port, inner, bridge, ip] of [
    [`u${n.index}`, 'eth0', 'br0', n.underlayIp],
    [`m${n.index}`, 'mgmt0', 'mgmt', n.mgmtIp],
  ] as const) {
    sh('ip', [
      '-n',
      sw,
      'link',
      'add',
      port,
      'mtu',
      mtu,
      'type',
      'veth',
      'peer',
      'name',
      inner,
      'mtu',
      mtu,
      'netns',
      n.netns,
    ]);
    sh('ip', ['-n', sw, 'link', 'set', port, 'master', bridge, 'up']);
    sh('ip', ['-n', n.netns, 'addr', 'add', `${ip}/24`, 'dev', inner]);
    sh('ip', ['-n', n.netns, 'link', 'set', inner, 'up']);
  }
  sh('ip', ['-n', n.netns, 'route', 'add', 'default', 'via', ROUTER_IP, 'dev', 'eth0']);
  // The node's NIC and its switch port (the switch's bridge too, now that it has a port).
  setOffloadSizes(n.netns, ['eth0'], c.underlayOffload);
  setOffloadSizes(sw, [`u${n.index}`, 'br0'], c.underlayOffload);
  for (const d of [n.binDir, n.confDir, n.stateDir, n.ipamDir]) mkdirSync(d, { recursive: true });
  // The CNI bin dir as a node has it (strand install): the CNI executable as strand, and
  // strand-ipam as a link to the same executable.
  symlinkSync(c.strandCni, join(n.binDir, 'strand'));
  symlinkSync(c.strandCni, join(n.binDir, 'strand-ipam'));
  for (const ref of ['portmap', 'host-local', 'bridge', 'loopback']) {
    if (existsSync(`/usr/lib/cni/${ref}`)) symlinkSync(`/usr/lib/cni/${ref}`, join(n.binDir, ref));
  }
}

/** The agents' kubeconfig: the API server over the management segment, as the DaemonSet's ServiceAccount. */
export function writeKubeconfig(c: SimCluster): void {
  const yaml = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: sim',
    '  cluster:',
    `    server: ${c.api.url}`,
    // client-node refuses http:// unless TLS verification is "skipped" (test/kit/k8s-api-server.ts).
    '    insecure-skip-tls-verify: true',
    'users:',
    '- name: sim',
    '  user:',
    `    token: ${JSON.stringify(c.api.agentToken)}`,
    'contexts:',
    '- name: sim',
    '  context:',
    '    cluster: sim',
    '    user: sim',
    'current-context: sim',
    '',
  ].join('\n');
  writeFileSync(c.kubeconfig, yaml, { mode: 0o600 });
}
