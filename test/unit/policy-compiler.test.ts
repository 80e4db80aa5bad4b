// The compiler and renderer in detail: named ports that differ per pod, endPort, SCTP, IPv6 ipBlocks,
// host-network and finished pods, addresses from the pod-start notice, provenance for explain,
// deterministic rendering, names nft accepts, and that a peer's label change is element changes only.
import { describe, expect, it } from 'vitest';
import type { PodInfo } from '../../src/k8s/objects.ts';
import {
  compilePolicy,
  diffPolicy,
  evaluateNft,
  evaluatePolicy,
  nftView,
  renderPolicy,
  type CompileInput,
  type DesiredPolicyTable,
} from '../../src/policy/index.ts';
import { podChainName } from '../../src/policy/index.ts';
import { namespace, pod, policy } from '../support/netpol.ts';
import { renderRule } from '../../src/nft/expr.ts';

const NODE = 'n1';
const NODE_IP = '192.168.7.1';

function input(
  pods: PodInfo[],
  policies: ReturnType<typeof policy>[],
  extra: Partial<CompileInput> = {},
): CompileInput {
  return {
    nodeName: NODE,
    nodeAddresses: [NODE_IP],
    namespaces: [namespace('x'), namespace('y', { team: 't' })],
    pods,
    policies,
    ...extra,
  };
}

const web1 = pod({
  namespace: 'x',
  name: 'web1',
  labels: { app: 'web' },
  node: NODE,
  ips: ['10.1.0.1', 'fd00:1::1'],
  ports: [{ name: 'http', containerPort: 80, protocol: 'TCP' }],
});
const web2 = pod({
  namespace: 'x',
  name: 'web2',
  labels: { app: 'web' },
  node: NODE,
  ips: ['10.1.0.2', 'fd00:1::2'],
  ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
});
const client = pod({
  namespace: 'x',
  name: 'client',
  labels: { app: 'client' },
  node: NODE,
  ips: ['10.1.0.3', 'fd00:1::3'],
});
const remote = pod({
  namespace: 'y',
  name: 'remote',
  labels: { app: 'web' },
  node: 'n2',
  ips: ['10.2.0.1', 'fd00:2::1'],
  ports: [
    { name: 'http', containerPort: 8443, protocol: 'TCP' },
    { name: 'dns', containerPort: 53, protocol: 'UDP' },
  ],
});

function both(
  table: DesiredPolicyTable,
  model: ReturnType<typeof compilePolicy>,
  src: string,
  dst: string,
  protocol: 'TCP' | 'UDP' | 'SCTP',
  dport: number,
): boolean {
  const byModel = evaluatePolicy(model, { src, dst, protocol, dport }).allowed;
  const byNft = evaluateNft(nftView(table), { src, dst, protocol, dport }, model.nodeAddresses).allowed;
  expect(byNft, `nft and model agree on ${src} → ${dst} ${protocol}/${dport}`).toBe(byModel);
  return byModel;
}

describe('named ports', () => {
  it('an ingress named port means each selected pod’s own number', () => {
    const m = compilePolicy(
      input(
        [web1, web2, client],
        [
          policy('x', 'http', {
            podSelector: { matchLabels: { app: 'web' } },
            ingress: [{ ports: [{ port: 'http' }] }],
          }),
        ],
      ),
    );
    const t = renderPolicy(m);
    const rulesOf = (p: PodInfo) =>
      t.chains
        .get(podChainName({ namespace: 'x', name: p.metadata.name }, 'ingress'))
        ?.rules.map((r) => renderRule(r.body)) ?? [];
    expect(rulesOf(web1).some((r) => r.includes('meta l4proto tcp th dport 80 '))).toBe(true);
    expect(rulesOf(web2).some((r) => r.includes('meta l4proto tcp th dport 8080 '))).toBe(true);
    expect(both(t, m, '10.1.0.3', '10.1.0.1', 'TCP', 80)).toBe(true);
    expect(both(t, m, '10.1.0.3', '10.1.0.1', 'TCP', 8080)).toBe(false);
    expect(both(t, m, '10.1.0.3', '10.1.0.2', 'TCP', 8080)).toBe(true);
    expect(both(t, m, '10.1.0.3', '10.1.0.2', 'TCP', 80)).toBe(false);
    expect(both(t, m, 'fd00:1::3', 'fd00:1::2', 'TCP', 8080)).toBe(true);
  });

  it('an egress named port resolves on each destination pod, address . protocol . port', () => {
    const m = compilePolicy(
      input(
        [web1, web2, client, remote],
        [
          policy('x', 'out', {
            podSelector: { matchLabels: { app: 'client' } },
            policyTypes: ['Egress'],
            egress: [
              {
                to: [{ podSelector: { matchLabels: { app: 'web' } }, namespaceSelector: {} }],
                ports: [{ port: 'http' }],
              },
            ],
          }),
        ],
      ),
    );
    const t = renderPolicy(m);
    const portSet = [...t.sets.keys()].find((n) => n.startsWith('agent-pol-port-') && n.endsWith('-v4')) as string;
    expect(t.elements.get(portSet)?.map((e) => e.key.join(' . '))).toEqual([
      '10.1.0.1 . tcp . 80',
      '10.1.0.2 . tcp . 8080',
      '10.2.0.1 . tcp . 8443',
    ]);
    expect(both(t, m, '10.1.0.3', '10.1.0.1', 'TCP', 80)).toBe(true);
    expect(both(t, m, '10.1.0.3', '10.1.0.1', 'TCP', 8080)).toBe(false);
    expect(both(t, m, '10.1.0.3', '10.2.0.1', 'TCP', 8443)).toBe(true);
    expect(both(t, m, 'fd00:1::3', 'fd00:2::1', 'TCP', 8443)).toBe(true);
    // An address that is no pod has no named ports.
    expect(both(t, m, '10.1.0.3', '203.0.113.9', 'TCP', 80)).toBe(false);
  });

  it('an egress named port with no peers resolves on every pod of the cluster; the protocol must match too', () => {
    const m = compilePolicy(
      input(
        [client, remote],
        [
          policy('x', 'dns', {
            podSelector: {},
            policyTypes: ['Egress'],
            egress: [{ ports: [{ port: 'dns', protocol: 'UDP' }] }],
          }),
        ],
      ),
    );
    const t = renderPolicy(m);
    expect(both(t, m, '10.1.0.3', '10.2.0.1', 'UDP', 53)).toBe(true);
    expect(both(t, m, '10.1.0.3', '10.2.0.1', 'TCP', 53)).toBe(false);
    expect(both(t, m, '10.1.0.3', '198.51.100.53', 'UDP', 53)).toBe(false);
  });
});

describe('ports and protocols', () => {
  it('endPort is an inclusive range', () => {
    const m = compilePolicy(
      input(
        [web1, client],
        [
          policy('x', 'range', {
            podSelector: { matchLabels: { app: 'web' } },
            ingress: [{ ports: [{ port: 8000, endPort: 8010 }] }],
          }),
        ],
      ),
    );
    const t = renderPolicy(m);
    expect(
      [...t.chains.values()]
        .flatMap((c) => c.rules.map((r) => renderRule(r.body)))
        .some((r) => r.includes('meta l4proto tcp th dport 8000-8010 ')),
    ).toBe(true);
    for (const [port, ok] of [
      [7999, false],
      [8000, true],
      [8005, true],
      [8010, true],
      [8011, false],
    ] as const)
      expect(both(t, m, '10.1.0.3', '10.1.0.1', 'TCP', port), String(port)).toBe(ok);
  });

  it('several ports go through one named interval set, shared by rules with the same ports and merged where they overlap', () => {
    const ports = [
      { port: 80 },
      { port: 53, endPort: 80 },
      { protocol: 'UDP', port: 53 },
      { protocol: 'UDP', port: 54 },
    ];
    const m = compilePolicy(
      input(
        [web1, web2, client],
        [
          policy('x', 'one', { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ ports }] }),
          policy('x', 'two', {
            podSelector: { matchLabels: { app: 'client' } },
            ingress: [{ from: [{ podSelector: {} }], ports: [...ports].reverse() }],
          }),
        ],
      ),
    );
    const t = renderPolicy(m);
    const svc = [...t.sets.values()].filter((s) => s.name.startsWith('agent-pol-svc-'));
    expect(svc).toHaveLength(1);
    expect(svc[0]).toMatchObject({ type: 'inet_proto . inet_service', flags: ['interval'] });
    expect(t.elements.get(svc[0]?.name as string)?.map((e) => e.key.join(' . '))).toEqual([
      'tcp . 53-80',
      'udp . 53-54',
    ]);
    const rules = [...t.chains.values()].flatMap((c) => c.rules.map((r) => renderRule(r.body)));
    expect(rules.filter((r) => r.includes(`@${svc[0]?.name}`))).toHaveLength(6); // 3 pods × 2 families
    expect(rules.some((r) => r.includes('{'))).toBe(rules.some((r) => r.startsWith('icmpv6'))); // no anonymous sets but the static NDP rule
    expect(both(t, m, '10.1.0.3', '10.1.0.1', 'UDP', 54)).toBe(true);
    expect(both(t, m, '10.1.0.3', '10.1.0.1', 'UDP', 55)).toBe(false);
    expect(both(t, m, '10.1.0.1', '10.1.0.3', 'TCP', 60)).toBe(true);
  });

  it('SCTP is its own protocol, and protocol-only ports cover every port of it', () => {
    const m = compilePolicy(
      input(
        [web1, client],
        [
          policy('x', 'sctp', {
            podSelector: { matchLabels: { app: 'web' } },
            ingress: [{ ports: [{ protocol: 'SCTP', port: 9000 }, { protocol: 'UDP' }] }],
          }),
        ],
      ),
    );
    const t = renderPolicy(m);
    expect(both(t, m, '10.1.0.3', '10.1.0.1', 'SCTP', 9000)).toBe(true);
    expect(both(t, m, '10.1.0.3', '10.1.0.1', 'TCP', 9000)).toBe(false);
    expect(both(t, m, '10.1.0.3', '10.1.0.1', 'UDP', 9000)).toBe(true);
    expect(both(t, m, '10.1.0.3', '10.1.0.1', 'UDP', 1)).toBe(true);
    expect(both(t, m, '10.1.0.3', '10.1.0.1', 'SCTP', 9001)).toBe(false);
  });
});

describe('ipBlock', () => {
  it('IPv6 blocks with except; a v4 block never matches v6 traffic and the reverse (R9)', () => {
    const m = compilePolicy(
      input(
        [web1, client],
        [
          policy('x', 'v6', {
            podSelector: { matchLabels: { app: 'web' } },
            ingress: [
              {
                from: [
                  { ipBlock: { cidr: 'fd00:1::/64', except: ['fd00:1::3/128', 'fd00:1::ff00/120'] } },
                  { ipBlock: { cidr: '0.0.0.0/0' } },
                ],
              },
            ],
          }),
        ],
      ),
    );
    const t = renderPolicy(m);
    const cidrSets = [...t.sets.values()].filter((s) => s.name.startsWith('agent-pol-cidr-'));
    expect(cidrSets.map((s) => s.type).sort()).toEqual(['ipv4_addr', 'ipv6_addr']);
    expect(cidrSets.every((s) => s.flags?.includes('interval'))).toBe(true);
    expect(both(t, m, 'fd00:1::3', 'fd00:1::1', 'TCP', 80)).toBe(false); // excepted
    expect(both(t, m, 'fd00:1::4', 'fd00:1::1', 'TCP', 80)).toBe(true);
    expect(both(t, m, 'fd00:1::ff10', 'fd00:1::1', 'TCP', 80)).toBe(false); // excepted /120
    expect(both(t, m, 'fd00:2::4', 'fd00:1::1', 'TCP', 80)).toBe(false); // outside
    expect(both(t, m, '10.9.9.9', '10.1.0.1', 'TCP', 80)).toBe(true); // 0.0.0.0/0 is v4 only
    const v6only = compilePolicy(
      input(
        [web1, client],
        [policy('x', 'v4', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }] })],
      ),
    );
    expect(both(renderPolicy(v6only), v6only, 'fd00:1::3', 'fd00:1::1', 'TCP', 80)).toBe(false);
  });

  it('the except is subtracted into the fewest prefixes, host bits of the cidr cleared', () => {
    const m = compilePolicy(
      input(
        [web1],
        [
          policy('x', 'blk', {
            podSelector: {},
            ingress: [{ from: [{ ipBlock: { cidr: '10.7.7.7/16', except: ['10.7.128.0/17', '10.7.0.0/24'] } }] }],
          }),
        ],
      ),
    );
    const set = [...renderPolicy(m).elements.entries()].find(([n]) => n.startsWith('agent-pol-cidr-'));
    expect(set?.[1].map((e) => e.key[0])).toEqual([
      '10.7.1.0/24',
      '10.7.16.0/20',
      '10.7.2.0/23',
      '10.7.32.0/19',
      '10.7.4.0/22',
      '10.7.64.0/18',
      '10.7.8.0/21',
    ]);
  });
});

describe('which pods count', () => {
  it('host-network pods are no targets and no peers (R17 b); finished pods neither', () => {
    const host = pod({
      namespace: 'x',
      name: 'host',
      labels: { app: 'web' },
      node: NODE,
      ips: [NODE_IP],
      hostNetwork: true,
    });
    const done = pod({
      namespace: 'x',
      name: 'done',
      labels: { app: 'client' },
      node: NODE,
      ips: ['10.1.0.9'],
      phase: 'Succeeded',
    });
    const m = compilePolicy(
      input([web1, host, done], [policy('x', 'p', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })]),
    );
    expect(m.pods.map((p) => p.name)).toEqual(['web1']);
    const peer = [...m.peers.values()][0];
    expect(peer?.v4).toEqual(['10.1.0.1']);
  });

  it("a local pod isolated before the kubelet reports its address (the plugin's notice, R16)", () => {
    const fresh = pod({ namespace: 'x', name: 'fresh', labels: { app: 'web' }, node: NODE, ips: [] });
    const m = compilePolicy(
      input([fresh, client], [policy('x', 'deny', { podSelector: {} })], {
        extraPodIps: new Map([['x/fresh', ['10.1.0.50']]]),
      }),
    );
    const t = renderPolicy(m);
    expect(m.pods.find((p) => p.name === 'fresh')?.ips).toEqual(['10.1.0.50']);
    expect(both(t, m, '10.1.0.3', '10.1.0.50', 'TCP', 80)).toBe(false);
  });

  it('two local pods with one address: one verdict-map entry, a warning', () => {
    const old = pod({ namespace: 'x', name: 'old', node: NODE, ips: ['10.1.0.60'] });
    const neu = pod({ namespace: 'x', name: 'new', node: NODE, ips: [] });
    const m = compilePolicy(
      input([old, neu], [policy('x', 'deny', { podSelector: {} })], {
        extraPodIps: new Map([['x/new', ['10.1.0.60']]]),
      }),
    );
    expect(m.pods.map((p) => p.name)).toEqual(['new']);
    expect(m.warnings).toHaveLength(1);
    renderPolicy(m);
    expect(
      diffPolicy(undefined, renderPolicy(m)).operations.filter(
        (o) => o.object.kind === 'element' && o.object.key[0] === '10.1.0.60',
      ),
    ).toHaveLength(1);
  });
});

describe('verdicts for explain', () => {
  it('names every allowing rule, or the isolating policies; node and self traffic say so', () => {
    const m = compilePolicy(
      input(
        [web1, client, remote],
        [
          policy('x', 'a', {
            podSelector: { matchLabels: { app: 'web' } },
            ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }] }, { ports: [{ port: 80 }] }],
          }),
          policy('x', 'b', { podSelector: {}, policyTypes: ['Ingress'] }),
        ],
      ),
    );
    const v = evaluatePolicy(m, { src: '10.1.0.3', dst: '10.1.0.1', protocol: 'TCP', dport: 80 });
    expect(v.allowed).toBe(true);
    expect(v.ingress.rules).toEqual([
      { namespace: 'x', name: 'a', direction: 'ingress', index: 0 },
      { namespace: 'x', name: 'a', direction: 'ingress', index: 1 },
    ]);
    expect(v.egress.reason).toBe('not-isolated');
    const d = evaluatePolicy(m, { src: '10.2.0.1', dst: '10.1.0.1', protocol: 'TCP', dport: 81 });
    expect(d).toMatchObject({
      allowed: false,
      ingress: {
        reason: 'denied',
        pod: { namespace: 'x', name: 'web1' },
        isolatedBy: [
          { namespace: 'x', name: 'a' },
          { namespace: 'x', name: 'b' },
        ],
      },
    });
    expect(evaluatePolicy(m, { src: NODE_IP, dst: '10.1.0.1', protocol: 'TCP', dport: 81 }).ingress.reason).toBe(
      'node',
    );
    expect(evaluatePolicy(m, { src: '10.1.0.1', dst: '10.1.0.1', protocol: 'TCP', dport: 81 }).ingress.reason).toBe(
      'self',
    );
    expect(evaluatePolicy(m, { src: '10.2.0.1', dst: '10.2.0.9', protocol: 'TCP', dport: 81 }).ingress.reason).toBe(
      'not-local',
    );
    // Counters: each allow rule's comment maps back to its rule, each chain to its pod.
    const t = renderPolicy(m);
    const chain = podChainName({ namespace: 'x', name: 'web1' }, 'ingress');
    expect(t.chainOwners.get(chain)).toEqual({ pod: { namespace: 'x', name: 'web1' }, direction: 'ingress' });
    const comments = t.chains.get(chain)?.rules.map((r) => r.comment);
    expect(comments).toEqual([
      'self',
      'self',
      'x/a ingress 0',
      'x/a ingress 0',
      'x/a ingress 1',
      'x/a ingress 1',
      'deny',
    ]);
    expect(t.comments.get('x/a ingress 1')).toEqual({
      verdict: 'allow',
      rule: { namespace: 'x', name: 'a', direction: 'ingress', index: 1 },
    });
  });

  it('egress to the pod’s own node is allowed under deny-all (R11, the recommended choice)', () => {
    const m = compilePolicy(
      input([client], [policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })]),
    );
    const t = renderPolicy(m);
    expect(both(t, m, '10.1.0.3', NODE_IP, 'TCP', 10250)).toBe(true);
    expect(both(t, m, '10.1.0.3', '192.168.7.2', 'TCP', 10250)).toBe(false);
  });
});

describe('rendering', () => {
  const policies = [
    policy('x', 'a', {
      podSelector: { matchLabels: { app: 'web' } },
      ingress: [
        {
          from: [{ namespaceSelector: { matchLabels: { team: 't' } } }],
          ports: [{ port: 'http' }, { port: 53, protocol: 'UDP' }],
        },
      ],
    }),
    policy('x', 'b', {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        {
          to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.2.0.0/16'] } }, { podSelector: {} }],
          ports: [{ port: 'http' }, { port: 443 }],
        },
      ],
    }),
  ];

  it('is deterministic whatever the order of the caches', () => {
    const script = (pods: PodInfo[], pols: typeof policies) =>
      diffPolicy(undefined, renderPolicy(compilePolicy(input(pods, pols)))).render();
    const one = script([web1, web2, client, remote], policies);
    expect(script([remote, client, web2, web1], [...policies].reverse())).toBe(one);
  });

  it('uses names nft accepts: agent-pol-*, lower-case words, at most 64 characters', () => {
    const long = 'n'.repeat(63);
    const m = compilePolicy({
      ...input([web1], []),
      namespaces: [namespace(long)],
      pods: [pod({ namespace: long, name: 'p'.repeat(250), node: NODE, ips: ['10.1.0.70'] })],
      policies: [policy(long, 'q'.repeat(250), { podSelector: {}, ingress: [{}] })],
    });
    const tx = diffPolicy(undefined, renderPolicy(m)); // Transaction checks every name and comment
    const names = tx.operations.map((o) =>
      'name' in o.object
        ? o.object.name
        : 'set' in o.object
          ? o.object.set
          : 'chain' in o.object
            ? o.object.chain
            : 'agent-pol-table',
    );
    expect(names.every((n) => n.startsWith('agent-pol-') && n.length <= 64)).toBe(true);
  });

  it("a peer pod's label change is set-element changes only, no chain or rule", () => {
    const before = renderPolicy(compilePolicy(input([web1, web2, client, remote], policies)));
    const relabelled = { ...remote, metadata: { ...remote.metadata, labels: { app: 'other' } } };
    const moved = { ...client, metadata: { ...client.metadata, labels: { app: 'client', extra: 'x' } } };
    const nsChanged = compilePolicy({
      ...input([web1, web2, moved, relabelled], policies),
      namespaces: [namespace('x', { team: 't' }), namespace('y')],
    });
    const tx = diffPolicy(before, renderPolicy(nsChanged));
    expect(tx.empty).toBe(false);
    expect(tx.operations.every((o) => o.object.kind === 'element')).toBe(true);
    expect(tx.render()).not.toMatch(/ (chain|rule|set|map) /);
  });

  it('nothing changed: an empty transaction', () => {
    const a = renderPolicy(compilePolicy(input([web1, web2, client, remote], policies)));
    const b = renderPolicy(compilePolicy(input([web1, web2, client, remote], policies)));
    expect(diffPolicy(a, b).empty).toBe(true);
  });

  it('the denied-connection log (off by default) sits just before each drop and changes no verdict', () => {
    const m = compilePolicy(
      input([web1, client], [policy('x', 'deny', { podSelector: { matchLabels: { app: 'web' } } })]),
    );
    const plain = renderPolicy(m);
    const logged = renderPolicy(m, { logDenied: { perSecond: 10 } });
    expect([...plain.chains.values()].flatMap((c) => c.rules).some((r) => renderRule(r.body).includes(' log '))).toBe(
      false,
    );
    const chain = logged.chains.get(podChainName({ namespace: 'x', name: 'web1' }, 'ingress'))?.rules ?? [];
    expect(chain.slice(-2).map((r) => r.comment)).toEqual(['log', 'deny']);
    expect(renderRule(chain.at(-2)?.body ?? [])).toBe(
      'limit rate 10/second burst 20 packets log prefix "strand-deny x/web1 ingress: " level info',
    );
    for (const view of [plain, logged])
      expect(
        evaluateNft(nftView(view), { src: '10.1.0.3', dst: '10.1.0.1', protocol: 'TCP', dport: 80 }, m.nodeAddresses)
          .allowed,
      ).toBe(false);
  });
});
