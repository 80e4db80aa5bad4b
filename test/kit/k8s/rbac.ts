// The RBAC authorizer of kube-apiserver for the test API server: ClusterRoles, Roles and their
// bindings read from a manifest (deploy/strand.yaml), judged the way
// plugin/pkg/auth/authorizer/rbac/rbac.go and pkg/apis/rbac/v1/evaluation_helpers.go judge them,
// and the record of which of the manifest's permissions a user was granted and used (least privilege).
//
// - A rule allows a resource request when a verb matches (or "*"), an API group matches (or "*"), a
//   resource matches ("*", the exact "resource" or "resource/subresource", or "*/subresource") and,
//   when the rule names resourceNames, the request's name is one of them (a list or watch has no
//   name unless its field selector is metadata.name=<x>). A non-resource request (/healthz, /api…)
//   matches on its verb and a nonResourceURL: exact, "*", or a prefix ending in "*".
// - Rules are visited as the rule resolver visits them: every ClusterRoleBinding, then the
//   RoleBindings of the request's namespace; the first rule that allows decides (and is the one
//   credited with the use). A binding applies to a User by name, a Group by membership, a
//   ServiceAccount by system:serviceaccount:<namespace>:<name> (a RoleBinding's subject without a
//   namespace means the binding's own).
// - system:masters is allowed everything (kube-apiserver's privileged-group authorizer runs before
//   RBAC), and the bootstrap policy's discovery roles are in place (system:discovery and
//   system:public-info-viewer), as on any cluster; those are never part of the least-privilege report.
// - Denials carry kube-apiserver's Status: 403 Forbidden, details {name, group, kind (the resource)},
//   message `<resource>[.<group>] ["<name>" ]is forbidden: User "<user>" cannot <verb> resource
//   "<resource>[/<subresource>]" in API group "<group>" (at the cluster scope | in the namespace "<ns>")`.
import { dumpYaml, loadAllYaml } from '@kubernetes/client-node';
import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import type { RequestAttributes } from './request-info.ts';
import { ApiError, type StatusDetails } from './store.ts';

const RBAC_GROUP = 'rbac.authorization.k8s.io';

const policyRuleSchema = z.object({
  verbs: z.array(z.string()).min(1),
  apiGroups: z.array(z.string()).default([]),
  resources: z.array(z.string()).default([]),
  resourceNames: z.array(z.string()).default([]),
  nonResourceURLs: z.array(z.string()).default([]),
});
const metadataSchema = z.object({
  name: z.string().min(1),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
});
const roleSchema = z.object({
  metadata: metadataSchema,
  rules: z.array(policyRuleSchema).default([]),
  aggregationRule: z.unknown().optional(),
});
const subjectSchema = z.object({
  kind: z.string(),
  name: z.string(),
  namespace: z.string().optional(),
  apiGroup: z.string().optional(),
});
const roleRefSchema = z.object({
  apiGroup: z.literal(RBAC_GROUP),
  kind: z.enum(['ClusterRole', 'Role']),
  name: z.string().min(1),
});
const bindingSchema = z.object({
  metadata: metadataSchema,
  subjects: z.array(subjectSchema).default([]),
  roleRef: roleRefSchema,
});
const daemonSetSchema = z.object({
  metadata: metadataSchema,
  spec: z.object({ template: z.object({ spec: z.object({ serviceAccountName: z.string().optional() }) }) }),
});

export type PolicyRule = z.infer<typeof policyRuleSchema>;
export type Subject = z.infer<typeof subjectSchema>;
export type RoleRef = z.infer<typeof roleRefSchema>;

export interface Role {
  kind: 'ClusterRole' | 'Role';
  name: string;
  /** "" for a ClusterRole. */
  namespace: string;
  rules: PolicyRule[];
  /** From the manifest (false: the cluster's bootstrap policy). */
  fromManifest: boolean;
}

export interface Binding {
  kind: 'ClusterRoleBinding' | 'RoleBinding';
  name: string;
  /** "" for a ClusterRoleBinding. */
  namespace: string;
  subjects: Subject[];
  roleRef: RoleRef;
}

export interface RbacPolicy {
  roles: Role[];
  bindings: Binding[];
}

export interface UserInfo {
  name: string;
  groups: string[];
}

export const PRIVILEGED_GROUP = 'system:masters';
export const ADMIN_USER: UserInfo = { name: 'system:admin', groups: [PRIVILEGED_GROUP, 'system:authenticated'] };
export const ANONYMOUS_USER: UserInfo = { name: 'system:anonymous', groups: ['system:unauthenticated'] };

/** The user a ServiceAccount token authenticates as (k8s.io/apiserver/pkg/authentication/serviceaccount). */
export function serviceAccountUser(namespace: string, name: string): UserInfo {
  return {
    name: `system:serviceaccount:${namespace}:${name}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
  };
}

/** The bootstrap policy's discovery roles (plugin/pkg/auth/authorizer/rbac/bootstrappolicy), as every cluster has them. */
export const BOOTSTRAP_POLICY: RbacPolicy = {
  roles: [
    {
      kind: 'ClusterRole',
      name: 'system:discovery',
      namespace: '',
      rules: [
        {
          verbs: ['get'],
          apiGroups: [],
          resources: [],
          resourceNames: [],
          nonResourceURLs: [
            '/api',
            '/api/*',
            '/apis',
            '/apis/*',
            '/healthz',
            '/livez',
            '/openapi',
            '/openapi/*',
            '/readyz',
            '/version',
            '/version/',
          ],
        },
      ],
      fromManifest: false,
    },
    {
      kind: 'ClusterRole',
      name: 'system:public-info-viewer',
      namespace: '',
      rules: [
        {
          verbs: ['get'],
          apiGroups: [],
          resources: [],
          resourceNames: [],
          nonResourceURLs: ['/healthz', '/livez', '/readyz', '/version', '/version/'],
        },
      ],
      fromManifest: false,
    },
  ],
  bindings: [
    {
      kind: 'ClusterRoleBinding',
      name: 'system:discovery',
      namespace: '',
      subjects: [{ kind: 'Group', name: 'system:authenticated', apiGroup: RBAC_GROUP }],
      roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: 'system:discovery' },
    },
    {
      kind: 'ClusterRoleBinding',
      name: 'system:public-info-viewer',
      namespace: '',
      subjects: [
        { kind: 'Group', name: 'system:authenticated', apiGroup: RBAC_GROUP },
        { kind: 'Group', name: 'system:unauthenticated', apiGroup: RBAC_GROUP },
      ],
      roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: 'system:public-info-viewer' },
    },
  ],
};

export class RbacManifestError extends Error {
  override name = 'RbacManifestError';
}

export interface RbacManifest {
  policy: RbacPolicy;
  /** The ServiceAccount the manifest's DaemonSet runs as (the agent's identity), if it has one. */
  serviceAccount: { namespace: string; name: string } | undefined;
}

function parseDoc<T>(schema: z.ZodType<T>, doc: unknown, where: string): T {
  const r = schema.safeParse(doc);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new RbacManifestError(`${where}: ${issue?.path.join('.') || '(object)'}: ${issue?.message ?? 'invalid'}`);
  }
  return r.data;
}

/** The RBAC objects of a multi-document manifest, and the ServiceAccount of its DaemonSet. */
export function parseRbacManifest(text: string, source = 'manifest'): RbacManifest {
  let docs: unknown[];
  try {
    // loadAllYaml builds client-node model objects; their JSON is the plain object.
    docs = (loadAllYaml(text) as unknown[]).map((d) => JSON.parse(JSON.stringify(d ?? null)) as unknown);
  } catch (err) {
    throw new RbacManifestError(`${source}: not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const policy: RbacPolicy = { roles: [], bindings: [] };
  let serviceAccount: RbacManifest['serviceAccount'];
  const accounts = new Set<string>();
  docs.forEach((doc, i) => {
    if (typeof doc !== 'object' || doc === null) return;
    const { kind, apiVersion } = doc as { kind?: unknown; apiVersion?: unknown };
    const where = `${source}, document ${i + 1} (${String(kind)})`;
    if (kind === 'ClusterRole' || kind === 'Role' || kind === 'ClusterRoleBinding' || kind === 'RoleBinding') {
      if (apiVersion !== `${RBAC_GROUP}/v1`)
        throw new RbacManifestError(`${where}: apiVersion must be ${RBAC_GROUP}/v1, not ${String(apiVersion)}`);
    }
    if (kind === 'ClusterRole' || kind === 'Role') {
      const role = parseDoc(roleSchema, doc, where);
      // The aggregation controller fills an aggregated ClusterRole's rules; this server has none.
      if (role.aggregationRule !== undefined)
        throw new RbacManifestError(`${where}: aggregationRule is not supported by the test API server`);
      const namespace = kind === 'Role' ? (role.metadata.namespace ?? 'default') : '';
      policy.roles.push({ kind, name: role.metadata.name, namespace, rules: role.rules, fromManifest: true });
    } else if (kind === 'ClusterRoleBinding' || kind === 'RoleBinding') {
      const b = parseDoc(bindingSchema, doc, where);
      if (kind === 'ClusterRoleBinding' && b.roleRef.kind !== 'ClusterRole')
        throw new RbacManifestError(`${where}: a ClusterRoleBinding's roleRef must be a ClusterRole`);
      const namespace = kind === 'RoleBinding' ? (b.metadata.namespace ?? 'default') : '';
      policy.bindings.push({ kind, name: b.metadata.name, namespace, subjects: b.subjects, roleRef: b.roleRef });
    } else if (kind === 'ServiceAccount') {
      const sa = parseDoc(z.object({ metadata: metadataSchema }), doc, where);
      accounts.add(`${sa.metadata.namespace ?? 'default'}/${sa.metadata.name}`);
    } else if (kind === 'DaemonSet') {
      const ds = parseDoc(daemonSetSchema, doc, where);
      serviceAccount = {
        namespace: ds.metadata.namespace ?? 'default',
        name: ds.spec.template.spec.serviceAccountName ?? 'default',
      };
    }
  });
  // The ServiceAccount admission plugin refuses a pod whose account does not exist: the DaemonSet
  // would run no agent at all (the "default" account is the namespace's own).
  if (
    serviceAccount &&
    serviceAccount.name !== 'default' &&
    !accounts.has(`${serviceAccount.namespace}/${serviceAccount.name}`)
  ) {
    throw new RbacManifestError(
      `${source}: the DaemonSet runs as ServiceAccount ${serviceAccount.namespace}/${serviceAccount.name}, which the manifest does not create`,
    );
  }
  return { policy, serviceAccount };
}

export function loadRbacManifest(path: string): RbacManifest {
  return parseRbacManifest(readFileSync(path, 'utf8'), path);
}

/**
 * Writes a copy of a manifest whose ClusterRoles' rules went through `edit` (the other objects as
 * they are), for tests that take a permission away: the agent must then get a 403.
 */
export function writeManifestCopy(
  from: string,
  to: string,
  edit: (rules: PolicyRule[], role: string) => PolicyRule[],
): string {
  const docs = (loadAllYaml(readFileSync(from, 'utf8')) as unknown[]).filter((d) => d !== null && d !== undefined);
  const out = docs.map((doc) => {
    const d = doc as { kind?: string; metadata?: { name?: string }; rules?: PolicyRule[] };
    if (d.kind === 'ClusterRole')
      d.rules = edit(parseDoc(roleSchema, JSON.parse(JSON.stringify(d)), from).rules, d.metadata?.name ?? '');
    return dumpYaml(d);
  });
  writeFileSync(to, out.join('---\n'));
  return to;
}

/** An edit for writeManifestCopy: the rules without the (group, resource) pairs `drop` says no to; rules left with no resource go. */
export function withoutResources(
  drop: (group: string, resource: string) => boolean,
): (rules: PolicyRule[]) => PolicyRule[] {
  return (rules) =>
    rules
      .map((r) => ({ ...r, resources: r.resources.filter((res) => !r.apiGroups.some((g) => drop(g, res))) }))
      .filter((r) => r.resources.length > 0 || r.nonResourceURLs.length > 0);
}

// ---- rule matching (evaluation_helpers.go) ----

export function verbMatches(rule: PolicyRule, verb: string): boolean {
  return rule.verbs.some((v) => v === '*' || v === verb);
}

export function apiGroupMatches(rule: PolicyRule, group: string): boolean {
  return rule.apiGroups.some((g) => g === '*' || g === group);
}

/** `combined` is "resource" or "resource/subresource". */
export function resourceMatches(rule: PolicyRule, combined: string, subresource: string): boolean {
  return rule.resources.some((r) => r === '*' || r === combined || (subresource !== '' && r === `*/${subresource}`));
}

export function resourceNameMatches(rule: PolicyRule, name: string): boolean {
  return rule.resourceNames.length === 0 || rule.resourceNames.includes(name);
}

export function nonResourceURLMatches(rule: PolicyRule, path: string): boolean {
  return rule.nonResourceURLs.some(
    (u) => u === '*' || u === path || (u.endsWith('*') && path.startsWith(u.replace(/\*+$/, ''))),
  );
}

function combinedResource(attrs: RequestAttributes): string {
  return attrs.subresource === '' ? attrs.resource : `${attrs.resource}/${attrs.subresource}`;
}

export function ruleAllows(rule: PolicyRule, attrs: RequestAttributes): boolean {
  if (!attrs.resourceRequest) return verbMatches(rule, attrs.verb) && nonResourceURLMatches(rule, attrs.path);
  return (
    verbMatches(rule, attrs.verb) &&
    apiGroupMatches(rule, attrs.apiGroup) &&
    resourceMatches(rule, combinedResource(attrs), attrs.subresource) &&
    resourceNameMatches(rule, attrs.name)
  );
}

/** Whether a binding's subject is the user (rule.go appliesToUser); `namespace` is the binding's. */
export function subjectApplies(subject: Subject, user: UserInfo, namespace: string): boolean {
  switch (subject.kind) {
    case 'User':
      return subject.name === user.name;
    case 'Group':
      return user.groups.includes(subject.name);
    case 'ServiceAccount': {
      const ns = subject.namespace !== undefined && subject.namespace !== '' ? subject.namespace : namespace;
      return ns !== '' && user.name === `system:serviceaccount:${ns}:${subject.name}`;
    }
    default:
      return false;
  }
}

// ---- the authorizer ----

export interface RuleSource {
  binding: Binding;
  role: Role;
  /** 0-based index of the rule in the role. */
  index: number;
  rule: PolicyRule;
}

export type Decision = { allowed: true; by: RuleSource | 'privileged-group' } | { allowed: false; reason: string };

/** The manifest's policy on top of the bootstrap discovery roles: what a cluster with the manifest applied holds. */
export function withBootstrap(policy: RbacPolicy): RbacPolicy {
  return {
    roles: [...BOOTSTRAP_POLICY.roles, ...policy.roles],
    bindings: [...BOOTSTRAP_POLICY.bindings, ...policy.bindings],
  };
}

/**
 * Every rule that applies to the user for a request in `namespace`, in the rule resolver's order
 * (ClusterRoleBindings, then the namespace's RoleBindings), with the reasons some could not be resolved.
 */
export function rulesFor(
  policy: RbacPolicy,
  user: UserInfo,
  namespace: string,
): { rules: RuleSource[]; errors: string[] } {
  const rules: RuleSource[] = [];
  const errors: string[] = [];
  const bindings = [
    ...policy.bindings.filter((b) => b.kind === 'ClusterRoleBinding'),
    ...(namespace === '' ? [] : policy.bindings.filter((b) => b.kind === 'RoleBinding' && b.namespace === namespace)),
  ];
  for (const binding of bindings) {
    if (!binding.subjects.some((s) => subjectApplies(s, user, binding.namespace))) continue;
    const ref = binding.roleRef;
    const role = policy.roles.find(
      (r) =>
        r.kind === ref.kind && r.name === ref.name && r.namespace === (ref.kind === 'Role' ? binding.namespace : ''),
    );
    if (!role) {
      errors.push(
        ref.kind === 'Role'
          ? `role.${RBAC_GROUP} "${ref.name}" not found`
          : `clusterrole.${RBAC_GROUP} "${ref.name}" not found`,
      );
      continue;
    }
    role.rules.forEach((rule, index) => rules.push({ binding, role, index, rule }));
  }
  return { rules, errors };
}

/** The decision on one request: system:masters always, else the first rule of the user's that allows it. */
export function authorize(policy: RbacPolicy, user: UserInfo, attrs: RequestAttributes): Decision {
  if (user.groups.includes(PRIVILEGED_GROUP)) return { allowed: true, by: 'privileged-group' };
  const { rules, errors } = rulesFor(policy, user, attrs.namespace);
  const by = rules.find((r) => ruleAllows(r.rule, attrs));
  if (by) return { allowed: true, by };
  return { allowed: false, reason: errors.length > 0 ? `RBAC: [${errors.join(', ')}]` : '' };
}

/** kube-apiserver's 403 for a denied request (responsewriters.Forbidden, errors.NewForbidden). */
export function forbidden(user: UserInfo, attrs: RequestAttributes, reason = ''): ApiError {
  const suffix = reason === '' ? '' : `: ${reason}`;
  if (!attrs.resourceRequest) {
    return new ApiError(
      403,
      'Forbidden',
      `forbidden: User "${user.name}" cannot ${attrs.verb} path "${attrs.path}"${suffix}`,
      {},
    );
  }
  const scope = attrs.namespace !== '' ? `in the namespace "${attrs.namespace}"` : 'at the cluster scope';
  const why = `User "${user.name}" cannot ${attrs.verb} resource "${combinedResource(attrs)}" in API group "${attrs.apiGroup}" ${scope}${suffix}`;
  const qualified = attrs.apiGroup === '' ? attrs.resource : `${attrs.resource}.${attrs.apiGroup}`;
  const message =
    attrs.resource === ''
      ? `forbidden: ${why}`
      : attrs.name === ''
        ? `${qualified} is forbidden: ${why}`
        : `${qualified} "${attrs.name}" is forbidden: ${why}`;
  // StatusDetails' fields are omitempty: the core group and a list's missing name are left out.
  const details: StatusDetails = {};
  if (attrs.name !== '') details.name = attrs.name;
  if (attrs.apiGroup !== '') details.group = attrs.apiGroup;
  if (attrs.resource !== '') details.kind = attrs.resource;
  return new ApiError(403, 'Forbidden', message, details);
}

// ---- least privilege ----

/**
 * One permission a role grants: one verb on one resource (or subresource) of one API group, by one
 * rule, optionally for one named object; or one verb on one non-resource URL. A rule of three verbs
 * on two resources is six permissions, each used or not on its own. Wildcards stay as written ("*")
 * and are used when anything matches them.
 */
export interface Permission {
  role: string;
  /** 1-based, as a reader counts the rules of the role. */
  rule: number;
  verb: string;
  apiGroup: string;
  resource: string;
  resourceName: string;
  nonResourceURL: string;
}

/** "list networkpolicies.networking.k8s.io", "patch nodes/status", "get nodes \"n1\"", "get /healthz". */
export function describeAccess(
  p: Pick<Permission, 'verb' | 'apiGroup' | 'resource' | 'resourceName' | 'nonResourceURL'>,
): string {
  if (p.nonResourceURL !== '') return `${p.verb} ${p.nonResourceURL}`;
  const group = p.apiGroup === '' ? '' : `.${p.apiGroup}`;
  const name = p.resourceName === '' ? '' : ` "${p.resourceName}"`;
  return `${p.verb} ${p.resource}${group}${name}`;
}

export function describePermission(p: Permission): string {
  return `${describeAccess(p)} (${p.role}, rule ${p.rule})`;
}

function roleLabel(role: Role): string {
  return role.kind === 'Role' ? `Role ${role.namespace}/${role.name}` : `ClusterRole ${role.name}`;
}

/** The permissions of one rule, each verb × group × resource (× name) on its own. */
export function permissionsOfRule(role: Role, index: number, rule: PolicyRule): Permission[] {
  const out: Permission[] = [];
  const base = { role: roleLabel(role), rule: index + 1 };
  for (const verb of rule.verbs) {
    for (const url of rule.nonResourceURLs)
      out.push({ ...base, verb, apiGroup: '', resource: '', resourceName: '', nonResourceURL: url });
    for (const apiGroup of rule.apiGroups) {
      for (const resource of rule.resources) {
        const names = rule.resourceNames.length === 0 ? [''] : rule.resourceNames;
        for (const resourceName of names)
          out.push({ ...base, verb, apiGroup, resource, resourceName, nonResourceURL: '' });
      }
    }
  }
  return out;
}

/** The permission of a rule a request used: the first verb, group, resource and name of the rule that match, as the matchers try them. */
export function permissionUsed(source: RuleSource, attrs: RequestAttributes): Permission {
  const { rule } = source;
  const base = { role: roleLabel(source.role), rule: source.index + 1 };
  const verb = rule.verbs.find((v) => v === '*' || v === attrs.verb) ?? attrs.verb;
  if (!attrs.resourceRequest) {
    const url =
      rule.nonResourceURLs.find((u) => nonResourceURLMatches({ ...rule, nonResourceURLs: [u] }, attrs.path)) ??
      attrs.path;
    return { ...base, verb, apiGroup: '', resource: '', resourceName: '', nonResourceURL: url };
  }
  const combined = combinedResource(attrs);
  return {
    ...base,
    verb,
    apiGroup: rule.apiGroups.find((g) => g === '*' || g === attrs.apiGroup) ?? attrs.apiGroup,
    resource:
      rule.resources.find((r) => resourceMatches({ ...rule, resources: [r] }, combined, attrs.subresource)) ?? combined,
    resourceName: rule.resourceNames.length === 0 ? '' : attrs.name,
    nonResourceURL: '',
  };
}

export interface LeastPrivilegeReport {
  /** The user the report is about. */
  user: string;
  /** Every permission the manifest's roles bound to the user grant, as describePermission writes them. */
  granted: string[];
  /** The granted permissions the user's requests were allowed by. */
  used: string[];
  /** Granted and never used: candidates to drop from the manifest. */
  unused: string[];
  /** What the user asked for and was allowed, by access ("list nodes"), with the number of requests. */
  requests: Record<string, number>;
  /** What the user asked for and was refused, with the number of requests: the manifest lacks these. */
  denied: Record<string, number>;
}

/**
 * Records what one user (the agent's identity) was allowed and refused, and which of the manifest's
 * permissions allowed it: the first rule that allows a request is credited, as kube-apiserver's
 * authorizer stops there, so a rule that only repeats an earlier one shows as unused.
 */
export class PermissionUsage {
  private readonly used = new Map<string, Permission>();
  private readonly allowed = new Map<string, number>();
  private readonly refused = new Map<string, number>();

  readonly policy: RbacPolicy;
  readonly user: UserInfo;

  constructor(policy: RbacPolicy, user: UserInfo) {
    this.policy = policy;
    this.user = user;
  }

  record(attrs: RequestAttributes, decision: Decision): void {
    const access = describeAccess({
      verb: attrs.verb,
      apiGroup: attrs.apiGroup,
      resource: combinedResource(attrs),
      resourceName: '',
      nonResourceURL: attrs.resourceRequest ? '' : attrs.path,
    });
    const counts = decision.allowed ? this.allowed : this.refused;
    counts.set(access, (counts.get(access) ?? 0) + 1);
    if (decision.allowed && decision.by !== 'privileged-group' && decision.by.role.fromManifest) {
      const p = permissionUsed(decision.by, attrs);
      this.used.set(describePermission(p), p);
    }
  }

  report(): LeastPrivilegeReport {
    const granted: string[] = [];
    // Every role bound to the user anywhere: cluster-wide, and by RoleBindings in any namespace.
    const namespaces = [
      '',
      ...new Set(this.policy.bindings.filter((b) => b.kind === 'RoleBinding').map((b) => b.namespace)),
    ];
    const seen = new Set<string>();
    for (const ns of namespaces) {
      for (const source of rulesFor(this.policy, this.user, ns).rules) {
        if (!source.role.fromManifest) continue;
        const key = `${roleLabel(source.role)}#${source.index}`;
        if (seen.has(key)) continue;
        seen.add(key);
        for (const p of permissionsOfRule(source.role, source.index, source.rule)) granted.push(describePermission(p));
      }
    }
    const used = [...this.used.keys()].sort();
    const usedSet = new Set(used);
    return {
      user: this.user.name,
      granted,
      used,
      unused: granted.filter((g) => !usedSet.has(g)),
      requests: Object.fromEntries([...this.allowed].sort(([a], [b]) => a.localeCompare(b))),
      denied: Object.fromEntries([...this.refused].sort(([a], [b]) => a.localeCompare(b))),
    };
  }
}

/** The report as text for a failing test: what is unused, what was refused, and what the agent did use. */
export function describeLeastPrivilege(r: LeastPrivilegeReport): string {
  const lines = [`RBAC of ${r.user}:`];
  if (r.unused.length > 0) lines.push(`  granted by the manifest and never used: ${r.unused.join('; ')}`);
  if (Object.keys(r.denied).length > 0)
    lines.push(
      `  refused (the manifest lacks them): ${Object.entries(r.denied)
        .map(([a, n]) => `${a} ×${n}`)
        .join('; ')}`,
    );
  lines.push(`  used: ${r.used.join('; ') || '(nothing)'}`);
  lines.push(
    `  requests allowed: ${
      Object.entries(r.requests)
        .map(([a, n]) => `${a} ×${n}`)
        .join('; ') || '(none)'
    }`,
  );
  return lines.join('\n');
}
