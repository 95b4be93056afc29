import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { helmTemplate, runHelm } from '../../scripts/lib/chart';
import { freePort } from '../support/listen';
import { renderNotes } from './support/notes';
import { valuesFiles } from './support/values-files';
import { byKind, container, one } from './support/objects';
import { podSpecOf, workloadProblems } from './support/policy';
import {
  CHART_DIR,
  MONITORING_APIS,
  parseManifests,
  renderChart,
  type K8sObject,
} from './support/render';
import { VALKEY_IMAGE } from './support/valkey-image';

const ci = (name: string) => path.join(CHART_DIR, 'ci', name);
type Env = { name: string; value?: string }[];
interface Mount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}
interface Volume {
  name: string;
  secret?: { secretName: string; items?: { key: string; path: string }[] };
  emptyDir?: object;
}
interface Rule {
  to?: { podSelector?: { matchLabels: Record<string, string> } }[];
  from?: { podSelector?: { matchLabels: Record<string, string> } }[];
  ports?: { port: number | string; protocol: string }[];
}
type PolicySpec = {
  podSelector: { matchLabels: Record<string, string> };
  ingress?: Rule[];
  egress?: Rule[];
};

const component = (o: K8sObject) => o.metadata.labels?.['app.kubernetes.io/component'];
const gatewayEnv = (objs: K8sObject[]): Record<string, string> =>
  (byKind(objs, 'ConfigMap').find((c) => c.metadata.name === 'oag-ollama-agent-gateway')?.data ??
    {}) as Record<string, string>;
const envOf = (obj: K8sObject, name: string): Record<string, string | undefined> =>
  Object.fromEntries(
    ((container(obj, name) as { env?: Env }).env ?? []).map((e) => [e.name, e.value]),
  );
const mountsOf = (obj: K8sObject, name: string) =>
  (container(obj, name) as { volumeMounts?: Mount[] }).volumeMounts ?? [];
const volumesOf = (obj: K8sObject) => (podSpecOf(obj) as { volumes?: Volume[] }).volumes ?? [];
const policyOf = (objs: K8sObject[], of: string) =>
  one(objs, 'NetworkPolicy', of).spec as PolicySpec;
const podLabels = (obj: K8sObject) =>
  (obj.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata
    .labels;
/** The Secret (name and key) behind the file a container reads at `file`. */
const secretBehind = (obj: K8sObject, name: string, file: string) => {
  const mount = mountsOf(obj, name).find((m) => file.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `${name} mounts nothing at ${file}`);
  assert.equal(mount.readOnly, true);
  const volume = volumesOf(obj).find((v) => v.name === mount.name);
  const item = volume?.secret?.items?.find((i) => i.path === path.basename(file));
  assert.ok(volume?.secret && item, `${file} comes from a Secret key`);
  return { secret: volume.secret.secretName, key: item.key };
};

describe('the chart for several gateway replicas and several Ollama pods', function () {
  this.timeout(60_000);
  let dir = '';
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'oag-scale-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const { render, refused } = valuesFiles(() => dir);

  describe('the bundled Valkey', () => {
    it('pins the image whose Dockerfile its user and paths were read from', async () => {
      const values = parse(readFileSync(path.join(CHART_DIR, 'values.yaml'), 'utf8')) as {
        redis: { image: { repository: string; tag: string }; podSecurityContext: object };
      };
      assert.equal(values.redis.image.repository, VALKEY_IMAGE.repository);
      assert.equal(values.redis.image.tag, VALKEY_IMAGE.tag);
      const objs = await render();
      const sts = one(objs, 'StatefulSet', 'redis');
      assert.equal(
        container(sts, 'valkey').image,
        `${VALKEY_IMAGE.repository}:${VALKEY_IMAGE.tag}`,
      );
      const pod = podSpecOf(sts).securityContext as Record<string, unknown>;
      // The image's valkey user, and fsGroup so it owns the volume that replaces /data.
      assert.equal(pod.runAsUser, VALKEY_IMAGE.uid);
      assert.equal(pod.runAsGroup, VALKEY_IMAGE.gid);
      assert.equal(pod.fsGroup, VALKEY_IMAGE.gid);
      const conf =
        (one(objs, 'ConfigMap', 'redis').data as Record<string, string>)['valkey.conf'] ?? '';
      assert.match(conf, new RegExp(`^dir ${VALKEY_IMAGE.dataDir}$`, 'm'));
      assert.match(conf, /^maxmemory-policy noeviction$/m);
      assert.match(conf, /^protected-mode yes$/m);
      const data = mountsOf(sts, 'valkey').find((m) => m.mountPath === VALKEY_IMAGE.dataDir);
      assert.ok(data && !data.readOnly, 'a writable volume at the data directory');
      assert.ok(volumesOf(sts).find((v) => v.name === data.name)?.emptyDir, 'persistence off');
      assert.match(conf, /^appendonly no$/m);
    });

    it('3 replicas (ci/redis-bundled-values.yaml): one Valkey with a claim, the gateway pointed at it with the same password', async () => {
      const objs = await renderChart(['-f', ci('redis-bundled-values.yaml')]);
      const gw = one(objs, 'Deployment', 'gateway');
      assert.equal((gw.spec as { replicas: number }).replicas, 3);
      const sts = one(objs, 'StatefulSet', 'redis');
      // The policy holds for the Valkey pod: non-root, read-only root, no token, probes, pinned.
      assert.deepEqual(workloadProblems(sts), []);
      const svc = one(objs, 'Service', 'redis');
      const url = envOf(gw, 'gateway').REDIS_URL;
      assert.equal(url, `redis://${svc.metadata.name}:6379`);
      assert.deepEqual(
        (svc.spec as { selector: Record<string, string> }).selector,
        (sts.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels,
      );
      const env = gatewayEnv(objs);
      assert.equal(env.REDIS_URL, undefined, 'REDIS_URL is a secret variable: never a ConfigMap');
      const passwordFile = env.REDIS_PASSWORD_FILE ?? '';
      assert.deepEqual(secretBehind(gw, 'gateway', passwordFile), {
        secret: 'gateway-redis',
        key: 'redis-password',
      });
      assert.deepEqual(secretBehind(sts, 'valkey', '/etc/valkey-auth/password'), {
        secret: 'gateway-redis',
        key: 'redis-password',
      });
      const claims = (
        sts.spec as {
          volumeClaimTemplates: {
            metadata: { name: string };
            spec: { storageClassName?: string; resources: { requests: { storage: string } } };
          }[];
        }
      ).volumeClaimTemplates;
      assert.equal(claims[0]?.metadata.name, 'data');
      assert.equal(claims[0]?.spec.resources.requests.storage, '5Gi');
      assert.equal(claims[0]?.spec.storageClassName, 'fast-ssd');
      const conf =
        (one(objs, 'ConfigMap', 'redis').data as Record<string, string>)['valkey.conf'] ?? '';
      assert.match(conf, /^appendonly yes$/m);
      assert.match(conf, /^maxmemory 400mb$/m);
      // Only gateway pods reach Valkey, and Valkey reaches no one.
      const redisPolicy = policyOf(objs, 'redis');
      assert.deepEqual(redisPolicy.podSelector.matchLabels, podLabels(sts));
      assert.deepEqual(redisPolicy.ingress, [
        {
          from: [{ podSelector: { matchLabels: podLabels(gw) } }],
          ports: [{ port: 6379, protocol: 'TCP' }],
        },
      ]);
      assert.deepEqual(redisPolicy.egress, []);
      const egress = policyOf(objs, 'gateway').egress ?? [];
      assert.ok(
        egress.some(
          (r) =>
            JSON.stringify(r.to) ===
              JSON.stringify([{ podSelector: { matchLabels: podLabels(sts) } }]) &&
            r.ports?.[0]?.port === 6379,
        ),
        'the gateway may reach Valkey',
      );
    });

    it('rolls the gateway and Valkey when the password Secret changes', async () => {
      const sum = (objs: K8sObject[], kind: string, of: string) =>
        (
          one(objs, kind, of).spec as {
            template: { metadata: { annotations: Record<string, string> } };
          }
        ).template.metadata.annotations;
      const a = await render();
      const b = await render('redis:\n  existingSecret: other-redis\n');
      assert.notEqual(sum(a, 'Deployment', 'gateway')['checksum/redis'], undefined);
      assert.notEqual(
        sum(a, 'Deployment', 'gateway')['checksum/redis'],
        sum(b, 'Deployment', 'gateway')['checksum/redis'],
      );
      assert.notEqual(
        sum(a, 'StatefulSet', 'redis')['checksum/auth'],
        sum(b, 'StatefulSet', 'redis')['checksum/auth'],
      );
    });

    it('one replica keeps its state in memory: no Valkey, no REDIS_URL', async () => {
      const objs = await render('gateway:\n  replicaCount: 1\n');
      assert.equal(byKind(objs, 'StatefulSet').filter((o) => component(o) === 'redis').length, 0);
      assert.equal(envOf(one(objs, 'Deployment'), 'gateway').REDIS_URL, undefined);
      assert.equal(gatewayEnv(objs).REDIS_PASSWORD_FILE, undefined);
      const forced = await render('gateway:\n  replicaCount: 1\nredis:\n  enabled: true\n');
      one(forced, 'StatefulSet', 'redis');
    });

    it('refuses more than one replica, or autoscaling, without Redis', async () => {
      await refused(
        'gateway:\n  replicaCount: 2\nredis:\n  enabled: false\n',
        /redis: 2 gateway replicas without Redis: every replica would keep its own runs/,
      );
      await refused(
        'autoscaling:\n  enabled: true\nredis:\n  enabled: false\n',
        /redis: autoscaling without Redis/,
      );
    });

    it('refuses a generated password where the live Secret cannot be read, a password in the URL, and two Redis at once', async () => {
      const r = await runHelm(['template', 'oag', CHART_DIR, '--set', 'auth.disabled=true']);
      assert.notEqual(r.status, 0);
      assert.match(
        r.stderr,
        /redis: the bundled Valkey needs a password, and the live Secret cannot be read/,
      );
      await refused(
        'redis:\n  url: redis://:hunter2@redis.example:6379\n',
        /redis\.url: carries a password/,
      );
      await refused(
        'redis:\n  enabled: true\n  url: redis://redis.example:6379\n',
        /redis\.url: an external Redis, but redis\.enabled is true too/,
      );
      await refused(
        'gateway:\n  secretEnv: [{name: REDIS_URL, secretName: s, secretKey: k}]\nredis:\n  enabled: true\n',
        /gateway\.secretEnv: REDIS_URL is set by the chart/,
      );
      await refused('redis:\n  image:\n    tag: latest\n', /redis\.image\.tag/);
    });

    it('the policy fails a Valkey container with a writable root filesystem', async () => {
      const sts = structuredClone(one(await render(), 'StatefulSet', 'redis'));
      const c = podSpecOf(sts).containers[0] as { securityContext?: Record<string, unknown> };
      c.securityContext = { ...c.securityContext, readOnlyRootFilesystem: false };
      assert.deepEqual(workloadProblems(sts), [
        'StatefulSet oag-ollama-agent-gateway-redis container valkey: root filesystem is writable',
      ]);
    });

    describe('the rendered start command and readiness probe, run against a real server', () => {
      let script = '';
      let probe = '';
      let conf = '';
      let bin = '';
      const servers: ChildProcess[] = [];
      before(async () => {
        const objs = await render();
        const sts = one(objs, 'StatefulSet', 'redis');
        const c = container(sts, 'valkey') as unknown as {
          args: string[];
          readinessProbe: { exec: { command: string[] } };
        };
        script = c.args[0] ?? '';
        probe = c.readinessProbe.exec.command[2] ?? '';
        conf =
          (one(objs, 'ConfigMap', 'redis').data as Record<string, string>)['valkey.conf'] ?? '';
        // redis-server and redis-cli under the image's names: Valkey keeps their config
        // language, stdin config and REDISCLI_AUTH.
        bin = path.join(dir, 'bin');
        mkdirSync(bin);
        for (const [name, target] of [
          ['valkey-server', 'redis-server'],
          ['valkey-cli', 'redis-cli'],
        ] as const) {
          const found = spawnSync('/bin/sh', ['-c', `command -v ${target}`], { encoding: 'utf8' });
          assert.equal(found.status, 0, `${target} is installed (scripts/prereqs)`);
          symlinkSync(found.stdout.trim(), path.join(bin, name));
        }
      });
      after(async () => {
        for (const s of servers) {
          if (s.exitCode === null && s.signalCode === null) {
            const exited = once(s, 'exit');
            s.kill('SIGKILL');
            await exited;
          }
        }
      });

      /** Starts the script with `password` as the Secret's file; resolves with its port or its failure. */
      const start = async (password: string) => {
        const at = mkdtempSync(path.join(dir, 'valkey-'));
        const port = await freePort();
        writeFileSync(path.join(at, 'password'), password);
        writeFileSync(
          path.join(at, 'valkey.conf'),
          conf
            .replace(/^bind .*$/m, 'bind 127.0.0.1')
            .replace(/^port 6379$/m, `port ${port}`)
            .replace(/^dir .*$/m, `dir ${at}`),
        );
        const local = script
          .replaceAll('/etc/valkey-auth/password', path.join(at, 'password'))
          .replaceAll('/etc/valkey/valkey.conf', path.join(at, 'valkey.conf'));
        const child = spawn('/bin/sh', ['-ec', local], {
          env: { PATH: `${bin}:/usr/bin:/bin` },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        servers.push(child);
        let out = '';
        const result = await new Promise<{ ready: boolean; out: string }>((resolve) => {
          const onData = (d: Buffer) => {
            out += d.toString();
            if (out.includes('Ready to accept connections')) resolve({ ready: true, out });
          };
          child.stdout.on('data', onData);
          child.stderr.on('data', onData);
          child.once('exit', () => resolve({ ready: false, out }));
        });
        return { ...result, port, at };
      };
      /** What valkey-cli prints (a failed AUTH goes to stderr). */
      const cli = (port: number, password: string | undefined, ...args: string[]) => {
        const r = spawnSync(path.join(bin, 'valkey-cli'), ['-p', String(port), ...args], {
          env: password === undefined ? {} : { REDISCLI_AUTH: password },
          encoding: 'utf8',
        });
        return `${r.stderr}${r.stdout}`.trim();
      };

      it('requires exactly the Secret’s one line as the password, quotes and backslashes included', async () => {
        const password = 'pa"ss\\w rd$HOME';
        const s = await start(`${password}\n`);
        assert.ok(s.ready, s.out);
        assert.equal(cli(s.port, password, 'ping'), 'PONG');
        assert.match(cli(s.port, undefined, 'ping'), /NOAUTH/);
        assert.match(cli(s.port, 'pa"ss', 'ping'), /WRONGPASS/);
        assert.equal(
          cli(s.port, password, 'config', 'get', 'maxmemory-policy').split('\n')[1],
          'noeviction',
        );
        // The readiness probe, with the same file, sees PONG; with another password it fails.
        const run = (file: string) =>
          spawnSync(
            '/bin/sh',
            [
              '-c',
              probe.replace('/etc/valkey-auth/password', file).replace('-p 6379', `-p ${s.port}`),
            ],
            { env: { PATH: `${bin}:/usr/bin:/bin` } },
          ).status;
        assert.equal(run(path.join(s.at, 'password')), 0);
        writeFileSync(path.join(s.at, 'other'), 'pa"ss\n');
        assert.equal(run(path.join(s.at, 'other')), 1);
      });

      it('refuses to start with an empty or a two-line password', async () => {
        const empty = await start('\n');
        assert.equal(empty.ready, false);
        assert.match(empty.out, /the Redis password is empty/);
        const twoLines = await start('first\nsecond\n');
        assert.equal(twoLines.ready, false);
        assert.match(twoLines.out, /must be one line/);
      });
    });
  });

  describe('an external Redis (ci/redis-external-values.yaml)', () => {
    it('no Valkey; the gateway gets the URL, the password file from the named Secret, and egress to its port', async () => {
      const objs = await renderChart(['-f', ci('redis-external-values.yaml')]);
      assert.equal(byKind(objs, 'StatefulSet').length, 0);
      const gw = one(objs, 'Deployment', 'gateway');
      assert.equal((gw.spec as { replicas: number }).replicas, 3);
      assert.equal(
        envOf(gw, 'gateway').REDIS_URL,
        'rediss://default@redis.cache.example.internal:6380',
      );
      assert.deepEqual(secretBehind(gw, 'gateway', gatewayEnv(objs).REDIS_PASSWORD_FILE ?? ''), {
        secret: 'managed-redis',
        key: 'password',
      });
      const egress = policyOf(objs, 'gateway').egress ?? [];
      assert.ok(
        egress.some((r) => !r.to && r.ports?.length === 1 && r.ports[0]?.port === 6380),
        JSON.stringify(egress),
      );
      assert.deepEqual(byKind(objs, 'NetworkPolicy').map(component), ['gateway']);
    });
  });

  describe('several Ollama pods', () => {
    const headless = 'oag-ollama-agent-gateway-ollama-pods';

    it('one pod (the default): OLLAMA_HOST, no discovery, no Ollama budget', async () => {
      const objs = await render();
      const env = gatewayEnv(objs);
      assert.equal(env.OLLAMA_HOST, 'http://oag-ollama-agent-gateway-ollama:11434');
      assert.equal(env.OLLAMA_DISCOVERY, undefined);
      assert.deepEqual(byKind(objs, 'PodDisruptionBudget').map(component), ['gateway']);
      assert.equal((one(objs, 'StatefulSet', 'ollama').spec as { replicas: number }).replicas, 1);
    });

    it('ci/ollama-pool-values.yaml without KEDA: three pods, a claim and a GPU each, found through the headless Service', async () => {
      // Rendered for a cluster without KEDA's API: the StatefulSet keeps its own count.
      const objs = parseManifests(
        await helmTemplate(['oag', CHART_DIR, '-f', ci('ollama-pool-values.yaml')]),
      );
      assert.equal(byKind(objs, 'ScaledObject').length, 0);
      assert.equal((one(objs, 'StatefulSet', 'ollama').spec as { replicas: number }).replicas, 3);
      const sts = one(objs, 'StatefulSet', 'ollama');
      const spec = sts.spec as {
        podManagementPolicy: string;
        volumeClaimTemplates: { metadata: { name: string } }[];
      };
      assert.equal(spec.podManagementPolicy, 'Parallel');
      assert.deepEqual(
        spec.volumeClaimTemplates.map((c) => c.metadata.name),
        ['models'],
      );
      assert.equal(container(sts, 'ollama').resources?.limits?.['nvidia.com/gpu'], 1);
      assert.equal(podSpecOf(sts).initContainers?.[0]?.name, 'pull-models');
      const svc = byKind(objs, 'Service').find((s) => s.metadata.name === headless);
      assert.ok(svc, 'the headless Service');
      const svcSpec = svc.spec as {
        clusterIP: string;
        publishNotReadyAddresses: boolean;
        selector: Record<string, string>;
        ports: { port: number; targetPort: string }[];
      };
      assert.equal(svcSpec.clusterIP, 'None');
      assert.equal(svcSpec.publishNotReadyAddresses, false);
      for (const [k, v] of Object.entries(svcSpec.selector)) assert.equal(podLabels(sts)[k], v);
      assert.equal(
        container(sts, 'ollama').ports?.find((p) => p.name === svcSpec.ports[0]?.targetPort)
          ?.containerPort,
        11434,
      );
      const env = gatewayEnv(objs);
      assert.equal(env.OLLAMA_DISCOVERY, `${headless}.default.svc.cluster.local`);
      assert.equal(env.OLLAMA_DISCOVERY_INTERVAL_MS, '5000');
      assert.equal(env.OLLAMA_HOST, undefined, 'one way to find Ollama, not two');
      const pdb = one(objs, 'PodDisruptionBudget', 'ollama').spec as {
        maxUnavailable: number;
        selector: { matchLabels: Record<string, string> };
      };
      assert.equal(pdb.maxUnavailable, 1);
      assert.deepEqual(
        pdb.selector.matchLabels,
        (sts.spec as { selector: { matchLabels: object } }).selector.matchLabels,
      );
      // Every Ollama pod is reachable from the gateway and the pull Job, by the same policy.
      const ingress = policyOf(objs, 'ollama').ingress ?? [];
      assert.equal(ingress[0]?.ports?.[0]?.port, 11434);
      const job = one(objs, 'Job');
      assert.equal(envOf(job, 'pull').OLLAMA_PODS, env.OLLAMA_DISCOVERY);
    });

    it('KEDA present: a ScaledObject on the StatefulSet, from the gateway’s queue, never below one pod; KEDA owns the count', async () => {
      const objs = await renderChart(['-f', ci('ollama-pool-values.yaml')]);
      const sts = one(objs, 'StatefulSet', 'ollama');
      assert.equal((sts.spec as { replicas?: number }).replicas, undefined);
      const so = one(objs, 'ScaledObject', 'ollama').spec as {
        scaleTargetRef: { apiVersion: string; kind: string; name: string };
        minReplicaCount: number;
        maxReplicaCount: number;
        triggers: { type: string; metricType: string; metadata: Record<string, string> }[];
      };
      assert.deepEqual(so.scaleTargetRef, {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        name: sts.metadata.name,
      });
      assert.equal(so.minReplicaCount, 2);
      assert.equal(so.maxReplicaCount, 6);
      const trigger = so.triggers[0];
      assert.equal(trigger?.type, 'prometheus');
      assert.equal(trigger?.metricType, 'AverageValue');
      assert.equal(
        trigger?.metadata.query,
        'sum(max by (backend) (ollama_backend_requests_waiting{namespace="default",service="oag-ollama-agent-gateway"}))',
      );
      assert.equal(
        trigger?.metadata.serverAddress,
        'http://prometheus-operated.monitoring.svc:9090',
      );
      // The query names the gateway's Service, whose targets carry its name as `service`.
      assert.equal(one(objs, 'Service', 'gateway').metadata.name, 'oag-ollama-agent-gateway');
      // A cluster that announces the kind rather than the group version renders it too.
      const byKindApi = await runHelm([
        'template',
        'oag',
        CHART_DIR,
        '-f',
        ci('ollama-pool-values.yaml'),
        '--api-versions',
        'keda.sh/v1alpha1/ScaledObject',
        '--api-versions',
        'monitoring.coreos.com/v1/ServiceMonitor',
      ]);
      assert.match(byKindApi.stdout, /kind: ScaledObject/, byKindApi.stderr);
    });

    it('the default KEDA query reads series that exist: the ServiceMonitor of the gateway Service is rendered, or the render is refused', async () => {
      const objs = await renderChart(['-f', ci('ollama-pool-values.yaml')]);
      const query = one(objs, 'ScaledObject', 'ollama').spec as {
        triggers: { metadata: { query: string } }[];
      };
      // The Prometheus operator gives a ServiceMonitor's targets their Service's name as `service`.
      const service = one(objs, 'Service', 'gateway');
      assert.match(
        query.triggers[0]?.metadata.query ?? '',
        new RegExp(`service="${service.metadata.name}"`),
      );
      const monitors = byKind(objs, 'ServiceMonitor');
      assert.equal(monitors.length, 1, 'a ServiceMonitor beside the default query');
      const selector = (monitors[0]?.spec as { selector: { matchLabels: Record<string, string> } })
        .selector.matchLabels;
      for (const [k, v] of Object.entries(selector)) {
        assert.equal(
          service.metadata.labels?.[k],
          v,
          `the ServiceMonitor selects the gateway Service (${k})`,
        );
      }

      const withoutMonitor = (...extra: string[]) =>
        runHelm([
          'template',
          'oag',
          CHART_DIR,
          '-f',
          ci('ollama-pool-values.yaml'),
          ...MONITORING_APIS,
          '--set',
          'metrics.serviceMonitor.enabled=false',
          ...extra,
        ]);
      const without = await withoutMonitor();
      assert.notEqual(without.status, 0, 'the default query without a ServiceMonitor');
      assert.match(without.stderr, /ollama\.keda\.prometheus\.query: the default query selects/);
      const own = await withoutMonitor(
        '--set',
        'ollama.keda.prometheus.query=sum(ollama_backend_requests_waiting)',
      );
      assert.equal(own.status, 0, own.stderr);
      assert.match(own.stdout, /kind: ScaledObject/);
    });

    it('takes the monitoring API as a group/version too, as offline and GitOps renders name it', async () => {
      /** The kinds rendered with the pool values, the PrometheusRule asked for, and these APIs. */
      const kindsWith = async (...apis: string[]) => {
        const rendered = await runHelm([
          'template',
          'oag',
          CHART_DIR,
          '-f',
          ci('ollama-pool-values.yaml'),
          '--set',
          'metrics.prometheusRule.enabled=true',
          ...['keda.sh/v1alpha1', ...apis].flatMap((api) => ['--api-versions', api]),
        ]);
        assert.equal(rendered.status, 0, rendered.stderr);
        return parseManifests(rendered.stdout).map((o) => o.kind);
      };
      const kinds = await kindsWith('monitoring.coreos.com/v1');
      for (const kind of ['ScaledObject', 'ServiceMonitor', 'PrometheusRule']) {
        assert.ok(kinds.includes(kind), `${kind} rendered`);
      }
      // A cluster that lists one kind of the API has only that CRD, whatever else it lists.
      const only = await kindsWith(
        'monitoring.coreos.com/v1',
        'monitoring.coreos.com/v1/ServiceMonitor',
      );
      assert.ok(only.includes('ServiceMonitor'));
      assert.ok(!only.includes('PrometheusRule'), 'no PrometheusRule without its CRD');
    });

    it('NOTES warn when KEDA is asked for but the cluster lacks its API', async () => {
      const notes = await renderNotes([ci('ollama-pool-values.yaml')]);
      assert.match(notes, /ollama\.keda\.enabled, but the keda\.sh\/v1alpha1 API is missing/);
    });

    it('refuses a scale-to-zero minimum, KEDA without Prometheus, and one claim for several pods', async () => {
      await refused(
        'ollama:\n  keda:\n    enabled: true\n    minReplicaCount: 0\n    prometheus:\n      serverAddress: http://p:9090\n',
        /minReplicaCount: Must be greater than or equal to 1/,
      );
      await refused(
        'ollama:\n  keda:\n    enabled: true\n',
        /ollama\.keda\.prometheus\.serverAddress: required/,
      );
      await refused(
        'ollama:\n  replicaCount: 2\n  persistence:\n    existingClaim: models\n',
        /ollama\.persistence\.existingClaim: one claim cannot serve 2 Ollama pods/,
      );
    });

    it('Ollamas that already exist: ollama.externalHosts becomes OLLAMA_HOSTS', async () => {
      const objs = await render(
        'ollama:\n  enabled: false\n  externalHosts: [http://a:11434, "b.ml:11434"]\n',
      );
      const env = gatewayEnv(objs);
      assert.equal(env.OLLAMA_HOSTS, 'http://a:11434,b.ml:11434');
      assert.equal(env.OLLAMA_HOST, undefined);
      assert.equal(byKind(objs, 'StatefulSet').filter((o) => component(o) === 'ollama').length, 0);
      await refused(
        'ollama:\n  enabled: false\n  externalHost: http://a:11434\n  externalHosts: [http://b:11434]\n',
        /set either ollama\.externalHost .* or ollama\.externalHosts/,
      );
      await refused(
        'ollama:\n  externalHosts: [http://b:11434]\n',
        /only used when ollama\.enabled is false/,
      );
    });
  });
});
