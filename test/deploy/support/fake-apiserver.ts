import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Just enough of a Kubernetes API server for `helm install` to discover the APIs, look up
 * objects (the chart's `lookup` calls) and create the release: objects are kept in memory by
 * path, creates are stored, everything else missing is a 404 Status. It stands in for the
 * live cluster that `helm template` never reads, so the chart's lookup paths can be tested.
 */
export interface FakeApiServer {
  url: string;
  /** Puts an object where a GET of `path` finds it (and list calls of its collection). */
  put(path: string, obj: object): void;
  /** Objects created with POST, by path. */
  created: Map<string, Record<string, unknown>>;
  /** PATCH bodies, in order. */
  patches: Array<{ path: string; patch: string }>;
  close(): Promise<void>;
}

const GROUPS: Record<string, Array<[string, string, boolean]>> = {
  // group/version → [plural, Kind, namespaced]
  v1: [
    ['secrets', 'Secret', true],
    ['configmaps', 'ConfigMap', true],
    ['services', 'Service', true],
    ['serviceaccounts', 'ServiceAccount', true],
    ['pods', 'Pod', true],
    ['persistentvolumeclaims', 'PersistentVolumeClaim', true],
    ['namespaces', 'Namespace', false],
  ],
  'apps/v1': [
    ['deployments', 'Deployment', true],
    ['statefulsets', 'StatefulSet', true],
  ],
  'batch/v1': [['jobs', 'Job', true]],
  'policy/v1': [['poddisruptionbudgets', 'PodDisruptionBudget', true]],
  'networking.k8s.io/v1': [
    ['ingresses', 'Ingress', true],
    ['networkpolicies', 'NetworkPolicy', true],
  ],
  'autoscaling/v2': [['horizontalpodautoscalers', 'HorizontalPodAutoscaler', true]],
};

const notFound = (path: string) => ({
  kind: 'Status',
  apiVersion: 'v1',
  status: 'Failure',
  message: `${path} not found`,
  reason: 'NotFound',
  code: 404,
});

export async function startFakeApiServer(): Promise<FakeApiServer> {
  const objects = new Map<string, object>();
  const created = new Map<string, Record<string, unknown>>();
  const patches: Array<{ path: string; patch: string }> = [];
  const discovery = (path: string): object | undefined => {
    if (path === '/version') return { major: '1', minor: '34', gitVersion: 'v1.34.0' };
    if (path === '/api') return { kind: 'APIVersions', versions: ['v1'] };
    if (path === '/apis') {
      const groups = Object.keys(GROUPS)
        .filter((gv) => gv.includes('/'))
        .map((gv) => {
          const [group, version] = gv.split('/') as [string, string];
          const v = { groupVersion: gv, version };
          return { name: group, versions: [v], preferredVersion: v };
        });
      return { kind: 'APIGroupList', apiVersion: 'v1', groups };
    }
    const gv = path === '/api/v1' ? 'v1' : path.replace(/^\/apis\//, '');
    const resources = GROUPS[gv];
    if (!resources || (gv !== 'v1' && !path.startsWith('/apis/'))) return undefined;
    return {
      kind: 'APIResourceList',
      groupVersion: gv,
      resources: resources.map(([name, kind, namespaced]) => ({
        name,
        singularName: kind.toLowerCase(),
        namespaced,
        kind,
        verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
      })),
    };
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (process.env.FAKE_API_LOG) console.error(req.method, req.url);
      const path = url.pathname;
      const send = (status: number, obj: object) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      if (req.method === 'GET') {
        const d = discovery(path);
        if (d) return send(200, d);
        const found = objects.get(path);
        if (found) return send(200, found);
        const items = [...objects.entries()]
          .filter(([p]) => p.startsWith(`${path}/`) && !p.slice(path.length + 1).includes('/'))
          .map(([, o]) => o);
        const selector = (url.searchParams.get('labelSelector') ?? '')
          .split(',')
          .filter(Boolean)
          .map((kv) => kv.split('=') as [string, string]);
        // A collection path (its last segment a resource) lists what is stored under it.
        const plural = path.split('/').pop() ?? '';
        const kind = Object.values(GROUPS)
          .flat()
          .find(([name]) => name === plural)?.[1];
        if (kind && path.includes('/namespaces/')) {
          const kept = items.filter((o) => {
            const labels = (o as { metadata?: { labels?: Record<string, string> } }).metadata
              ?.labels;
            return selector.every(([k, v]) => labels?.[k] === v);
          });
          return send(200, { kind: `${kind}List`, apiVersion: 'v1', metadata: {}, items: kept });
        }
        return send(404, notFound(path));
      }
      if (req.method === 'POST') {
        const obj = JSON.parse(body || '{}') as Record<string, unknown>;
        const name = (obj.metadata as { name?: string } | undefined)?.name ?? '';
        created.set(`${path}/${name}`, obj);
        objects.set(`${path}/${name}`, obj);
        return send(201, obj);
      }
      const stored = objects.get(path);
      if (!stored) return send(404, notFound(path));
      if (req.method === 'PATCH') {
        patches.push({ path, patch: body });
        return send(200, stored);
      }
      if (req.method === 'PUT') objects.set(path, JSON.parse(body) as object);
      if (req.method === 'DELETE') objects.delete(path);
      return send(200, objects.get(path) ?? stored);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    put: (path, obj) => objects.set(path, obj),
    created,
    patches,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
