// ClusterNetworkPolicy in the agent (issue 19): the agent starts and stays ready without the CRD, picks
// it up when it is installed and programs the Admin tier's chains through the injected nft client;
// CNP problems are said once per policy and field, counted in a gauge, and said gone when fixed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import { loadAgentConfig } from '../../src/agent/config.ts';
import { clusterPolicyProblems, ClusterPolicyReportStep } from '../../src/agent/steps/cluster-policy-report.ts';
import { loadKubeConfig } from '../../src/k8s/client.ts';
import type { ClusterNetworkPolicyInfo } from '../../src/k8s/objects.ts';
import type { NetlinkSocket } from '../../src/kernel/index.ts';
import { silentLogger } from '../../src/log.ts';
import { FakeNft } from '../../src/nft/fake.ts';
import { readPolicyCounters } from '../../src/agent/policy-counters.ts';
import {
  clusterChainName,
  compilePolicy,
  podChainName,
  renderPolicy,
  type CompileInput,
} from '../../src/policy/index.ts';
import { renderRule } from '../../src/nft/expr.ts';
import { TestApiServer } from '../kit/k8s-api-server.ts';

const cnp = (name: string, spec: Record<string, unknown>): ClusterNetworkPolicyInfo => ({ metadata: { name }, spec });
const denyFromAll = {
  tier: 'Admin',
  priority: 5,
  subject: { namespaces: {} },
  ingress: [{ name: 'deny-all', action: 'Deny', from: [{ namespaces: {} }] }],
};

describe('ClusterNetworkPolicy problems', () => {
  it('are invalid fields, and unsupported ones (domainNames) apart, with their policy and path', () => {
    const problems = clusterPolicyProblems([
      cnp('dns', {
        tier: 'Admin',
        priority: 1,
        subject: { namespaces: {} },
        egress: [{ action: 'Deny', to: [{ domainNames: ['x.example'] }] }],
      }),
      cnp('bad-tier', { ...denyFromAll, tier: 'Middle' }),
      cnp('good', denyFromAll),
    ]);
    expect(problems.map((p) => `${p.kind} ${p.policy} ${p.field}`)).toEqual([
      'invalid bad-tier spec.tier',
      'unsupported dns spec.egress[0].to[0].domainNames',
    ]);
    expect(problems[0]?.reason).toContain('every rule of the policy fails closed');
  });

  it('are said once per policy and field, counted by kind, and said gone when fixed', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino(
      { level: 'debug' },
      { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
    );
    let policies = [cnp('bad', { ...denyFromAll, priority: 5000 }), cnp('good', denyFromAll)];
    const registry = new Registry();
    const step = new ClusterPolicyReportStep({ list: () => policies }, registry, log);
    for (let i = 0; i < 3; i++) step.pass();
    const warned = lines.filter((l) => l.level === 40);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ policy: 'bad', field: 'spec.priority', kind: 'invalid' });
    expect(await registry.metrics()).toContain('strand_cluster_network_policy_problems{kind="invalid"} 1');
    // A new object of the same policy (the informer replaces it on every change) with the same fault: not said again.
    policies = [cnp('bad', { ...denyFromAll, priority: 5000 }), policies[1] as ClusterNetworkPolicyInfo];
    step.pass();
    expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
    policies = [cnp('bad', denyFromAll)];
    step.pass();
    expect(lines.at(-1)).toMatchObject({ level: 30, policy: 'bad', field: 'spec.priority' });
    expect(await registry.metrics()).toContain('strand_cluster_network_policy_problems{kind="invalid"} 0');
  });
});

describe('ClusterNetworkPolicy rules in the rendered table', () => {
  const input: CompileInput = {
    nodeName: 'n1',
    nodeAddresses: ['198.18.0.11'],
    namespaces: [{ metadata: { name: 'x', labels: { 'kubernetes.io/metadata.name': 'x' } } }],
    pods: [
      {
        metadata: { name: 'a', namespace: 'x', labels: { app: 'a' } },
        spec: { nodeName: 'n1', containers: [] },
        status: { phase: 'Running', podIPs: [{ ip: '10.244.1.2' }] },
      },
      {
        metadata: { name: 'c', namespace: 'x', labels: { app: 'c' } },
        spec: { nodeName: 'n1', containers: [] },
        status: { phase: 'Running', podIPs: [{ ip: '10.244.1.3' }] },
      },
    ],
    policies: [],
    clusterNetworkPolicies: [
      cnp('deny-metadata', {
        ...denyFromAll,
        ingress: [
          // Port 80 only: the Pass below decides the rest (a rule that never decides has no chain).
          {
            name: 'deny-imds',
            action: 'Deny',
            from: [{ namespaces: {} }],
            protocols: [{ tcp: { destinationPort: { number: 80 } } }],
          },
          { action: 'Pass', from: [{ namespaces: {} }] },
        ],
      }),
    ],
  };

  // One counter per rule, in its chain shared by the pods it selects (the flat layout): 5 each.
  it('count per policy, rule name (else direction[index]), tier and action, over the pods they select', () => {
    const table = renderPolicy(compilePolicy(input));
    const counters = [...table.chains].flatMap(([chain, c]) =>
      c.rules.map((r, i) => ({
        chain,
        handle: i + 2,
        ...(r.comment ? { comment: r.comment } : {}),
        packets: 5,
        bytes: 0,
      })),
    );
    const { clusterRules } = readPolicyCounters(counters, table);
    // Rule chains are listed by their hashed names: sorted here by rule.
    clusterRules.sort((a, b) => (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0));
    expect(clusterRules).toEqual([
      { policy: 'deny-metadata', rule: 'deny-imds', tier: 'admin', action: 'drop', direction: 'ingress', packets: 5 },
      { policy: 'deny-metadata', rule: 'ingress[1]', tier: 'admin', action: 'pass', direction: 'ingress', packets: 5 },
    ]);
  });

  it('with --policy-log-denied, log a CNP Deny under its own rule comment before dropping', () => {
    const table = renderPolicy(compilePolicy(input), { logDenied: { perSecond: 10 } });
    // The flat layout logs in the deciding rule's chain (shared by its pods), before its counted drop.
    const comment = 'cnp/deny-metadata ingress 0 deny-imds';
    const chain = [...table.chains.values()].find((c) => c.rules.some((r) => r.comment === comment));
    expect(chain?.chain.name).toMatch(/^agent-pol-cr-/);
    const bodies = (chain?.rules ?? []).map((r) => renderRule(r.body));
    expect(bodies[0]).toContain('log prefix');
    expect(bodies[0]).toContain(comment);
    expect(bodies[1]).toMatch(/counter.* drop$/);
  });
});

describe('the agent and ClusterNetworkPolicies (nft fake, test API server)', () => {
  let api: TestApiServer;
  let dir: string;
  let agent: Agent | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strand-agent-cnp-'));
    api = await TestApiServer.start();
    api.create('nodes', { metadata: { name: 'n1' }, spec: { podCIDR: '10.1.0.0/24' } });
    api.create('namespaces', { metadata: { name: 'default' } });
    const web = {
      metadata: { name: 'web', namespace: 'default', labels: { app: 'web' } },
      spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'x' }] },
    };
    api.create('pods', { ...web, status: { podIP: '10.1.0.5', podIPs: [{ ip: '10.1.0.5' }] } });
    api.create('networkpolicies', {
      metadata: { name: 'deny', namespace: 'default' },
      spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'] },
    });
    api.writeKubeconfig(join(dir, 'kubeconfig'));
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function eventually(check: () => boolean, ms = 8_000): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end) throw new Error('not met in time');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('applies the rules and stays in step without the CRD, then programs a CNP once the CRD is installed', async () => {
    const flags = {
      'node-name': 'n1',
      'state-dir': join(dir, 'state'),
      'cni-conf-dir': join(dir, 'conf'),
      'cni-bin-dir': join(dir, 'bin'),
      'ipam-data-dir': join(dir, 'ipam'),
      'health-addr': '127.0.0.1:0',
    };
    const config = await loadAgentConfig({ flags, env: {} });
    const openNetlink = (): NetlinkSocket => {
      throw new Error('no kernel in this test');
    };
    const nft = new FakeNft();
    const backoff = { initialMs: 100, maxMs: 1_000, absentMs: 200 };
    const a = (agent = await Agent.start({
      config,
      kubeConfig: loadKubeConfig(join(dir, 'kubeconfig'), {}),
      log: silentLogger,
      nft,
      openNetlink,
      backoff,
    }));
    const pod = { namespace: 'default', name: 'web' };
    await eventually(() => nft.state?.chains.has(podChainName(pod, 'ingress')) === true);
    expect(a.cache.unsynced).toEqual([]);
    expect(a.readiness().reasons.join()).not.toContain('not synced');
    expect(a.cache.clusterNetworkPolicies.absent).toBe(true);

    api.installCrd('clusternetworkpolicies');
    api.create('clusternetworkpolicies', { metadata: { name: 'deny-all' }, spec: denyFromAll });
    await eventually(() => nft.state?.chains.has(clusterChainName('admin', pod, 'ingress')) === true);
    expect(a.cache.clusterNetworkPolicies.absent).toBe(false);
    const snap = await a.inspect();
    expect(snap.policy?.clusterNetworkPolicies).toEqual({
      served: true,
      admin: 1,
      baseline: 0,
      ambiguous: [],
      problems: [],
    });

    api.delete('clusternetworkpolicies', 'deny-all');
    await eventually(() => nft.state?.chains.has(clusterChainName('admin', pod, 'ingress')) === false);
  });
});
