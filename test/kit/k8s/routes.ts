// How the test API server maps request paths to resources (the REST layout of
// k8s.io/apiserver's installer), the discovery documents, and the small HTTP helpers.
import type { IncomingMessage } from 'node:http';
import { isObject, type JsonValue } from './patch.ts';
import { apiResourceList, RESOURCES, type ResourceType } from './resources.ts';
import { ApiError } from './store.ts';

export type Verb = 'list' | 'watch' | 'get' | 'create' | 'update' | 'patch' | 'delete' | 'discovery' | 'health';

export type Route =
  | { kind: 'static'; verb: Verb; contentType: string; body: string }
  | { kind: 'collection'; type: ResourceType; namespace: string | undefined }
  | { kind: 'item'; type: ResourceType; namespace: string; name: string; subresource: 'status' | undefined };

/**
 * Resolves a request path: discovery and health documents, or a resource collection or item. A type
 * `served` refuses (a CRD not installed) is unknown, as in kube-apiserver: 404, absent from discovery.
 */
export function routeOf(
  pathname: string,
  serverAddress: string,
  served: (type: ResourceType) => boolean = () => true,
): Route | ApiError {
  const seg = pathname
    .split('/')
    .filter((s) => s !== '')
    .map(decodeURIComponent);
  const json = (verb: Verb, body: unknown): Route => ({
    kind: 'static',
    verb,
    contentType: 'application/json',
    body: JSON.stringify(body),
  });
  const path = seg.join('/');
  if (['healthz', 'livez', 'readyz'].includes(path))
    return { kind: 'static', verb: 'health', contentType: 'text/plain', body: 'ok' };
  if (path === 'version') return json('discovery', VERSION);
  if (path === 'api') {
    return json('discovery', {
      kind: 'APIVersions',
      versions: ['v1'],
      serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
    });
  }
  const policyServed = served(RESOURCES.clusternetworkpolicies);
  if (path === 'apis') {
    return json('discovery', {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: policyServed ? [NETWORKING_GROUP, POLICY_GROUP] : [NETWORKING_GROUP],
    });
  }
  if (path === 'apis/networking.k8s.io')
    return json('discovery', { kind: 'APIGroup', apiVersion: 'v1', ...NETWORKING_GROUP });
  if (path === 'api/v1') return json('discovery', apiResourceList('v1'));
  if (path === 'apis/networking.k8s.io/v1') return json('discovery', apiResourceList('networking.k8s.io/v1'));
  if (policyServed && path === 'apis/policy.networking.k8s.io')
    return json('discovery', { kind: 'APIGroup', apiVersion: 'v1', ...POLICY_GROUP });
  if (policyServed && path === 'apis/policy.networking.k8s.io/v1alpha2') {
    return json('discovery', apiResourceList('policy.networking.k8s.io/v1alpha2', served));
  }

  let groupVersion: string;
  let rest: string[];
  if (seg[0] === 'api' && seg[1] === 'v1') {
    groupVersion = 'v1';
    rest = seg.slice(2);
  } else if (seg[0] === 'apis' && seg.length >= 3) {
    groupVersion = `${seg[1]}/${seg[2]}`;
    rest = seg.slice(3);
  } else {
    return new ApiError(404, 'NotFound', `the server could not find the requested resource (${pathname})`);
  }
  const resourceIn = (name: string | undefined): ResourceType | undefined => {
    const type = Object.values(RESOURCES).find((r) => r.resource === name);
    return type && type.apiVersion === groupVersion && served(type) ? type : undefined;
  };
  const subresourceOf = (s: string | undefined): 'status' | undefined | ApiError =>
    s === undefined
      ? undefined
      : s === 'status'
        ? 'status'
        : new ApiError(404, 'NotFound', `subresource "${s}" is not served here`);
  const missing = new ApiError(404, 'NotFound', `the server could not find the requested resource (${pathname})`);

  // namespaces/{ns}/{resource}[/{name}[/status]] for namespaced resources
  if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status' && rest[2] !== 'finalize') {
    const type = resourceIn(rest[2]);
    if (!type || !type.namespaced || rest.length > 5) return missing;
    const namespace = rest[1] ?? '';
    if (rest.length === 3) return { kind: 'collection', type, namespace };
    const sub = subresourceOf(rest[4]);
    if (sub instanceof ApiError) return sub;
    if (sub === 'status' && !type.hasStatus) return missing;
    return { kind: 'item', type, namespace, name: rest[3] ?? '', subresource: sub };
  }
  // {resource}[/{name}[/status]]: cluster-scoped resources, or all namespaces for a namespaced list
  const type = resourceIn(rest[0]);
  if (!type || rest.length > 3) return missing;
  if (rest.length === 1) return { kind: 'collection', type, namespace: undefined };
  if (type.namespaced) return missing;
  const sub = subresourceOf(rest[2]);
  if (sub instanceof ApiError) return sub;
  return { kind: 'item', type, namespace: '', name: rest[1] ?? '', subresource: sub };
}

const VERSION = {
  major: '1',
  minor: '33',
  gitVersion: 'v1.33.0-strand-test',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-01-01T00:00:00Z',
  goVersion: 'go1.24.0',
  compiler: 'gc',
  platform: 'linux/amd64',
};

const NETWORKING_GROUP = {
  name: 'networking.k8s.io',
  versions: [{ groupVersion: 'networking.k8s.io/v1', version: 'v1' }],
  preferredVersion: { groupVersion: 'networking.k8s.io/v1', version: 'v1' },
};

const POLICY_GROUP = {
  name: 'policy.networking.k8s.io',
  versions: [{ groupVersion: 'policy.networking.k8s.io/v1alpha2', version: 'v1alpha2' }],
  preferredVersion: { groupVersion: 'policy.networking.k8s.io/v1alpha2', version: 'v1alpha2' },
};

export async function readBody(req: IncomingMessage): Promise<JsonValue | undefined> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new ApiError(400, 'BadRequest', `the request body is not JSON: ${(err as Error).message}`);
  }
}

export function encodeContinue(token: { rv: number; after: string }): string {
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

export function decodeContinue(text: string): { rv: number; after: string } {
  try {
    const token = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown;
    if (isObject(token) && typeof token.rv === 'number' && typeof token.after === 'string')
      return { rv: token.rv, after: token.after };
  } catch {
    // fall through to the error below
  }
  throw new ApiError(400, 'BadRequest', 'invalid continue token');
}
