import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { runHelm } from '../../scripts/lib/chart';
import { createK8sValidator, type K8sValidator } from './support/k8s-schema';
import { byKind, container, one } from './support/objects';
import { podSpecOf, WORKLOAD_KINDS, workloadProblems, type Container } from './support/policy';
import {
  CHART_DIR,
  ciValuesFiles,
  DEFAULTS_FILE,
  renderChart,
  ROOT,
  type K8sObject,
} from './support/render';

const configSchema = JSON.parse(
  readFileSync(path.join(ROOT, 'schemas', 'config.schema.json'), 'utf8'),
) as { properties: Record<string, { writeOnly?: boolean }> };
const SECRET_VARS = Object.keys(configSchema.properties).filter(
  (k) => configSchema.properties[k]?.writeOnly,
);

/** The gateway's environment: the ConfigMap its container takes envFrom. */
const gatewayEnv = (objs: K8sObject[]): Record<string, string> => {
  const ref = container(one(objs, 'Deployment', 'gateway'), 'gateway').envFrom?.[0]?.configMapRef
    ?.name;
  const cm = byKind(objs, 'ConfigMap').find((c) => c.metadata.name === ref);
  assert.ok(cm, `the gateway's ConfigMap ${ref} is rendered`);
  return cm.data as Record<string, string>;
};

describe('Helm chart (helm/ollama-agent-gateway)', function () {
  this.timeout(60_000);
  let validator: K8sValidator;
  before(async () => {
    validator = await createK8sValidator();
  });

  it('passes helm lint --strict with every values file in ci/', async () => {
    for (const file of ciValuesFiles()) {
      const r = await runHelm(['lint', '--strict', CHART_DIR, '-f', file]);
      assert.equal(r.status, 0, `${path.basename(file)}:\n${r.stdout}${r.stderr}`);
    }
  });

  for (const file of ciValuesFiles()) {
    describe(`rendered with ci/${path.basename(file)}`, () => {
      let objs: K8sObject[] = [];
      before(async () => {
        objs = await renderChart(['-f', file]);
      });

      it('renders only objects valid against the strict Kubernetes schema of their kind', () => {
        assert.ok(objs.length > 3);
        const problems = objs.flatMap((o) => validator.validate(o));
        assert.deepEqual(problems, []);
      });

      it('meets the workload policy (resources, probes, non-root, pinned images, no token)', () => {
        const workloads = objs.filter((o) => WORKLOAD_KINDS.includes(o.kind));
        assert.ok(workloads.length >= 2);
        assert.deepEqual(workloads.flatMap(workloadProblems), []);
      });

      it('keeps every secret out of ConfigMaps', () => {
        const secretText = byKind(objs, 'Secret').flatMap((s) =>
          Object.values((s.data ?? {}) as Record<string, string>).map((v) =>
            Buffer.from(v, 'base64').toString('utf8').trim(),
          ),
        );
        for (const cm of byKind(objs, 'ConfigMap')) {
          for (const [key, value] of Object.entries((cm.data ?? {}) as Record<string, string>)) {
            assert.ok(!SECRET_VARS.includes(key), `${cm.metadata.name} holds secret ${key}`);
            for (const s of secretText)
              assert.ok(!value.includes(s), `${cm.metadata.name}.${key} holds a Secret's content`);
          }
        }
      });

      it('rolls the gateway when its config changes and never goes below capacity', () => {
        const d = one(objs, 'Deployment', 'gateway');
        const template = (
          d.spec as { template: { metadata: { annotations: Record<string, string> } } }
        ).template;
        assert.match(template.metadata.annotations['checksum/config'] ?? '', /^[a-f0-9]{64}$/);
        const strategy = (
          d.spec as { strategy: { type: string; rollingUpdate: { maxUnavailable: number } } }
        ).strategy;
        assert.equal(strategy.type, 'RollingUpdate');
        assert.equal(strategy.rollingUpdate.maxUnavailable, 0);
        const volumes = podSpecOf(d).volumes ?? [];
        assert.ok(
          volumes.some((v) => v.name === 'tmp'),
          'a /tmp emptyDir beside the read-only root',
        );
      });
    });
  }

  describe('the values matrix', () => {
    const render = (name: string) => renderChart(['-f', path.join(CHART_DIR, 'ci', name)]);

    it('defaults: an Ollama StatefulSet with a volume, the key Secret mounted as API_KEYS_FILE', async () => {
      const objs = await render('defaults-values.yaml');
      const sts = one(objs, 'StatefulSet', 'ollama');
      const spec = sts.spec as { volumeClaimTemplates: { metadata: { name: string } }[] };
      assert.equal(spec.volumeClaimTemplates[0]?.metadata.name, 'models');
      const init = podSpecOf(sts).initContainers?.[0];
      assert.equal(init?.name, 'pull-models');
      // The gateway's, Ollama's and (two replicas share it) the bundled Valkey's.
      assert.deepEqual(
        byKind(objs, 'NetworkPolicy').map(
          (p) => p.metadata.labels?.['app.kubernetes.io/component'],
        ),
        ['gateway', 'ollama', 'redis'],
      );
      const secret = one(objs, 'Secret');
      const keys = Buffer.from(
        (secret.data as Record<string, string>)['api-keys'] ?? '',
        'base64',
      ).toString();
      assert.equal(keys, 'ci-admin-key-0123456789abcdef:admin\n');
      assert.equal(gatewayEnv(objs).API_KEYS_FILE, '/etc/ollama-agent-gateway/keys/api-keys');
      const env = container(sts, 'ollama').env?.map((e) => e.name);
      assert.deepEqual(env, [
        'HOME',
        'OLLAMA_MODELS',
        'OLLAMA_HOST',
        'OLLAMA_KEEP_ALIVE',
        'OLLAMA_NUM_PARALLEL',
        'OLLAMA_MAX_QUEUE',
        'NVIDIA_VISIBLE_DEVICES',
      ]);
    });

    it('GPU on: a GPU limit, the GPU taint tolerated, the runtime class set', async () => {
      const objs = await render('gpu-values.yaml');
      const sts = one(objs, 'StatefulSet', 'ollama');
      assert.equal(container(sts, 'ollama').resources?.limits?.['nvidia.com/gpu'], 1);
      const pod = podSpecOf(sts);
      assert.ok(pod.tolerations?.some((t) => t.key === 'nvidia.com/gpu'));
      assert.equal(pod.runtimeClassName, 'nvidia');
    });

    it('external Ollama: no Ollama objects, the gateway points at the given host', async () => {
      const objs = await render('external-ollama-values.yaml');
      assert.equal(byKind(objs, 'StatefulSet').length, 0);
      assert.equal(byKind(objs, 'NetworkPolicy').length, 1);
      assert.equal(gatewayEnv(objs).OLLAMA_HOST, 'http://ollama.ml.svc.cluster.local:11434');
    });

    it('everything on: HPA, PDB, Ingress, ServiceMonitor, PrometheusRule with the alert rules, dashboard', async () => {
      const objs = await render('full-values.yaml');
      for (const kind of [
        'HorizontalPodAutoscaler',
        'PodDisruptionBudget',
        'Ingress',
        'ServiceMonitor',
        'PrometheusRule',
      ]) {
        one(objs, kind);
      }
      // Every rule file the promtool test loads, in its order.
      const ruleFiles = (
        parse(
          readFileSync(path.join(ROOT, 'monitoring', 'prometheus-rules.test.yaml'), 'utf8'),
        ) as { rule_files: string[] }
      ).rule_files;
      const groups = ruleFiles.flatMap(
        (f) =>
          (parse(readFileSync(path.join(ROOT, 'monitoring', f), 'utf8')) as { groups: unknown[] })
            .groups,
      );
      assert.deepEqual((one(objs, 'PrometheusRule').spec as { groups: unknown }).groups, groups);
      const dashboard = byKind(objs, 'ConfigMap').find((c) =>
        c.metadata.name.endsWith('-dashboard'),
      );
      assert.ok(dashboard);
      assert.equal(
        (dashboard.data as Record<string, string>)['ollama-agent-gateway.json'],
        readFileSync(path.join(ROOT, 'monitoring', 'grafana-dashboard.json'), 'utf8'),
      );
      assert.equal(
        one(objs, 'Deployment').spec &&
          (one(objs, 'Deployment').spec as { replicas?: number }).replicas,
        undefined,
      );
    });

    it('renders no ServiceMonitor or PrometheusRule when the cluster lacks the CRDs', async () => {
      const r = await runHelm([
        'template',
        'oag',
        CHART_DIR,
        '-f',
        path.join(CHART_DIR, 'ci', 'full-values.yaml'),
      ]);
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /kind: (ServiceMonitor|PrometheusRule)/);
    });

    it('auth from an existing Secret: no Secret rendered, the named key mounted', async () => {
      const objs = await render('existing-secret-values.yaml');
      assert.equal(byKind(objs, 'Secret').length, 0);
      const volume = podSpecOf(one(objs, 'Deployment')).volumes?.find((v) => v.name === 'api-keys');
      assert.equal(volume?.secret?.secretName, 'gateway-api-keys');
      assert.equal(volume?.secret?.items?.[0]?.key, 'keys.txt');
    });
  });

  describe('strict schema check', () => {
    it('rejects a misspelt field (readinesProbe) that the API server would silently drop', async () => {
      const objs = await renderChart(['-f', DEFAULTS_FILE]);
      const deployment = structuredClone(one(objs, 'Deployment'));
      assert.deepEqual(validator.validate(deployment), []);
      const c = podSpecOf(deployment).containers[0] as Container & Record<string, unknown>;
      c.readinesProbe = c.readinessProbe;
      delete c.readinessProbe;
      const problems = validator.validate(deployment);
      assert.ok(
        problems.some((p) => p.includes("'readinesProbe'")),
        problems.join('\n'),
      );
    });

    it('rejects a missing required field and an unknown field inside a custom resource', async () => {
      const objs = await renderChart(['-f', path.join(CHART_DIR, 'ci', 'full-values.yaml')]);
      const deployment = structuredClone(one(objs, 'Deployment'));
      delete (podSpecOf(deployment).containers[0] as Partial<Container>).name;
      assert.ok(
        validator
          .validate(deployment)
          .some((p) => /containers\/0: must have required property name/.test(p)),
      );
      const monitor = structuredClone(one(objs, 'ServiceMonitor'));
      const endpoint = (monitor.spec as { endpoints: Record<string, unknown>[] }).endpoints[0];
      (endpoint as Record<string, unknown>).bearerTokenSecrett = {};
      assert.deepEqual(validator.validate(monitor), [
        "ServiceMonitor .spec.endpoints[0]: unknown field 'bearerTokenSecrett'",
      ]);
    });

    it('rejects a wrong type and an unknown kind', () => {
      const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { A: 1 } };
      assert.notDeepEqual(validator.validate(cm), []);
      assert.deepEqual(
        validator.validate({ apiVersion: 'v1', kind: 'Nope', metadata: { name: 'x' } }),
        ['no schema for v1 Nope'],
      );
    });
  });
});
