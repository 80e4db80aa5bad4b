// The kind and minikube recipes (README "kind and minikube", deploy/kind-config.yaml) cannot be run
// here (no container engine): their files are checked instead.
//   - deploy/kind-config.yaml as what it is, kind's v1alpha4 Cluster config (not a Kubernetes API
//     object): the fields kind's v1alpha4 types have, nothing else (kind decodes its config
//     strictly), and the values the recipe needs;
//   - its pod subnet is the agent's cluster-cidr in the manifest's ConfigMap, read by the agent's own
//     configuration loader; the service subnet lies outside it;
//   - one image name:tag in the manifest, the Dockerfile's documented build command and the README's
//     build, kind load and minikube image load commands.
import { loadAllYaml, loadYaml } from '@kubernetes/client-node';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { cidrsOverlap } from '../../src/net/ip.ts';
import { normalizeCidr } from '../../src/net/text.ts';
import { loadAgentConfig } from '../../src/agent/config.ts';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const docs = loadAllYaml(read('deploy/strand.yaml')) as any[];
const ds = docs.find((d) => d?.kind === 'DaemonSet');
const readme = read('README.md');
const dockerfile = read('Dockerfile');

// kind's v1alpha4 Cluster (sigs.k8s.io/kind/pkg/apis/config/v1alpha4/types.go), strict like kind.
const patchJSON6902 = z
  .object({ group: z.string(), version: z.string(), kind: z.string(), patch: z.string() })
  .strict();
const kindNode = z
  .object({
    role: z.enum(['control-plane', 'worker']),
    image: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    extraMounts: z
      .array(
        z
          .object({
            containerPath: z.string(),
            hostPath: z.string(),
            readOnly: z.boolean().optional(),
            selinuxRelabel: z.boolean().optional(),
            propagation: z.string().optional(),
          })
          .strict(),
      )
      .optional(),
    extraPortMappings: z
      .array(
        z
          .object({
            containerPort: z.number().int(),
            hostPort: z.number().int().optional(),
            listenAddress: z.string().optional(),
            protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
          })
          .strict(),
      )
      .optional(),
    kubeadmConfigPatches: z.array(z.string()).optional(),
    kubeadmConfigPatchesJSON6902: z.array(patchJSON6902).optional(),
  })
  .strict();
const kindCluster = z
  .object({
    kind: z.literal('Cluster'),
    apiVersion: z.literal('kind.x-k8s.io/v1alpha4'),
    name: z.string().optional(),
    featureGates: z.record(z.string(), z.boolean()).optional(),
    runtimeConfig: z.record(z.string(), z.string()).optional(),
    networking: z
      .object({
        ipFamily: z.enum(['ipv4', 'ipv6', 'dual']).optional(),
        apiServerPort: z.number().int().optional(),
        apiServerAddress: z.string().optional(),
        podSubnet: z.string().optional(),
        serviceSubnet: z.string().optional(),
        disableDefaultCNI: z.boolean().optional(),
        kubeProxyMode: z.enum(['iptables', 'ipvs', 'nftables', 'none']).optional(),
        dnsSearch: z.array(z.string()).optional(),
      })
      .strict()
      .optional(),
    nodes: z.array(kindNode).optional(),
    kubeadmConfigPatches: z.array(z.string()).optional(),
    kubeadmConfigPatchesJSON6902: z.array(patchJSON6902).optional(),
    containerdConfigPatches: z.array(z.string()).optional(),
    containerdConfigPatchesJSON6902: z.array(z.string()).optional(),
  })
  .strict();

const kindConfig = kindCluster.parse(loadYaml(read('deploy/kind-config.yaml')));

describe('deploy/kind-config.yaml (kind v1alpha4 Cluster)', () => {
  it('is a kind config with only the fields kind knows; a misspelt one is refused', () => {
    expect(kindConfig.kind).toBe('Cluster');
    const typo = { ...kindConfig, networking: { ...kindConfig.networking, disableDefaultCni: true } };
    expect(kindCluster.safeParse(typo).success).toBe(false);
    expect(kindCluster.safeParse({ ...kindConfig, nodes: [{ role: 'master' }] }).success).toBe(false);
  });

  it("turns kind's CNI off and has one control plane and two workers", () => {
    expect(kindConfig.networking?.disableDefaultCNI).toBe(true);
    expect(kindConfig.nodes?.map((n) => n.role)).toEqual(['control-plane', 'worker', 'worker']);
  });

  it("gives pods the agent's cluster-cidr from the manifest, and services a subnet outside it", async () => {
    const toml = docs.find((d) => d?.kind === 'ConfigMap').data['agent.toml'] as string;
    const config = await loadAgentConfig({
      flags: { config: '/etc/strand/agent.toml' },
      env: { NODE_NAME: 'kind-worker' },
      readFile: () => toml,
    });
    const pods = (kindConfig.networking?.podSubnet ?? '').split(',').map((c) => normalizeCidr(c.trim()));
    expect(pods).toEqual(config.clusterCIDRs);
    const services = (kindConfig.networking?.serviceSubnet ?? '').split(',').map((c) => c.trim());
    expect(services.length).toBeGreaterThan(0);
    for (const s of services)
      for (const p of config.clusterCIDRs) expect(cidrsOverlap(s, p), `${s} and ${p}`).toBe(false);
  });
});

describe('one image across the manifest, the Dockerfile and the README', () => {
  const images = new Set(
    [...ds.spec.template.spec.initContainers, ...ds.spec.template.spec.containers].map((c: any) => c.image as string),
  );
  const image = [...images][0] as string;

  it('the manifest runs one image, with a tag (IfNotPresent finds the loaded one)', () => {
    expect(images.size).toBe(1);
    expect(image).toMatch(/^[a-z0-9.-]+(\/[a-z0-9._-]+)+:[\w][\w.-]*$/);
    expect(image.endsWith(':latest')).toBe(false);
    for (const c of [...ds.spec.template.spec.initContainers, ...ds.spec.template.spec.containers])
      expect(c.imagePullPolicy ?? 'IfNotPresent').toBe('IfNotPresent');
  });

  it('the Dockerfile documents building that tag, and the README builds and loads it', () => {
    expect(dockerfile).toContain(`docker build -t ${image} .`);
    expect(readme).toContain(`docker build -t ${image} .`);
    expect(readme).toContain(`kind load docker-image ${image} --name strand`);
    expect(readme).toContain(`minikube image load ${image}`);
    // Every image reference in the README is this one.
    const named = [...readme.matchAll(/ghcr\.io\/[\w./-]+:[\w.-]+/g)].map((m) => m[0]);
    expect(named.length).toBeGreaterThanOrEqual(3);
    expect(new Set(named)).toEqual(new Set([image]));
  });

  it("the README's commands name files that exist", () => {
    expect(readme).toContain('kind create cluster --name strand --config deploy/kind-config.yaml');
    expect(readme).toContain('minikube start --driver=docker --nodes 3 --cni=deploy/strand.yaml');
    expect(readme).toContain('kubectl apply -f deploy/strand.yaml');
    for (const f of ['deploy/kind-config.yaml', 'deploy/strand.yaml', 'Dockerfile'])
      expect(existsSync(new URL(f, root)), f).toBe(true);
  });

  it('the kind recipe installs the ClusterNetworkPolicy CRD from its v0.2.0 release before the manifest', () => {
    // The asset names are those hack/build-install-yaml.sh of network-policy-api v0.2.0 writes.
    const release = 'https://github.com/kubernetes-sigs/network-policy-api/releases/download/v0.2.0/';
    const standard = `kubectl apply -f ${release}standard-install.yaml`;
    expect(readme.indexOf(standard)).toBeGreaterThan(readme.indexOf('kind load docker-image'));
    expect(readme.indexOf(standard)).toBeLessThan(readme.indexOf('kubectl apply -f deploy/strand.yaml'));
    expect(readme).toContain(`kubectl apply -f ${release}experimental-install.yaml`);
  });
});
