import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { freePort } from '../support/listen';
import { startOllamaSimulator, type OllamaSimulator } from '../support/ollama-simulator';
import { DEFAULT_MODELS } from '../support/ollama-simulator/catalog';
import { pollUntil } from '../support/poll';
import { startRedis, stopRedis } from '../support/redis-server';
import { podSpecOf, type Container, type Probe } from './support/policy';
import { ciValuesFiles, DEFAULTS_FILE, renderChart, ROOT, type K8sObject } from './support/render';
import { startServerProcess } from './support/server-process';
import { AFTER_DRAIN_MS } from './support/shutdown';

const configSchema = JSON.parse(
  readFileSync(path.join(ROOT, 'schemas', 'config.schema.json'), 'utf8'),
) as {
  properties: Record<string, { default?: unknown }>;
};

type SecretRef = { name: string; key: string };
type GatewayContainer = Container & {
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: SecretRef } }[];
  volumeMounts?: { name: string; mountPath: string }[];
};
type Volume = {
  name: string;
  configMap?: { name: string; items?: { key: string; path: string }[] };
  secret?: { secretName: string; items?: { key: string; path: string }[] };
};

interface Gateway {
  deployment: K8sObject;
  container: GatewayContainer;
  /** The environment from the ConfigMap the container loads with envFrom. */
  env: Record<string, string>;
}

function gatewayOf(objs: K8sObject[]): Gateway {
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

/**
 * What the container sees at `file`: the mount that covers it, the volume behind the mount,
 * and the ConfigMap or Secret key behind the volume. `content` is undefined for a Secret the
 * chart does not render (auth.existingSecret). Fails when no mount or object provides the file,
 * so an env path and a mount path that drift apart fail here, not in the cluster.
 */
function mountedFile(
  objs: K8sObject[],
  gw: Gateway,
  file: string,
): { source: string; content: string | undefined } {
  const mount = gw.container.volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `no volumeMount provides ${file}`);
  const rel = file.slice(mount.mountPath.length + 1);
  const volumes = (podSpecOf(gw.deployment) as unknown as { volumes?: Volume[] }).volumes;
  const volume = volumes?.find((v) => v.name === mount.name);
  assert.ok(volume, `volume ${mount.name} is not declared`);
  const from = volume.configMap ?? volume.secret;
  assert.ok(from, `volume ${mount.name} is neither a ConfigMap nor a Secret`);
  const items = from.items;
  const key = items ? items.find((i) => i.path === rel)?.key : rel;
  assert.ok(key, `volume ${mount.name} has no item for ${rel}`);
  if (volume.configMap) {
    const cm = objs.find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name === volume.configMap?.name,
    );
    const content = (cm?.data as Record<string, string> | undefined)?.[key];
    assert.ok(content !== undefined, `ConfigMap ${volume.configMap.name} has no key ${key}`);
    return { source: `ConfigMap ${volume.configMap.name}/${key}`, content };
  }
  const name = volume.secret?.secretName ?? '';
  const secret = objs.find((o) => o.kind === 'Secret' && o.metadata.name === name);
  const data = (secret?.data as Record<string, string> | undefined)?.[key];
  if (secret) assert.ok(data !== undefined, `Secret ${name} has no key ${key}`);
  return {
    source: `Secret ${name}/${key}`,
    content: data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8'),
  };
}

/** How soon startup and readiness must pass once the service listens, Ollama being up. */
const PROBES_PASS_WITHIN_MS = 10_000;

const msOf = (env: Record<string, string>, key: string) =>
  Number(env[key] ?? configSchema.properties[key]?.default);

const probesOf = (c: Container): Array<[string, Probe | undefined]> => [
  ['startup', c.startupProbe],
  ['readiness', c.readinessProbe],
  ['liveness', c.livenessProbe],
];

describe('the chart agrees with the service it deploys', function () {
  this.timeout(30_000);
  let sim: OllamaSimulator;
  // An Ollama holding every model a values file makes the gateway's OLLAMA_MODEL.
  before(async () => {
    const models = [...DEFAULT_MODELS];
    for (const file of ciValuesFiles()) {
      const values = parse(readFileSync(file, 'utf8')) as {
        gateway?: { config?: { OLLAMA_MODEL?: string } };
      };
      const name = values.gateway?.config?.OLLAMA_MODEL;
      if (name && !models.some((m) => m.name === name))
        models.push({ name, capabilities: ['completion', 'tools'] });
    }
    sim = await startOllamaSimulator({ models });
  });
  after(async () => sim?.close());

  for (const file of ciValuesFiles()) {
    describe(`with ci/${path.basename(file)}`, () => {
      let objs: K8sObject[];
      let gateway: Gateway;
      before(async () => {
        objs = await renderChart(['-f', file]);
        gateway = gatewayOf(objs);
      });

      it('sets only environment variables declared in schemas/config.schema.json (ConfigMap and Deployment env)', () => {
        const fromConfigMap = Object.keys(gateway.env);
        // gateway.extraEnv is for variables the service does not read (NODE_EXTRA_CA_CERTS).
        const values = parse(readFileSync(file, 'utf8')) as {
          gateway?: { extraEnv?: { name: string }[] };
        };
        const extra = (values.gateway?.extraEnv ?? []).map((e) => e.name);
        const fromDeployment = (gateway.container.env ?? [])
          .map((e) => e.name)
          .filter((n) => !extra.includes(n));
        assert.ok(fromConfigMap.length > 0);
        const unknown = [...fromConfigMap, ...fromDeployment].filter(
          (n) => !(n in configSchema.properties),
        );
        assert.deepEqual(unknown, []);
      });

      it('gives SIGTERM longer than SHUTDOWN_DELAY_MS + SHUTDOWN_TIMEOUT_MS + the socket grace + stopServices', () => {
        const grace = podSpecOf(gateway.deployment).terminationGracePeriodSeconds;
        assert.equal(typeof grace, 'number', 'terminationGracePeriodSeconds is set');
        // The values the pod's environment carries (or the service's defaults), not the
        // chart's view of them: the ConfigMap is what the process reads.
        const drain =
          msOf(gateway.env, 'SHUTDOWN_DELAY_MS') +
          msOf(gateway.env, 'SHUTDOWN_TIMEOUT_MS') +
          AFTER_DRAIN_MS;
        assert.ok((grace as number) * 1000 > drain, `grace ${grace} s vs drain ${drain} ms`);
      });

      it('probes the port the service listens on (PORT)', () => {
        const port = gateway.container.ports?.find((p) => p.name === 'http');
        assert.equal(String(port?.containerPort), gateway.env.PORT);
        for (const [, probe] of probesOf(gateway.container)) {
          assert.equal(probe?.httpGet?.port, 'http');
        }
      });

      it('the built service, started with this environment and its mounted files against the simulator, serves every probe and scrape path', async () => {
        const { container, env } = gateway;
        const dir = mkdtempSync(path.join(os.tmpdir(), 'oag-chart-env-'));
        // Secret-held variables get a test value per Secret key, so a ServiceMonitor reading
        // the same key sends the token the service expects.
        const secretValues = new Map<string, string>();
        const secretValue = (ref: SecretRef) => {
          const id = `${ref.name}/${ref.key}`;
          if (!secretValues.has(id))
            secretValues.set(id, `test-secret-${secretValues.size}-abcdefghijklmnop`);
          return secretValues.get(id) as string;
        };
        // The simulator stands in for Ollama however the chart names it (one host, a list, or
        // the headless Service the gateway discovers).
        const processEnv: Record<string, string> = { ...env, OLLAMA_HOST: sim.url };
        delete processEnv.OLLAMA_HOSTS;
        delete processEnv.OLLAMA_DISCOVERY;
        for (const e of container.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          processEnv[e.name] = ref ? secretValue(ref) : (e.value ?? '');
        }
        // Files the chart mounts: written where the test can read them, with the rendered
        // content (an existing Secret's content is made up).
        let apiKey = 'chart-consistency-key-0001';
        for (const name of ['API_KEYS_FILE', 'AGENTS_FILE', 'REDIS_PASSWORD_FILE']) {
          if (!env[name]) continue;
          const mounted = mountedFile(objs, gateway, env[name]);
          let content = mounted.content;
          if (name === 'API_KEYS_FILE') {
            const first = content?.split('\n').find((l) => l.includes(':'));
            if (first) apiKey = first.slice(0, first.lastIndexOf(':'));
            else content = `${apiKey}:admin\n`;
          }
          const local = path.join(dir, name);
          writeFileSync(local, content ?? '');
          processEnv[name] = local;
        }
        // Redis: a real server on loopback that requires the password the mounted file holds
        // (made up for a Secret the chart does not render), in place of the chart's address.
        let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
        if (processEnv.REDIS_URL) {
          let password: string[] = [];
          if (processEnv.REDIS_PASSWORD_FILE) {
            const local = processEnv.REDIS_PASSWORD_FILE;
            const content = readFileSync(local, 'utf8') || 'chart-redis-password-0001\n';
            writeFileSync(local, content);
            password = ['--requirepass', content.replace(/\r?\n$/, '')];
          }
          const port = await freePort();
          redis = await startRedis(port, password);
          processEnv.REDIS_URL = `redis://127.0.0.1:${port}`;
        }
        const server = await startServerProcess(
          path.join(ROOT, 'dist', 'src', 'server.js'),
          processEnv,
        ).catch(async (err: Error) => {
          if (redis) await stopRedis(redis);
          rmSync(dir, { recursive: true, force: true });
          throw err;
        });
        try {
          const paths = probesOf(container).map(([name, p]) => {
            assert.ok(p?.httpGet?.path, `${name} probe has an HTTP path`);
            return { name, path: p.httpGet.path };
          });
          assert.equal(new Set(paths.map((p) => p.path)).size, 3, 'distinct probe paths');
          for (const { name, path: p } of paths) {
            // Liveness answers 200 from the start. Startup and readiness may answer 503 while
            // the first checks run, but with Ollama up and holding the model they must turn
            // 200 within seconds: an environment that keeps the pod unready fails here.
            let last = 0;
            await pollUntil(
              `${name} ${p} answering 200`,
              async () => {
                const res = await fetch(`${server.url}${p}`);
                const body = (await res.json().catch(() => null)) as { status?: string } | null;
                last = res.status;
                assert.ok(name !== 'liveness' || res.status === 200, `${p} answered ${last}`);
                assert.ok([200, 503].includes(res.status), `${p} answered ${last}`);
                assert.ok(['pass', 'warn', 'fail'].includes(body?.status ?? ''), `${p}: a report`);
                return res.status === 200 ? true : undefined;
              },
              PROBES_PASS_WITHIN_MS,
            ).catch((err: Error) => {
              throw new Error(`${err.message} (last ${last})\n${server.output()}`);
            });
          }

          const monitor = objs.find((o) => o.kind === 'ServiceMonitor')?.spec as
            | {
                endpoints: {
                  port: string;
                  path: string;
                  authorization?: { credentials: SecretRef };
                }[];
              }
            | undefined;
          for (const ep of monitor?.endpoints ?? []) {
            assert.equal(ep.port, 'http');
            const cred = ep.authorization?.credentials;
            const res = await fetch(`${server.url}${ep.path}`, {
              headers: cred ? { authorization: `Bearer ${secretValue(cred)}` } : {},
            });
            const text = await res.text();
            assert.equal(res.status, 200, `scrape ${ep.path} answered ${res.status}: ${text}`);
            assert.match(text, /^# HELP /m);
          }

          const agentsYaml = env.AGENTS_FILE
            ? readFileSync(processEnv.AGENTS_FILE ?? '', 'utf8')
            : '';
          if (agentsYaml) {
            // The service loaded the chart's agents file (it exits 78 on a bad one, failing
            // startServerProcess above); each agent in it is now registered.
            const wanted = (parse(agentsYaml) as { agents: { name: string }[] }).agents.map(
              (a) => a.name,
            );
            const res = await fetch(`${server.url}/agents`, {
              headers: { authorization: `Bearer ${apiKey}` },
            });
            assert.equal(res.status, 200, await res.clone().text());
            const names = ((await res.json()) as { data: { name: string }[] }).data.map(
              (a) => a.name,
            );
            for (const n of wanted) assert.ok(names.includes(n), `agent ${n} is registered`);
          }
          // With the chart's Redis settings the service connects and authenticates.
          if (redis) await server.waitFor(/"message":"redis connected"/);
        } finally {
          await server.stop();
          if (redis) await stopRedis(redis);
          rmSync(dir, { recursive: true, force: true });
        }
      });
    });
  }

  it('the full values carry an agents file (so the check above loads one)', async () => {
    const objs = await renderChart([
      '-f',
      path.join(ROOT, 'helm/ollama-agent-gateway/ci/full-values.yaml'),
    ]);
    const { env } = gatewayOf(objs);
    assert.ok(env.AGENTS_FILE, 'AGENTS_FILE is set');
    assert.ok(
      objs.some((o) => o.kind === 'ServiceMonitor'),
      'a ServiceMonitor is rendered',
    );
  });
});

describe('the README’s recommended probe settings are the chart’s defaults', () => {
  it('startup, liveness and readiness probes and the grace period match field by field', async () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.indexOf('### Recommended Kubernetes probe settings');
    assert.ok(section >= 0, 'README has the recommended probe settings');
    const block = /```yaml\n([\s\S]*?)```/.exec(readme.slice(section))?.[1];
    assert.ok(block, 'a yaml block follows the heading');
    const recommended = parse(block) as Record<string, Record<string, unknown>> & {
      terminationGracePeriodSeconds: number;
    };
    const { deployment, container } = gatewayOf(await renderChart(['-f', DEFAULTS_FILE]));
    const rendered = {
      startupProbe: container.startupProbe,
      livenessProbe: container.livenessProbe,
      readinessProbe: container.readinessProbe,
    } as Record<string, Record<string, unknown> | undefined>;
    for (const [probe, fields] of Object.entries(rendered)) {
      const want = recommended[probe];
      assert.ok(want, `README recommends a ${probe}`);
      // Every field the README states has the chart's value; the chart sets nothing unstated
      // except defaults Kubernetes would apply anyway.
      for (const [field, value] of Object.entries(want)) {
        assert.deepEqual(fields?.[field], value, `${probe}.${field}`);
      }
      for (const field of ['periodSeconds', 'timeoutSeconds', 'failureThreshold']) {
        assert.ok(field in want, `README states ${probe}.${field}`);
      }
    }
    assert.equal(
      podSpecOf(deployment).terminationGracePeriodSeconds,
      recommended.terminationGracePeriodSeconds,
    );
  });
});
