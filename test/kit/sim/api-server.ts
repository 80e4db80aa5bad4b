// The simulated cluster's Kubernetes API server: test/kit/k8s-api-server.ts in a process of its
// own, started by the simulator inside the cluster's "switch" network namespace.
//
//   ip netns exec <switch> node test/kit/sim/api-server.ts --listen 198.18.1.1:6443 [--rbac deploy/strand.yaml]
//
// Who may do what. With --rbac (the simulator always passes it) the server authorizes every HTTP
// request as kube-apiserver's RBAC authorizer would, from the manifest's ClusterRoles and bindings:
// the agents' kubeconfig carries the token of the manifest's DaemonSet ServiceAccount, so a
// permission an agent needs and the manifest lacks is a 403 here as on a cluster. The simulator's
// own requests (Nodes, Pods, policies) come over the control channel below, as the cluster admin.
//
// Where it listens. TestApiServer always listens on 127.0.0.1, and a node namespace cannot reach
// another namespace's loopback. So the server listens on the switch namespace's 127.0.0.1:<port>, and
// this process also listens on the switch's management address (198.18.1.1, on the management
// bridge every node namespace has a veth to) and forwards each connection there. Agents' kubeconfigs
// name http://198.18.1.1:<port>. The management segment is apart from the underlay on purpose: a test
// that changes a node's underlay address must not cut that node's agent off from the API server.
//
// Control channel: JSON lines on stdin, one answer line per request on stdout:
//   → {"id":1,"op":"create","resource":"nodes","body":{…}}
//   ← {"id":1,"ok":true,"result":{…}}      or  {"id":1,"ok":false,"error":"…","code":404}
// ops: create, upsert, patch (type, subresource, namespace), delete, get, list, stop, start,
// dropWatches, leastPrivilege (what the agents' identity was granted, used and refused), installCrd,
// uninstallCrd. The first line on stdout is {"ready":true,"url":…,"agentToken":…} once both
// listeners are up. The ClusterNetworkPolicy CRD is installed from the start, as the kind recipe
// applies it (README); a test removes it with uninstallCrd.
// stdin closing (the simulator exited, even by SIGKILL) stops the server and this process.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { ApiError, TestApiServer, type ResourceName } from '../k8s-api-server.ts';

interface Request {
  id: number;
  op: string;
  resource?: ResourceName;
  name?: string;
  namespace?: string;
  body?: unknown;
  type?: 'strategic' | 'merge' | 'json';
  subresource?: 'status';
}

const USAGE = 'usage: api-server.ts --listen HOST:PORT [--rbac MANIFEST]';

function parseArgv(argv: string[]): { host: string; port: number; rbac: string | undefined } {
  const flag = (name: string) => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const value = argv[i + 1];
    if (value === undefined) throw new Error(USAGE);
    return value;
  };
  const m = flag('--listen')?.match(/^(.+):(\d+)$/);
  if (!m) throw new Error(USAGE);
  return { host: m[1] as string, port: Number(m[2]), rbac: flag('--rbac') };
}

/** Forwards host:port to 127.0.0.1:port (the API server) in this namespace. */
function startForwarder(host: string, port: number): Promise<Server> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

async function handle(api: TestApiServer, req: Request): Promise<unknown> {
  const resource = req.resource as ResourceName;
  switch (req.op) {
    case 'create':
      return api.create(resource, req.body as object);
    case 'upsert':
      return api.upsert(resource, req.body as object);
    case 'patch':
      return api.patch(resource, req.name as string, req.body, {
        ...(req.namespace !== undefined ? { namespace: req.namespace } : {}),
        ...(req.type !== undefined ? { type: req.type } : {}),
        ...(req.subresource !== undefined ? { subresource: req.subresource } : {}),
      });
    case 'delete':
      return api.delete(resource, req.name as string, req.namespace) ?? null;
    case 'get':
      return api.get(resource, req.name as string, req.namespace) ?? null;
    case 'list':
      return api.list(resource, req.namespace);
    case 'stop':
      await api.stop();
      return null;
    case 'start':
      await api.start();
      return null;
    case 'dropWatches':
      return api.dropWatches({ abrupt: true });
    case 'leastPrivilege':
      return api.leastPrivilege();
    case 'installCrd':
      api.installCrd(resource);
      return null;
    case 'uninstallCrd':
      api.uninstallCrd(resource);
      return null;
    default:
      throw new Error(`unknown op ${JSON.stringify(req.op)}`);
  }
}

async function main(): Promise<void> {
  const { host, port, rbac } = parseArgv(process.argv.slice(2));
  // Bookmarks about once a minute, as kube-apiserver sends them: the test server's default (1 s) woke
  // every agent four times a second, which cost the simulated nodes CPU that pod traffic then lacked.
  const api = await TestApiServer.start({
    port,
    bookmarkIntervalMs: 60_000,
    ...(rbac !== undefined ? { rbac: { manifest: rbac } } : {}),
  });
  api.installCrd('clusternetworkpolicies');
  const forwarder = await startForwarder(host, port);
  const reply = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
  reply({ ready: true, url: `http://${host}:${port}`, agentToken: api.agentToken ?? null });

  const lines = createInterface({ input: process.stdin });
  lines.on('line', (text) => {
    if (text.trim() === '') return;
    let req: Request;
    try {
      req = JSON.parse(text) as Request;
    } catch {
      reply({ id: -1, ok: false, error: `not JSON: ${text.slice(0, 80)}` });
      return;
    }
    handle(api, req).then(
      (result) => reply({ id: req.id, ok: true, result }),
      (err: unknown) =>
        reply({
          id: req.id,
          ok: false,
          error: err instanceof Error ? err.message : String(err),
          code: err instanceof ApiError ? err.code : 0,
        }),
    );
  });
  lines.on('close', () => {
    forwarder.close();
    api.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`api-server: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
