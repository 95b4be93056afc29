import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startOllamaSimulator, type OllamaSimulator } from '../support/ollama-simulator';
import { podSpecOf, type Container, type Probe } from './support/policy';
import { ciValuesFiles, renderChart, ROOT, type K8sObject } from './support/render';
import { startServerProcess, type ServerProcess } from './support/server-process';

const configSchema = JSON.parse(
  readFileSync(path.join(ROOT, 'schemas', 'config.schema.json'), 'utf8'),
) as {
  properties: Record<string, { default?: unknown }>;
};

function gatewayOf(objs: K8sObject[]): {
  deployment: K8sObject;
  container: Container;
  env: Record<string, string>;
} {
  const deployment = objs.find(
    (o) =>
      o.kind === 'Deployment' && o.metadata.labels?.['app.kubernetes.io/component'] === 'gateway',
  );
  assert.ok(deployment);
  const container = podSpecOf(deployment).containers.find((c) => c.name === 'gateway');
  assert.ok(container);
  const cmName = container.envFrom?.[0]?.configMapRef?.name;
  const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === cmName);
  assert.ok(cm, `ConfigMap ${cmName}`);
  return { deployment, container, env: cm.data as Record<string, string> };
}

const msOf = (env: Record<string, string>, key: string) =>
  Number(env[key] ?? configSchema.properties[key]?.default);

describe('the chart agrees with the service it deploys', function () {
  this.timeout(30_000);

  for (const file of ciValuesFiles()) {
    describe(`with ci/${path.basename(file)}`, () => {
      let gateway: ReturnType<typeof gatewayOf>;
      before(async () => (gateway = gatewayOf(await renderChart(['-f', file]))));

      it('sets only environment variables declared in schemas/config.schema.json', () => {
        const names = [
          ...Object.keys(gateway.env),
          ...(gateway.container.env ?? []).map((e) => e.name),
        ];
        const unknown = names.filter((n) => !(n in configSchema.properties));
        assert.deepEqual(unknown, []);
      });

      it('gives SIGTERM longer than SHUTDOWN_DELAY_MS + SHUTDOWN_TIMEOUT_MS', () => {
        const grace = podSpecOf(gateway.deployment).terminationGracePeriodSeconds ?? 30;
        const drain =
          msOf(gateway.env, 'SHUTDOWN_DELAY_MS') + msOf(gateway.env, 'SHUTDOWN_TIMEOUT_MS');
        assert.ok(grace * 1000 > drain, `grace ${grace} s vs drain ${drain} ms`);
      });

      it('probes the port the service listens on (PORT)', () => {
        const port = gateway.container.ports?.find((p) => p.name === 'http');
        assert.equal(String(port?.containerPort), gateway.env.PORT);
        for (const probe of [
          gateway.container.startupProbe,
          gateway.container.readinessProbe,
          gateway.container.livenessProbe,
        ]) {
          assert.equal(probe?.httpGet?.port, 'http');
        }
      });
    });
  }

  describe('the built service, started with the chart’s environment against the simulator', () => {
    let sim: OllamaSimulator;
    let server: ServerProcess;
    let dir = '';
    let paths: string[] = [];

    before(async () => {
      // The defaults' environment (the agents file format belongs to the agents work, so the
      // full values' AGENTS_FILE is not loaded here); the scrape path from the full values.
      const { container, env } = gatewayOf(await renderChart());
      const full = await renderChart([
        '-f',
        path.join(ROOT, 'helm/ollama-agent-gateway/ci/full-values.yaml'),
      ]);
      const probes = [
        container.startupProbe,
        container.readinessProbe,
        container.livenessProbe,
      ] as Probe[];
      const monitor = full.find((o) => o.kind === 'ServiceMonitor')?.spec as {
        endpoints: { path: string }[];
      };
      paths = [
        ...probes.map((p) => p.httpGet?.path ?? ''),
        ...monitor.endpoints.map((e) => e.path),
      ];
      assert.equal(
        new Set(paths.slice(0, 3)).size,
        3,
        'startup, readiness and liveness use distinct paths',
      );

      sim = await startOllamaSimulator();
      dir = mkdtempSync(path.join(os.tmpdir(), 'oag-chart-env-'));
      writeFileSync(path.join(dir, 'api-keys'), 'chart-consistency-key-0001:admin\n');
      server = await startServerProcess(path.join(ROOT, 'dist', 'src', 'server.js'), {
        ...env,
        OLLAMA_HOST: sim.url,
        API_KEYS_FILE: path.join(dir, 'api-keys'),
      });
    });
    after(async () => {
      await server?.stop();
      await sim?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('serves every probe and scrape path the chart uses', async () => {
      for (const p of paths) {
        const res = await fetch(`${server.url}${p}`);
        await res.arrayBuffer();
        assert.ok(
          [200, 503].includes(res.status),
          `${p} answered ${res.status}\n${server.output()}`,
        );
      }
    });
  });
});
