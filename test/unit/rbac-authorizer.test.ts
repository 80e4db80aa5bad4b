// The test API server's RBAC authorizer (test/kit/k8s/rbac.ts) and request info
// (test/kit/k8s/request-info.ts) on their own: kube-apiserver's rule matching, subjects,
// request attributes from URLs, the 403 Status, and the least-privilege record.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ADMIN_USER,
  authorize,
  ANONYMOUS_USER,
  forbidden,
  parseRbacManifest,
  PermissionUsage,
  RbacManifestError,
  ruleAllows,
  serviceAccountUser,
  withBootstrap,
  type PolicyRule,
  type RbacPolicy,
} from '../kit/k8s/rbac.ts';
import { requestAttributesOf, type RequestAttributes } from '../kit/k8s/request-info.ts';
import { DEPLOY_MANIFEST } from '../kit/k8s-api-server.ts';

const rule = (r: Partial<PolicyRule>): PolicyRule => ({
  verbs: [],
  apiGroups: [],
  resources: [],
  resourceNames: [],
  nonResourceURLs: [],
  ...r,
});
const attrs = (method: string, url: string): RequestAttributes => {
  const u = new URL(url, 'http://x');
  return requestAttributesOf(method, u.pathname, Object.fromEntries(u.searchParams));
};
const allows = (r: Partial<PolicyRule>, method: string, url: string) => ruleAllows(rule(r), attrs(method, url));

const SA = serviceAccountUser('kube-strand', 'strand');

const MANIFEST = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: reader }
rules:
  - apiGroups: [""]
    resources: ["nodes"]
    verbs: ["list", "watch"]
  - apiGroups: [""]
    resources: ["nodes/status"]
    verbs: ["patch"]
  - apiGroups: [""]
    resources: ["nodes"]
    verbs: ["list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: reader }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader }
subjects:
  - { kind: ServiceAccount, name: strand, namespace: kube-strand }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: pods, namespace: web }
rules:
  - { apiGroups: [""], resources: ["pods"], verbs: ["get"], resourceNames: ["p1"] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: pods, namespace: web }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: pods }
subjects:
  - { kind: ServiceAccount, name: strand }
  - { kind: Group, name: "system:serviceaccounts:other" }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: strand, namespace: kube-strand }
---
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: strand, namespace: kube-strand }
spec:
  selector: { matchLabels: { app: strand } }
  template:
    metadata: { labels: { app: strand } }
    spec:
      serviceAccountName: strand
      containers: [{ name: agent, image: x }]
`;

describe('request attributes (RequestInfoResolver)', () => {
  it('reads verb, group, resource, subresource, name and namespace from the URL and the method', () => {
    expect(attrs('GET', '/api/v1/nodes')).toMatchObject({
      resourceRequest: true,
      verb: 'list',
      apiGroup: '',
      apiVersion: 'v1',
      resource: 'nodes',
      name: '',
      namespace: '',
    });
    expect(attrs('GET', '/api/v1/nodes?watch=true&resourceVersion=5')).toMatchObject({
      verb: 'watch',
      resource: 'nodes',
    });
    expect(attrs('GET', '/api/v1/nodes?watch=1')).toMatchObject({ verb: 'watch' });
    expect(attrs('GET', '/api/v1/nodes?watch=false')).toMatchObject({ verb: 'list' });
    expect(attrs('GET', '/api/v1/nodes/n1')).toMatchObject({ verb: 'get', name: 'n1' });
    expect(attrs('PATCH', '/api/v1/nodes/n1/status')).toMatchObject({
      verb: 'patch',
      resource: 'nodes',
      subresource: 'status',
      name: 'n1',
    });
    expect(attrs('PUT', '/api/v1/nodes/n1')).toMatchObject({ verb: 'update' });
    expect(attrs('POST', '/api/v1/namespaces/ns1/pods')).toMatchObject({
      verb: 'create',
      namespace: 'ns1',
      resource: 'pods',
    });
    expect(attrs('DELETE', '/api/v1/namespaces/ns1/pods/p1')).toMatchObject({ verb: 'delete', name: 'p1' });
    expect(attrs('DELETE', '/api/v1/namespaces/ns1/pods')).toMatchObject({ verb: 'deletecollection', name: '' });
    expect(attrs('GET', '/apis/networking.k8s.io/v1/networkpolicies?watch=true')).toMatchObject({
      verb: 'watch',
      apiGroup: 'networking.k8s.io',
      apiVersion: 'v1',
      resource: 'networkpolicies',
      namespace: '',
    });
    expect(attrs('GET', '/apis/networking.k8s.io/v1/namespaces/ns1/networkpolicies/deny')).toMatchObject({
      verb: 'get',
      namespace: 'ns1',
      name: 'deny',
    });
  });

  it('takes a list or watch with fieldSelector metadata.name=<x> as one on the object named x', () => {
    expect(attrs('GET', '/api/v1/nodes?fieldSelector=metadata.name%3Dn1&watch=true')).toMatchObject({
      verb: 'watch',
      name: 'n1',
    });
    expect(attrs('GET', '/api/v1/nodes?fieldSelector=metadata.name%3D%3Dn1')).toMatchObject({
      verb: 'list',
      name: 'n1',
    });
    expect(attrs('GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dn1,metadata.name%3Dp1')).toMatchObject({
      name: 'p1',
    });
    expect(attrs('GET', '/api/v1/nodes?fieldSelector=metadata.name!%3Dn1')).toMatchObject({ name: '' });
    expect(attrs('GET', '/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse')).toMatchObject({ name: '' });
  });

  it('treats a namespace as its own namespace, and its status and finalize as its subresources', () => {
    expect(attrs('GET', '/api/v1/namespaces/ns1')).toMatchObject({
      resource: 'namespaces',
      name: 'ns1',
      namespace: 'ns1',
    });
    expect(attrs('PUT', '/api/v1/namespaces/ns1/finalize')).toMatchObject({
      resource: 'namespaces',
      name: 'ns1',
      subresource: 'finalize',
      namespace: 'ns1',
    });
    expect(attrs('GET', '/api/v1/namespaces')).toMatchObject({ verb: 'list', resource: 'namespaces', namespace: '' });
  });

  it('takes the verb from the path for /watch/ and /proxy/', () => {
    expect(attrs('GET', '/api/v1/watch/nodes')).toMatchObject({ verb: 'watch', resource: 'nodes' });
    expect(attrs('GET', '/api/v1/watch/namespaces/ns1/pods/p1')).toMatchObject({
      verb: 'watch',
      resource: 'pods',
      name: 'p1',
      namespace: 'ns1',
    });
    expect(attrs('GET', '/api/v1/proxy/nodes/n1/metrics')).toMatchObject({
      verb: 'proxy',
      name: 'n1',
      subresource: '',
    });
  });

  it('leaves discovery and health documents as non-resource URLs with the method as verb', () => {
    for (const path of [
      '/healthz',
      '/version',
      '/api',
      '/api/v1',
      '/apis',
      '/apis/networking.k8s.io',
      '/apis/networking.k8s.io/v1',
      '/metrics',
    ]) {
      expect(attrs('GET', path), path).toMatchObject({ resourceRequest: false, verb: 'get', path });
    }
    expect(attrs('POST', '/logs')).toMatchObject({ resourceRequest: false, verb: 'post' });
  });
});

describe('rule matching (evaluation_helpers.go)', () => {
  it('matches verbs, API groups and resources exactly or by *', () => {
    expect(allows({ verbs: ['list'], apiGroups: [''], resources: ['nodes'] }, 'GET', '/api/v1/nodes')).toBe(true);
    expect(allows({ verbs: ['get'], apiGroups: [''], resources: ['nodes'] }, 'GET', '/api/v1/nodes')).toBe(false);
    expect(allows({ verbs: ['*'], apiGroups: [''], resources: ['nodes'] }, 'DELETE', '/api/v1/nodes/n1')).toBe(true);
    expect(
      allows(
        { verbs: ['list'], apiGroups: ['*'], resources: ['networkpolicies'] },
        'GET',
        '/apis/networking.k8s.io/v1/networkpolicies',
      ),
    ).toBe(true);
    expect(
      allows(
        { verbs: ['list'], apiGroups: [''], resources: ['networkpolicies'] },
        'GET',
        '/apis/networking.k8s.io/v1/networkpolicies',
      ),
    ).toBe(false);
    expect(
      allows(
        { verbs: ['list'], apiGroups: ['networking.k8s.io'], resources: ['*'] },
        'GET',
        '/apis/networking.k8s.io/v1/networkpolicies',
      ),
    ).toBe(true);
    expect(allows({ verbs: ['list'], apiGroups: [], resources: ['nodes'] }, 'GET', '/api/v1/nodes')).toBe(false);
  });

  it('grants a subresource only as resource/subresource, */subresource or *', () => {
    expect(
      allows({ verbs: ['patch'], apiGroups: [''], resources: ['nodes'] }, 'PATCH', '/api/v1/nodes/n1/status'),
    ).toBe(false);
    expect(
      allows({ verbs: ['patch'], apiGroups: [''], resources: ['nodes/status'] }, 'PATCH', '/api/v1/nodes/n1/status'),
    ).toBe(true);
    expect(
      allows({ verbs: ['patch'], apiGroups: [''], resources: ['nodes/status'] }, 'PATCH', '/api/v1/nodes/n1'),
    ).toBe(false);
    expect(
      allows({ verbs: ['patch'], apiGroups: [''], resources: ['*/status'] }, 'PATCH', '/api/v1/nodes/n1/status'),
    ).toBe(true);
    expect(allows({ verbs: ['patch'], apiGroups: [''], resources: ['*/status'] }, 'PATCH', '/api/v1/nodes/n1')).toBe(
      false,
    );
    expect(
      allows({ verbs: ['patch'], apiGroups: [''], resources: ['*/statu'] }, 'PATCH', '/api/v1/nodes/n1/status'),
    ).toBe(false);
    expect(allows({ verbs: ['patch'], apiGroups: [''], resources: ['*'] }, 'PATCH', '/api/v1/nodes/n1/status')).toBe(
      true,
    );
    expect(
      allows({ verbs: ['patch'], apiGroups: [''], resources: ['pods/status'] }, 'PATCH', '/api/v1/nodes/n1/status'),
    ).toBe(false);
  });

  it('limits a rule with resourceNames to those names; a list has no name unless selected by metadata.name', () => {
    const r = { verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['nodes'], resourceNames: ['n1'] };
    expect(allows(r, 'GET', '/api/v1/nodes/n1')).toBe(true);
    expect(allows(r, 'GET', '/api/v1/nodes/n2')).toBe(false);
    expect(allows(r, 'GET', '/api/v1/nodes')).toBe(false);
    expect(allows(r, 'GET', '/api/v1/nodes?watch=true&fieldSelector=metadata.name%3Dn1')).toBe(true);
    expect(allows(r, 'GET', '/api/v1/nodes?watch=true&fieldSelector=metadata.name%3Dn2')).toBe(false);
  });

  it('matches non-resource URLs exactly, by *, or by a prefix ending in *; never resource rules', () => {
    expect(allows({ verbs: ['get'], nonResourceURLs: ['/healthz'] }, 'GET', '/healthz')).toBe(true);
    expect(allows({ verbs: ['get'], nonResourceURLs: ['/healthz'] }, 'GET', '/healthz/etcd')).toBe(false);
    expect(allows({ verbs: ['get'], nonResourceURLs: ['/healthz/*'] }, 'GET', '/healthz/etcd')).toBe(true);
    expect(allows({ verbs: ['get'], nonResourceURLs: ['/api/*'] }, 'GET', '/api/v1')).toBe(true);
    expect(allows({ verbs: ['get'], nonResourceURLs: ['*'] }, 'GET', '/version')).toBe(true);
    expect(allows({ verbs: ['post'], nonResourceURLs: ['*'] }, 'GET', '/version')).toBe(false);
    expect(allows({ verbs: ['get'], apiGroups: ['*'], resources: ['*'] }, 'GET', '/healthz')).toBe(false);
    expect(allows({ verbs: ['get'], nonResourceURLs: ['*'] }, 'GET', '/api/v1/nodes/n1')).toBe(false);
  });
});

describe('the authorizer', () => {
  const { policy, serviceAccount } = parseRbacManifest(MANIFEST);
  const full = withBootstrap(policy);

  it('reads the roles, bindings and the DaemonSet ServiceAccount from a multi-document manifest', () => {
    expect(serviceAccount).toEqual({ namespace: 'kube-strand', name: 'strand' });
    expect(policy.roles.map((r) => `${r.kind} ${r.namespace}/${r.name}`)).toEqual([
      'ClusterRole /reader',
      'Role web/pods',
    ]);
    expect(policy.bindings.map((b) => `${b.kind} ${b.namespace}/${b.name}`)).toEqual([
      'ClusterRoleBinding /reader',
      'RoleBinding web/pods',
    ]);
    expect(SA).toEqual({
      name: 'system:serviceaccount:kube-strand:strand',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-strand', 'system:authenticated'],
    });
  });

  it('allows what a binding of the user grants, and nothing else', () => {
    expect(authorize(full, SA, attrs('GET', '/api/v1/nodes?watch=true')).allowed).toBe(true);
    expect(authorize(full, SA, attrs('PATCH', '/api/v1/nodes/n1/status')).allowed).toBe(true);
    expect(authorize(full, SA, attrs('PATCH', '/api/v1/nodes/n1')).allowed).toBe(false);
    expect(authorize(full, SA, attrs('GET', '/api/v1/pods')).allowed).toBe(false);
    const other = serviceAccountUser('kube-system', 'strand');
    expect(authorize(full, other, attrs('GET', '/api/v1/nodes')).allowed).toBe(false);
    expect(
      authorize(full, { name: 'strand', groups: ['system:authenticated'] }, attrs('GET', '/api/v1/nodes')).allowed,
    ).toBe(false);
  });

  it("applies a RoleBinding only in its namespace; its ServiceAccount subject without a namespace is the binding's", () => {
    const webSa = serviceAccountUser('web', 'strand');
    expect(authorize(full, webSa, attrs('GET', '/api/v1/namespaces/web/pods/p1')).allowed).toBe(true);
    expect(authorize(full, webSa, attrs('GET', '/api/v1/namespaces/web/pods/p2')).allowed).toBe(false);
    expect(authorize(full, webSa, attrs('GET', '/api/v1/namespaces/other/pods/p1')).allowed).toBe(false);
    expect(authorize(full, SA, attrs('GET', '/api/v1/namespaces/web/pods/p1')).allowed).toBe(false);
    const grouped = serviceAccountUser('other', 'anyone');
    expect(authorize(full, grouped, attrs('GET', '/api/v1/namespaces/web/pods/p1')).allowed).toBe(true);
  });

  it('allows system:masters everything, and every user the discovery documents, anonymous only the public ones', () => {
    expect(authorize(full, ADMIN_USER, attrs('DELETE', '/api/v1/nodes')).allowed).toBe(true);
    for (const path of ['/api', '/api/v1', '/apis/networking.k8s.io/v1', '/version', '/healthz'])
      expect(authorize(full, SA, attrs('GET', path)).allowed, path).toBe(true);
    expect(authorize(full, SA, attrs('GET', '/metrics')).allowed).toBe(false);
    expect(authorize(full, ANONYMOUS_USER, attrs('GET', '/healthz')).allowed).toBe(true);
    expect(authorize(full, ANONYMOUS_USER, attrs('GET', '/api')).allowed).toBe(false);
  });

  it('names a binding whose role is missing in the reason', () => {
    const broken: RbacPolicy = {
      roles: [],
      bindings: [
        {
          ...policy.bindings[0]!,
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'gone' },
        },
      ],
    };
    const d = authorize(broken, SA, attrs('GET', '/api/v1/nodes'));
    expect(d).toEqual({ allowed: false, reason: 'RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found]' });
  });

  it("answers a denial with kube-apiserver's Status and message", () => {
    const named = forbidden(SA, attrs('PATCH', '/api/v1/nodes/n1')).toStatus();
    expect(named).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      reason: 'Forbidden',
      code: 403,
      details: { name: 'n1', kind: 'nodes' },
      message:
        'nodes "n1" is forbidden: User "system:serviceaccount:kube-strand:strand" cannot patch resource "nodes" in API group "" at the cluster scope',
    });
    expect(
      forbidden(SA, attrs('GET', '/apis/networking.k8s.io/v1/namespaces/ns1/networkpolicies?watch=true')).toStatus(),
    ).toMatchObject({
      details: { group: 'networking.k8s.io', kind: 'networkpolicies' },
      message:
        'networkpolicies.networking.k8s.io is forbidden: User "system:serviceaccount:kube-strand:strand" cannot watch resource "networkpolicies" in API group "networking.k8s.io" in the namespace "ns1"',
    });
    expect(forbidden(SA, attrs('PATCH', '/api/v1/nodes/n1/status')).message).toBe(
      'nodes "n1" is forbidden: User "system:serviceaccount:kube-strand:strand" cannot patch resource "nodes/status" in API group "" at the cluster scope',
    );
    expect(forbidden(SA, attrs('GET', '/metrics')).toStatus()).toMatchObject({
      details: {},
      message: 'forbidden: User "system:serviceaccount:kube-strand:strand" cannot get path "/metrics"',
    });
  });

  it('refuses a manifest it cannot judge, naming the document and field', () => {
    expect(() =>
      parseRbacManifest(
        'apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: { name: x }\nrules: [{ resources: [nodes] }]\n',
      ),
    ).toThrow(/document 1 \(ClusterRole\): rules\.0\.verbs/);
    expect(() =>
      parseRbacManifest('apiVersion: rbac.authorization.k8s.io/v1beta1\nkind: ClusterRole\nmetadata: { name: x }\n'),
    ).toThrow(RbacManifestError);
    expect(() =>
      parseRbacManifest(
        'apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: { name: x }\naggregationRule: { clusterRoleSelectors: [] }\n',
      ),
    ).toThrow(/aggregationRule/);
    const noAccount = MANIFEST.replace(
      'kind: ServiceAccount\nmetadata: { name: strand, namespace: kube-strand }',
      'kind: ServiceAccount\nmetadata: { name: other, namespace: kube-strand }',
    );
    expect(() => parseRbacManifest(noAccount)).toThrow(
      'the DaemonSet runs as ServiceAccount kube-strand/strand, which the manifest does not create',
    );
  });
});

describe('least privilege', () => {
  it('counts each verb of each resource of each rule on its own and credits the first rule that allows', () => {
    const { policy } = parseRbacManifest(MANIFEST);
    const full = withBootstrap(policy);
    const usage = new PermissionUsage(full, SA);
    const request = (method: string, url: string) => {
      const a = attrs(method, url);
      usage.record(a, authorize(full, SA, a));
    };
    request('GET', '/api/v1/nodes');
    request('GET', '/api/v1/nodes');
    request('GET', '/api/v1/pods');
    request('GET', '/version');
    const r = usage.report();
    expect(r.granted).toEqual([
      'list nodes (ClusterRole reader, rule 1)',
      'watch nodes (ClusterRole reader, rule 1)',
      'patch nodes/status (ClusterRole reader, rule 2)',
      'list nodes (ClusterRole reader, rule 3)',
    ]);
    expect(r.used).toEqual(['list nodes (ClusterRole reader, rule 1)']);
    // Rule 3 repeats rule 1: the authorizer never gets to it, so it is unused.
    expect(r.unused).toEqual([
      'watch nodes (ClusterRole reader, rule 1)',
      'patch nodes/status (ClusterRole reader, rule 2)',
      'list nodes (ClusterRole reader, rule 3)',
    ]);
    expect(r.requests).toEqual({ 'get /version': 1, 'list nodes': 2 });
    expect(r.denied).toEqual({ 'list pods': 1 });
  });

  it('expands the project manifest into one permission per verb and resource', () => {
    const { policy, serviceAccount } = parseRbacManifest(readFileSync(DEPLOY_MANIFEST, 'utf8'));
    const user = serviceAccountUser(serviceAccount!.namespace, serviceAccount!.name);
    const r = new PermissionUsage(withBootstrap(policy), user).report();
    expect(r.granted.length).toBeGreaterThan(0);
    expect(r.unused).toEqual(r.granted);
    for (const g of r.granted) expect(g).toMatch(/^[a-z]+ [a-z0-9/.*]+( "[^"]+")? \(ClusterRole strand, rule \d+\)$/);
  });
});
