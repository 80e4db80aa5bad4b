// deploy/strand.yaml and the Dockerfile cannot be run here (no container engine, no cluster), so they
// are checked by what can run: the manifests parse (and match the Kubernetes OpenAPI schemas:
// deploy-schema.test.ts); RBAC grants what the agent asks the API for; the
// agent's configuration (ConfigMap TOML, the container's flags, NODE_NAME) is accepted by the agent's
// own loader; every mount has a volume; probes hit the health address; the image's paths agree.
import { loadAllYaml } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig, OPTIONS } from '../../src/agent/config.ts';

const root = new URL('../../', import.meta.url);
const docs = loadAllYaml(readFileSync(new URL('deploy/strand.yaml', root), 'utf8')) as any[];
const byKind = (kind: string) => docs.filter((d) => d?.kind === kind);
const ds = byKind('DaemonSet')[0];
const pod = ds?.spec?.template?.spec;
const agent = pod?.containers?.find((c: any) => c.name === 'agent');

describe('deploy/strand.yaml', () => {
  it('has the objects an installation needs', () => {
    expect(docs.map((d) => d.kind).sort()).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'DaemonSet',
      'Namespace',
      'ServiceAccount',
    ]);
    expect(pod.hostNetwork).toBe(true);
    expect(pod.tolerations).toContainEqual({ operator: 'Exists' });
    expect(pod.serviceAccountName).toBe(byKind('ServiceAccount')[0].metadata.name);
  });

  it('grants what the agent asks the API for', () => {
    const rules = byKind('ClusterRole')[0].rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    const allows = (group: string, resource: string, verb: string) =>
      rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));
    for (const [group, resource] of [
      ['', 'nodes'],
      ['', 'pods'],
      ['', 'namespaces'],
      ['networking.k8s.io', 'networkpolicies'],
      ['policy.networking.k8s.io', 'clusternetworkpolicies'],
    ]) {
      for (const verb of ['list', 'watch'])
        expect(allows(group as string, resource as string, verb), `${verb} ${resource}`).toBe(true);
    }
    expect(allows('', 'nodes', 'patch'), 'patch nodes (annotations)').toBe(true);
    expect(allows('', 'nodes/status', 'patch'), 'patch nodes/status (NetworkUnavailable)').toBe(true);
    const binding = byKind('ClusterRoleBinding')[0];
    expect(binding.roleRef.name).toBe(byKind('ClusterRole')[0].metadata.name);
  });

  it("passes the agent's own configuration checks", async () => {
    const toml = byKind('ConfigMap')[0].data['agent.toml'] as string;
    const [bin, command, ...args] = agent.command as string[];
    expect(bin).toBe('/usr/local/bin/strand');
    expect(command).toBe('agent');
    const flags: Record<string, unknown> = {};
    for (let i = 0; i < args.length; i += 2) {
      const flag = (args[i] as string).replace(/^--/, '');
      expect(
        OPTIONS.some((o) => o.flag === flag),
        `--${flag} is an agent flag`,
      ).toBe(true);
      flags[flag] = args[i + 1];
    }
    const nodeNameEnv = agent.env.find((e: any) => e.name === 'NODE_NAME');
    expect(nodeNameEnv.valueFrom.fieldRef.fieldPath).toBe('spec.nodeName');
    const config = await loadAgentConfig({ flags, env: { NODE_NAME: 'node-1' }, readFile: () => toml });
    expect(config.nodeName).toBe('node-1');
    expect(config.clusterCIDRs).toEqual(['10.244.0.0/16']);
    // Probes go where the health server listens.
    const port = Number(config.healthAddr.split(':').at(-1));
    expect(agent.readinessProbe.httpGet).toEqual({ path: '/readyz', port });
    expect(agent.livenessProbe.httpGet).toEqual({ path: '/healthz', port });
    // The node state, IPAM data and plugin log are where the plugin on the host looks for them.
    const mounts = new Map((agent.volumeMounts as any[]).map((m) => [m.mountPath, m.name]));
    for (const dir of [config.stateDir, config.ipamDataDir, '/var/log/strand']) {
      const volume = pod.volumes.find((v: any) => v.name === mounts.get(dir));
      expect(volume?.hostPath?.path, `${dir} is the host's own`).toBe(dir);
    }
  });

  it('mounts only volumes it declares, and installs the plugins where the agent looks', () => {
    const volumes = new Set((pod.volumes as any[]).map((v) => v.name));
    for (const c of [...pod.initContainers, ...pod.containers]) {
      for (const m of c.volumeMounts ?? []) expect(volumes.has(m.name), `${c.name}: ${m.name}`).toBe(true);
    }
    const install = pod.initContainers.find((c: any) => c.name === 'install-cni');
    const flag = (c: any, name: string) => c.command[c.command.indexOf(name) + 1];
    for (const name of ['--cni-bin-dir', '--cni-conf-dir']) expect(flag(install, name)).toBe(flag(agent, name));
  });
});

describe('Dockerfile', () => {
  it('puts the executable where the manifests run it, built by the project build', () => {
    const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');
    expect(dockerfile).toMatch(/RUN npm run build/);
    expect(dockerfile).toMatch(/COPY --from=build \/src\/dist\/strand \/usr\/local\/bin\/strand\n/);
    // strand install takes the CNI executable from cni/strand beside the agent's (src/install/install.ts).
    expect(dockerfile).toMatch(/COPY --from=build \/src\/dist\/cni\/strand \/usr\/local\/bin\/cni\/strand\n/);
    expect(dockerfile).toMatch(/nftables/);
    // One image name:tag across the manifest, the Dockerfile and the README: deploy-recipes.test.ts.
  });
});
