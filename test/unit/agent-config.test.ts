// The agent's configuration: defaults, TOML file, environment and flags merged in that order of
// priority, and every refusal naming the option, where its value came from and why.
import { describe, expect, it } from 'vitest';
import { ConfigError, configReference, loadAgentConfig, OPTIONS, type ConfigInputs } from '../../src/agent/config.ts';

const FILE = '/etc/strand/agent.toml';

function load(inputs: Partial<ConfigInputs> & { toml?: string } = {}) {
  const { toml, ...rest } = inputs;
  return loadAgentConfig({
    flags: {},
    env: {},
    cwd: '/work',
    readFile: (path) => {
      if (toml === undefined || path !== FILE) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return toml;
    },
    ...rest,
  });
}

async function refusal(inputs: Parameters<typeof load>[0]): Promise<string> {
  const err = await load(inputs).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  const message = (err as Error).message;
  expect(message).not.toContain('\n');
  return message;
}

describe('agent configuration', () => {
  it('has the documented defaults', async () => {
    const c = await load({ flags: { 'node-name': 'n1' } });
    expect(c).toEqual({
      configFile: undefined,
      kubeconfig: undefined,
      nodeName: 'n1',
      clusterCIDRs: [],
      serviceCIDRs: [],
      backend: 'vxlan',
      iface: undefined,
      cniBinDir: '/opt/cni/bin',
      cniConfDir: '/etc/cni/net.d',
      stateDir: '/run/strand',
      ipamDataDir: '/var/lib/cni/networks',
      logFile: undefined,
      cniLogFile: '/var/log/strand/cni.log',
      healthAddr: '0.0.0.0:9797',
      logLevel: 'info',
      bridge: 'cni0',
      vni: 1,
      vxlanPort: 4789,
      directRouting: false,
      mtu: undefined,
      bigTcp: 'auto',
      podStartWaitMs: 2000,
      policyConntrack: true,
      policyLogDenied: false,
      policyWhenNoAgent: 'allow',
    });
  });

  it('reads every option from the TOML file under its flag name', async () => {
    const toml = `
      kubeconfig = "/etc/kubernetes/kubelet.conf"
      node-name = "worker-1"
      cluster-cidr = ["fd00:10:244::/56", "10.244.0.0/16"]
      service-cidr = "10.96.0.0/12"
      backend = "host-gw"
      iface = "eth1"
      cni-bin-dir = "/opt/cni/bin2"
      cni-conf-dir = "/etc/cni/net.d2"
      state-dir = "/run/strand2"
      ipam-data-dir = "/var/lib/cni/networks2"
      log-file = "/var/log/strand/agent.log"
      cni-log-file = "/var/log/strand/cni2.log"
      health-addr = "[::]:9800"
      log-level = "debug"
      bridge = "pods0"
      vni = 42
      vxlan-port = 8472
      direct-routing = true
      mtu = 1400
      big-tcp = "off"
      pod-start-wait-ms = 500
      policy-conntrack = false
      policy-log-denied = true
      policy-when-no-agent = "fail"
    `;
    const c = await load({ flags: { config: FILE }, toml });
    expect(c).toEqual({
      configFile: FILE,
      kubeconfig: '/etc/kubernetes/kubelet.conf',
      nodeName: 'worker-1',
      // IPv4 first, as in the node state.
      clusterCIDRs: ['10.244.0.0/16', 'fd00:10:244::/56'],
      serviceCIDRs: ['10.96.0.0/12'],
      backend: 'host-gw',
      iface: 'eth1',
      cniBinDir: '/opt/cni/bin2',
      cniConfDir: '/etc/cni/net.d2',
      stateDir: '/run/strand2',
      ipamDataDir: '/var/lib/cni/networks2',
      logFile: '/var/log/strand/agent.log',
      cniLogFile: '/var/log/strand/cni2.log',
      healthAddr: '[::]:9800',
      logLevel: 'debug',
      bridge: 'pods0',
      vni: 42,
      vxlanPort: 8472,
      directRouting: true,
      mtu: 1400,
      bigTcp: 'off',
      podStartWaitMs: 500,
      policyConntrack: false,
      policyLogDenied: true,
      policyWhenNoAgent: 'fail',
    });
    // Every option but --config itself is a TOML key.
    for (const o of OPTIONS) if (o.key !== 'configFile') expect(toml).toContain(`${o.flag} =`);
  });

  it('takes flags over the environment over the file over the defaults', async () => {
    const toml = 'node-name = "from-file"\nvni = 3\nbackend = "host-gw"\nbridge = "filebr"\n';
    const c = await load({
      flags: { config: FILE, vni: '5' },
      env: { STRAND_VNI: '4', STRAND_BACKEND: 'vxlan', NODE_NAME: 'from-env' },
      toml,
    });
    expect(c.vni).toBe(5);
    expect(c.backend).toBe('vxlan');
    expect(c.nodeName).toBe('from-env');
    expect(c.bridge).toBe('filebr');
    expect(c.vxlanPort).toBe(4789);
  });

  it('takes the config file, node name and kubeconfig from the environment', async () => {
    const c = await load({
      env: { STRAND_CONFIG: FILE, NODE_NAME: 'n2', KUBECONFIG: '/root/.kube/config' },
      toml: 'log-level = "warn"\n',
    });
    expect(c).toMatchObject({ configFile: FILE, nodeName: 'n2', kubeconfig: '/root/.kube/config', logLevel: 'warn' });
    // STRAND_NODE_NAME is more specific than NODE_NAME.
    expect((await load({ env: { NODE_NAME: 'a', STRAND_NODE_NAME: 'b' } })).nodeName).toBe('b');
  });

  it('splits comma-separated CIDRs, from a flag given once or more, the environment or the file', async () => {
    expect((await load({ flags: { 'node-name': 'n', 'cluster-cidr': '10.0.0.0/8, fd00::/48' } })).clusterCIDRs).toEqual(
      ['10.0.0.0/8', 'fd00::/48'],
    );
    expect(
      (await load({ flags: { 'node-name': 'n', 'cluster-cidr': ['fd00::/48', '10.0.0.0/8'] } })).clusterCIDRs,
    ).toEqual(['10.0.0.0/8', 'fd00::/48']);
    expect(
      (await load({ flags: { 'node-name': 'n' }, env: { STRAND_CLUSTER_CIDR: '10.0.0.0/8' } })).clusterCIDRs,
    ).toEqual(['10.0.0.0/8']);
    expect(
      (await load({ flags: { 'node-name': 'n', config: FILE }, toml: 'cluster-cidr = "10.0.0.0/8,fd00::/48"' }))
        .clusterCIDRs,
    ).toEqual(['10.0.0.0/8', 'fd00::/48']);
  });

  it('resolves relative paths against the working directory', async () => {
    const c = await load({
      flags: { 'node-name': 'n', 'state-dir': 'run/strand', config: 'agent.toml' },
      readFile: () => 'log-file = "logs/agent.log"',
    });
    expect(c.stateDir).toBe('/work/run/strand');
    expect(c.configFile).toBe('/work/agent.toml');
    expect(c.logFile).toBe('/work/logs/agent.log');
  });

  it('refuses a missing node name, saying where it can come from', async () => {
    expect(await refusal({})).toBe(
      'invalid configuration: node-name is required: give --node-name, set NODE_NAME or STRAND_NODE_NAME, or put node-name in the config file',
    );
  });

  it('refuses unknown TOML keys, with a hint for near misses', async () => {
    expect(await refusal({ flags: { config: FILE }, toml: 'node-name = "n"\nnodeName = "n"\n' })).toMatch(
      /^config file \/etc\/strand\/agent.toml: unknown key "nodeName" \(did you mean "node-name"\?\); keys are the flag names: kubeconfig, node-name, /,
    );
    expect(await refusal({ flags: { config: FILE }, toml: 'node-name = "n"\nfrobnicate = 1\n' })).toContain(
      'unknown key "frobnicate";',
    );
    // A table is not an option either.
    expect(await refusal({ flags: { config: FILE }, toml: 'node-name = "n"\n[agent]\nvni = 2\n' })).toContain(
      'unknown key "agent"',
    );
    // The config file cannot name another config file.
    expect(await refusal({ flags: { config: FILE }, toml: 'config = "/other.toml"\n' })).toContain(
      'unknown key "config"',
    );
  });

  it('refuses wrong TOML types, naming the key and the file', async () => {
    expect(await refusal({ flags: { config: FILE }, toml: 'node-name = "n"\nvni = "3"\n' })).toBe(
      'invalid configuration: vni = "3" (config file /etc/strand/agent.toml): must be an integer, not a string',
    );
    expect(await refusal({ flags: { config: FILE }, toml: 'node-name = "n"\nmtu = 1400.5\n' })).toContain(
      'mtu = 1400.5 (config file /etc/strand/agent.toml): must be an integer',
    );
    expect(await refusal({ flags: { config: FILE }, toml: 'node-name = 7\n' })).toBe(
      'invalid configuration: node-name = 7 (config file /etc/strand/agent.toml): must be a string, not a number',
    );
    expect(await refusal({ flags: { config: FILE }, toml: 'node-name = "n"\ncluster-cidr = 10\n' })).toContain(
      'cluster-cidr = 10 (config file /etc/strand/agent.toml): must be a CIDR list, not a number',
    );
    expect(await refusal({ flags: { config: FILE }, toml: 'node-name = "n"\nstate-dir = ["a"]\n' })).toContain(
      'state-dir = ["a"] (config file /etc/strand/agent.toml): must be a path (a string), not an array',
    );
  });

  it('refuses bad values from flags and the environment, naming the source', async () => {
    const n = { 'node-name': 'n' };
    expect(await refusal({ flags: { ...n, vni: '0' } })).toBe(
      'invalid configuration: vni = "0" (flag --vni): must be at least 1',
    );
    expect(await refusal({ flags: { ...n, vni: 'five' } })).toBe(
      'invalid configuration: vni = "five" (flag --vni): must be an integer, not a string',
    );
    expect(await refusal({ flags: n, env: { STRAND_VXLAN_PORT: '70000' } })).toBe(
      'invalid configuration: vxlan-port = "70000" (environment STRAND_VXLAN_PORT): must be at most 65535',
    );
    expect(await refusal({ flags: { ...n, backend: 'flannel' } })).toBe(
      'invalid configuration: backend = "flannel" (flag --backend): must be one of vxlan, host-gw',
    );
    expect(await refusal({ flags: { ...n, 'log-level': 'loud' } })).toContain(
      'must be one of trace, debug, info, warn, error, silent',
    );
    expect(await refusal({ flags: { ...n, 'cluster-cidr': '10.0.0.0/33' } })).toContain('"10.0.0.0/33" is not a CIDR');
    expect(await refusal({ flags: { ...n, 'cluster-cidr': '10.0.0.0/8,10.1.0.0/16' } })).toContain(
      'at most one CIDR per address family',
    );
    expect(await refusal({ flags: { ...n, iface: 'a-very-long-interface-name' } })).toContain(
      'iface = "a-very-long-interface-name" (flag --iface):',
    );
    expect(await refusal({ flags: { ...n, 'health-addr': '9797' } })).toContain(
      'health-addr = "9797" (flag --health-addr): invalid address "9797"',
    );
    expect(await refusal({ flags: { ...n, mtu: '10' } })).toBe(
      'invalid configuration: mtu = "10" (flag --mtu): must be at least 68',
    );
    expect(await refusal({ flags: { ...n, 'pod-start-wait-ms': '120000' } })).toContain('must be at most 60000');
    expect(await refusal({ flags: { ...n, 'state-dir': '' } })).toContain(
      'state-dir = "" (flag --state-dir): must not be empty',
    );
    expect(await refusal({ flags: { 'node-name': 'Node_1' } })).toContain(
      'node-name = "Node_1" (flag --node-name): is not a valid node name',
    );
    expect(await refusal({ flags: { ...n, vni: ['1', '2'] } })).toBe(
      'invalid configuration: vni (flag --vni): given more than once',
    );
  });

  it('refuses a config file it cannot read or parse, with the line and column', async () => {
    expect(await refusal({ flags: { config: '/nope.toml' } })).toBe('config file /nope.toml: cannot read it: ENOENT');
    expect(await refusal({ flags: { config: FILE }, toml: 'node-name = "n"\nvni = \n' })).toMatch(
      /^config file \/etc\/strand\/agent.toml: line 2, column 7: Unexpected character/,
    );
    expect(await refusal({ flags: { config: FILE }, toml: 'vni = 1\nvni = 2\n' })).toMatch(
      /^config file \/etc\/strand\/agent.toml: line 2, column \d+: Can't redefine existing key$/,
    );
  });

  it('documents every option', () => {
    const ref = configReference();
    for (const o of OPTIONS) expect(ref).toContain(`\`--${o.flag}\``);
    expect(ref).toContain('| `--vni` | `vni` | `STRAND_VNI` | 1 |');
    expect(ref).toContain('`STRAND_NODE_NAME`, `NODE_NAME`');
  });
});
