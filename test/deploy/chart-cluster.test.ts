import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { runHelm } from '../../scripts/lib/chart';
import { startFakeApiServer, type FakeApiServer } from './support/fake-apiserver';
import { CHART_DIR } from './support/render';

/**
 * The chart's `lookup` paths, which `helm template` never takes: `helm install` and
 * `helm upgrade` against a stand-in API server (test/deploy/support/fake-apiserver.ts). Hooks
 * are skipped (nothing runs the Job) and OpenAPI validation is left to the strict schema tests.
 */
describe('the chart against a live API (helm install/upgrade, lookup)', function () {
  this.timeout(60_000);
  let api: FakeApiServer;
  before(async () => (api = await startFakeApiServer()));
  after(async () => api?.close());
  const helm = (verb: string, ...args: string[]) =>
    runHelm([
      verb,
      'oag',
      CHART_DIR,
      '-n',
      'agents',
      '--no-hooks',
      '--disable-openapi-validation',
      '--kube-apiserver',
      api.url,
      ...args,
    ]);
  const SECRET = '/api/v1/namespaces/agents/secrets/oag-ollama-agent-gateway-api-keys';
  const DEPLOYMENT = '/apis/apps/v1/namespaces/agents/deployments/oag-ollama-agent-gateway';
  const REDIS_SECRET = '/api/v1/namespaces/agents/secrets/oag-ollama-agent-gateway-redis';
  const REDIS = '/apis/apps/v1/namespaces/agents/statefulsets/oag-ollama-agent-gateway-redis';

  it('install with no keys given: generates one admin key, and the pods’ checksum is of that key', async () => {
    const r = await helm('install');
    assert.equal(r.status, 0, r.stderr);
    const secret = api.created.get(SECRET) as { data: Record<string, string> };
    const keys = Buffer.from(secret.data['api-keys'] ?? '', 'base64').toString();
    assert.match(keys, /^[A-Za-z0-9]{40}:admin\n$/);
    const deployment = api.created.get(DEPLOYMENT) as {
      spec: { template: { metadata: { annotations: Record<string, string> } } };
    };
    assert.equal(
      deployment.spec.template.metadata.annotations['checksum/auth'],
      createHash('sha256').update(keys).digest('hex'),
    );
  });

  it('install with two replicas: a generated Valkey password, the same in the gateway’s checksum and Valkey’s', async () => {
    const secret = api.created.get(REDIS_SECRET) as { data: Record<string, string> } | undefined;
    assert.ok(secret, 'the Valkey password Secret is created');
    const password = Buffer.from(secret.data['redis-password'] ?? '', 'base64').toString();
    assert.match(password, /^[A-Za-z0-9]{40}$/);
    const sum = createHash('sha256').update(password).digest('hex');
    const annotations = (path: string) =>
      (
        api.created.get(path) as {
          spec: { template: { metadata: { annotations: Record<string, string> } } };
        }
      ).spec.template.metadata.annotations;
    assert.equal(annotations(DEPLOYMENT)['checksum/redis'], sum);
    assert.equal(annotations(REDIS)['checksum/auth'], sum);
  });

  it('upgrade: reads the live Secrets, so neither the key, the Valkey password nor the pods change', async () => {
    const r = await helm('upgrade');
    assert.equal(r.status, 0, r.stderr);
    const touched = api.patches.map((p) => p.path);
    assert.ok(!touched.includes(SECRET), 'the key Secret is not patched');
    assert.ok(!touched.includes(REDIS_SECRET), 'the Valkey password Secret is not patched');
    assert.ok(!touched.includes(DEPLOYMENT), 'the Deployment is not patched');
    assert.ok(!touched.includes(REDIS), 'Valkey is not patched');
  });

  it('upgrade to Parallel pod management: refused, since the live StatefulSet cannot change it', async () => {
    const r = await helm('upgrade', '--set', 'ollama.podManagementPolicy=Parallel');
    assert.notEqual(r.status, 0);
    assert.match(
      r.stderr,
      /ollama\.podManagementPolicy: the live StatefulSet has OrderedReady and it cannot change/,
    );
    assert.match(r.stderr, /--cascade=orphan/);
  });

  it('upgrade that would give Valkey a claim: refused, since its claim template cannot change', async () => {
    const r = await helm('upgrade', '--set', 'redis.persistence.enabled=true');
    assert.notEqual(r.status, 0);
    assert.match(
      r.stderr,
      /redis\.persistence: the live Valkey StatefulSet has no claim, and its claim template cannot change/,
    );
    assert.match(r.stderr, /kubectl delete statefulset oag-ollama-agent-gateway-redis/);
  });

  it('upgrade with another persistence.size: refused, with the way out', async () => {
    const r = await helm('upgrade', '--set', 'ollama.persistence.size=80Gi');
    assert.notEqual(r.status, 0);
    assert.match(
      r.stderr,
      /ollama\.persistence\.size: the live StatefulSet's claim template asks 30Gi and cannot change/,
    );
    assert.match(r.stderr, /kubectl patch pvc models-oag-ollama-agent-gateway-ollama-0/);
    assert.match(r.stderr, /--cascade=orphan/);
  });
});
