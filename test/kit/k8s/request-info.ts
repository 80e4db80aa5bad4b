// What kube-apiserver's authorizer is asked about a request: the attributes its RequestInfoResolver
// (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go) reads from the URL and the method, before
// any handler knows whether the resource exists. Authorization is decided on these alone, so a
// request for a resource the server does not serve is still a 403 when it is not granted.
//
//   /api/v1/nodes/n1/status           PATCH  → patch, group "", nodes, subresource status, name n1
//   /apis/networking.k8s.io/v1/networkpolicies?watch=true → watch networkpolicies (cluster scope)
//   /api/v1/namespaces/ns1/pods?fieldSelector=metadata.name%3Dp1 → list pods named p1 in ns1
//   /healthz                          GET    → a non-resource request: verb get, path /healthz
import { fieldSelectorRequires } from './selectors.ts';

export interface RequestAttributes {
  /** False for a non-resource URL (/healthz, /version, /api, /apis/<group>/<version>…). */
  resourceRequest: boolean;
  /** Resource verbs: get list watch create update patch delete deletecollection (proxy); non-resource: the method in lower case. */
  verb: string;
  path: string;
  /** "" for the core group. */
  apiGroup: string;
  apiVersion: string;
  /** "" at the cluster scope (and for requests across all namespaces). */
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
}

/** Path prefixes of API groups: "api" is groupless (core), "apis" is followed by the group. */
const API_PREFIXES = new Set(['api', 'apis']);
const GROUPLESS_PREFIXES = new Set(['api']);
/** Verbs in the path (/api/v1/watch/nodes) rather than from the method; proxy takes no subresource. */
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
/** namespaces/<ns>/<these> are the namespace's own subresources, not resources inside it. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

const METHOD_VERBS: Record<string, string> = {
  POST: 'create',
  GET: 'get',
  HEAD: 'get',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

/**
 * Whether a list request is a watch, as the list options decode `watch` (apimachinery's
 * Convert_Slice_string_To_bool): present and neither "0" nor "false" in any case.
 */
export function isWatchQuery(query: Readonly<Record<string, string>>): boolean {
  const value = query.watch;
  return value !== undefined && value !== '0' && value.toLowerCase() !== 'false';
}

/** path.IsValidPathSegmentName: a name taken from a field selector must be usable as a path segment. */
function validPathSegment(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('%');
}

/** The authorizer's attributes of a request (RequestInfoResolver.NewRequestInfo). */
export function requestAttributesOf(
  method: string,
  pathname: string,
  query: Readonly<Record<string, string>>,
): RequestAttributes {
  const info: RequestAttributes = {
    resourceRequest: false,
    verb: method.toLowerCase(),
    path: pathname,
    apiGroup: '',
    apiVersion: '',
    namespace: '',
    resource: '',
    subresource: '',
    name: '',
  };
  let parts = pathname
    .replace(/^\/+|\/+$/g, '')
    .split('/')
    .filter((s) => s !== '')
    .map(safeDecode);
  // /api/v1 and /apis/<group>/<version> are discovery documents: non-resource URLs.
  if (parts.length < 3 || !API_PREFIXES.has(parts[0] ?? '')) return info;
  const prefix = parts[0] ?? '';
  parts = parts.slice(1);
  if (!GROUPLESS_PREFIXES.has(prefix)) {
    if (parts.length < 3) return info;
    info.apiGroup = parts[0] ?? '';
    parts = parts.slice(1);
  }
  info.resourceRequest = true;
  info.apiVersion = parts[0] ?? '';
  parts = parts.slice(1);

  if (SPECIAL_VERBS.has(parts[0] ?? '') && parts.length >= 2) {
    info.verb = parts[0] ?? '';
    parts = parts.slice(1);
  } else {
    info.verb = METHOD_VERBS[method.toUpperCase()] ?? '';
  }

  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      info.namespace = parts[1] ?? '';
      if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2] ?? '')) parts = parts.slice(2);
    }
  }

  if (parts.length >= 3 && info.verb !== 'proxy') info.subresource = parts[2] ?? '';
  if (parts.length >= 2) info.name = parts[1] ?? '';
  if (parts.length >= 1) info.resource = parts[0] ?? '';

  // No name: a GET is a list or a watch, and a field selector on metadata.name names the object.
  if (info.name === '' && info.verb === 'get') {
    info.verb = isWatchQuery(query) ? 'watch' : 'list';
    const name = fieldSelectorRequires(query.fieldSelector, 'metadata.name');
    if (name !== undefined && validPathSegment(name)) info.name = name;
  }
  if (info.name === '' && info.verb === 'delete') info.verb = 'deletecollection';
  return info;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
