import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import { parse } from 'yaml';
import { runHelm } from '../../scripts/lib/chart';
import { byKind, container, one } from './support/objects';
import { OLLAMA_IMAGE, ollamaServers, ollamaWriteProblems } from './support/ollama-image';
import { renderNotes } from './support/notes';
import { valuesFiles } from './support/values-files';
import { podSpecOf } from './support/policy';
import {
  CHART_DIR,
  ciValuesFiles,
  DEFAULTS_FILE,
  renderChart,
  type K8sObject,
} from './support/render';

const ci = (name: string) => path.join(CHART_DIR, 'ci', name);
type Env = { name: string; value?: string }[];
const envOf = (obj: K8sObject, name: string): Record<string, string | undefined> =>
  Object.fromEntries(
    ((container(obj, name) as { env?: Env }).env ?? []).map((e) => [e.name, e.value]),
  );
const configMapOf = (objs: K8sObject[], name: string): Record<string, string> =>
  (byKind(objs, 'ConfigMap').find((c) => c.metadata.name === name)?.data ?? {}) as Record<
    string,
    string
  >;
const gatewayEnv = (objs: K8sObject[]) => configMapOf(objs, 'oag-ollama-agent-gateway');
const isOllama = (o: K8sObject) => o.metadata.labels?.['app.kubernetes.io/component'] === 'ollama';
const podTemplate = (obj: K8sObject) =>
  (obj.spec as { template: { metadata: { annotations?: Record<string, string> } } }).template;

describe('the chart on a GPU cluster, as an operator runs it', function () {
  this.timeout(60_000);
  let dir = '';
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'oag-operator-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const { valuesFile, render, refused } = valuesFiles(() => dir);

  describe('the Ollama pod can write where the pinned image writes', () => {
    it('pins the image whose Dockerfile the write-path facts were read from', () => {
      const values = parse(readFileSync(path.join(CHART_DIR, 'values.yaml'), 'utf8')) as {
        ollama: { image: { repository: string; tag: string } };
      };
      assert.equal(values.ollama.image.repository, OLLAMA_IMAGE.repository);
      assert.equal(values.ollama.image.tag, OLLAMA_IMAGE.tag);
    });

    // Only the values files that run Ollama in the chart (the others point at an external one).
    const withOllama = ciValuesFiles().filter(
      (file) =>
        (parse(readFileSync(file, 'utf8')) as { ollama?: { enabled?: boolean } } | null)?.ollama
          ?.enabled !== false,
    );
    it('renders Ollama with most ci values files', () => {
      assert.ok(withOllama.length >= ciValuesFiles().length - 2, withOllama.join(', '));
    });
    for (const file of withOllama) {
      it(`with ci/${path.basename(file)}: HOME, OLLAMA_MODELS, the key file and /tmp land on writable volumes`, async () => {
        const objs = await renderChart(['-f', file]);
        const servers = byKind(objs, 'StatefulSet').filter(isOllama);
        assert.ok(servers.length >= 1, 'an Ollama StatefulSet is rendered');
        for (const sts of servers) {
          assert.equal(ollamaServers(sts).length, 2, 'the initContainer and the server');
          assert.deepEqual(ollamaWriteProblems(sts), []);
        }
      });
    }

    it('fails on a volume at /root/.ollama with no HOME under uid 1000 (the image’s own layout)', async () => {
      const sts = structuredClone(one(await render(), 'StatefulSet', 'ollama'));
      for (const c of ollamaServers(sts)) {
        const full = c as { env?: Env; volumeMounts?: { name: string; mountPath: string }[] };
        full.env = full.env?.filter((e) => e.name !== 'HOME' && e.name !== 'OLLAMA_MODELS');
        for (const m of full.volumeMounts ?? [])
          if (m.name === 'models') m.mountPath = '/root/.ollama';
      }
      const problems = ollamaWriteProblems(sts).join('\n');
      assert.match(problems, /its key file \/home\/ubuntu\/\.ollama\/id_ed25519 is on no volume/);
      assert.match(
        problems,
        /OLLAMA_MODELS \/home\/ubuntu\/\.ollama\/models\/manifests is on no volume/,
      );
      // Even with HOME pointed at the mount, uid 1000 cannot pass /root (0700).
      for (const c of ollamaServers(sts))
        (c as { env?: Env }).env?.push({ name: 'HOME', value: '/root' });
      assert.match(ollamaWriteProblems(sts).join('\n'), /uid 1000 cannot pass \/root \(mode 700\)/);
    });
  });

  describe('readiness and disruption budget fit one shared Ollama', () => {
    it('keeps gateway pods ready while Ollama restarts, and lets unready pods be evicted', async () => {
      const objs = await render();
      assert.equal(gatewayEnv(objs).READY_REQUIRES_OLLAMA, 'false');
      const pdb = one(objs, 'PodDisruptionBudget').spec as Record<string, unknown>;
      assert.equal(pdb.maxUnavailable, 1);
      assert.equal(pdb.minAvailable, undefined);
      assert.equal(pdb.unhealthyPodEvictionPolicy, 'AlwaysAllow');
    });

    it('offers minAvailable instead, and refuses budgets that block every drain', async () => {
      const pdb = one(
        await render('podDisruptionBudget:\n  minAvailable: 1\n  maxUnavailable: null\n'),
        'PodDisruptionBudget',
      ).spec as Record<string, unknown>;
      assert.equal(pdb.minAvailable, 1);
      assert.equal(pdb.maxUnavailable, undefined);
      await refused(
        'podDisruptionBudget:\n  minAvailable: 1\n',
        /set exactly one of minAvailable and maxUnavailable/,
      );
      await refused(
        'podDisruptionBudget:\n  maxUnavailable: 0\n',
        /maxUnavailable: 0 would block every node drain/,
      );
    });
  });

  describe('models change without replacing the Ollama pod', () => {
    it('keeps the pod template the same when the model list changes; the list lives in a ConfigMap', async () => {
      const before = await render();
      const after = await render('ollama:\n  models: [llama3.2:3b, qwen3:8b]\n');
      assert.deepEqual(
        podTemplate(one(after, 'StatefulSet', 'ollama')),
        podTemplate(one(before, 'StatefulSet', 'ollama')),
      );
      assert.equal(
        configMapOf(after, 'oag-ollama-agent-gateway-ollama-models').models,
        'llama3.2:3b\nqwen3:8b\n',
      );
    });

    it('pulls the list into the running server with a post-install/post-upgrade Job that Ollama admits', async () => {
      const objs = await render('ollama:\n  models: [llama3.2:3b, qwen3:8b]\n');
      const job = one(objs, 'Job');
      assert.equal(job.metadata.annotations?.['helm.sh/hook'], 'post-install,post-upgrade');
      assert.match(
        job.metadata.annotations?.['helm.sh/hook-delete-policy'] ?? '',
        /before-hook-creation/,
      );
      assert.doesNotMatch(
        job.metadata.annotations?.['helm.sh/hook-delete-policy'] ?? '',
        /hook-failed/,
      );
      const pull = container(job, 'pull') as { args?: string[] };
      assert.deepEqual(pull.args?.slice(1), ['pull-models', 'llama3.2:3b', 'qwen3:8b']);
      // Every pod of the headless Service, by the name the gateway discovers them by.
      assert.equal(
        envOf(job, 'pull').OLLAMA_PODS,
        'oag-ollama-agent-gateway-ollama-pods.default.svc.cluster.local',
      );
      // Ollama's NetworkPolicy lets the Job's pods in.
      const policy = byKind(objs, 'NetworkPolicy').find((p) => p.metadata.name.endsWith('-ollama'));
      const from = JSON.stringify((policy?.spec as { ingress: unknown }).ingress);
      const jobLabels = (job.spec as { template: { metadata: { labels: object } } }).template
        .metadata.labels;
      assert.ok(from.includes(JSON.stringify(jobLabels)), 'the Job pods may reach Ollama');
      assert.equal(
        byKind(await render('ollama:\n  modelPullJob:\n    enabled: false\n'), 'Job').length,
        0,
      );
    });

    /** Runs a rendered script with a fake `ollama` that fails for `bad:model`. */
    const runScript = (
      script: string,
      args: string[],
      listFile?: string,
      pods: string[] = ['10.0.0.7'],
    ) => {
      const bin = mkdtempSync(path.join(dir, 'bin-'));
      const fake = path.join(bin, 'ollama');
      writeFileSync(
        fake,
        [
          '#!/bin/sh',
          'echo "ollama $*${OLLAMA_HOST:+ @$OLLAMA_HOST}" >> "$OLLAMA_CALLS"',
          'case "$1" in',
          '  serve) sleep 30 ;;',
          '  show) exit 1 ;;',
          '  pull) [ "$2" = bad:model ] && { echo "Error: pull model manifest: file does not exist" >&2; exit 1; }; exit 0 ;;',
          'esac',
          'exit 0',
          '',
        ].join('\n'),
      );
      chmodSync(fake, 0o755);
      // The headless Service's addresses, as getent ahosts prints them (one line per socket type).
      const getent = path.join(bin, 'getent');
      writeFileSync(
        getent,
        [
          '#!/bin/sh',
          '[ "$1" = ahosts ] || exit 2',
          'for a in $FAKE_PODS; do',
          '  for t in STREAM DGRAM RAW; do echo "$a       $t $2"; done',
          'done',
          '',
        ].join('\n'),
      );
      chmodSync(getent, 0o755);
      const calls = path.join(bin, 'calls');
      writeFileSync(calls, '');
      const body = listFile ? script.replace('/etc/ollama-models/models', listFile) : script;
      const r = spawnSync('/bin/sh', ['-ec', body, ...args], {
        env: {
          PATH: `${bin}:/usr/bin:/bin`,
          OLLAMA_CALLS: calls,
          OLLAMA_PODS: 'pods.example',
          FAKE_PODS: pods.join(' '),
        },
        encoding: 'utf8',
        timeout: 20_000,
      });
      return { status: r.status, stderr: r.stderr, calls: readFileSync(calls, 'utf8') };
    };

    it('the Job fails visibly on a misspelt model, after trying every other one', async () => {
      const job = one(await render(), 'Job');
      const script = (container(job, 'pull') as unknown as { args: string[] }).args[0] as string;
      const ok = runScript(script, ['pull-models', 'llama3.2:3b', 'qwen3:8b']);
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(
        ok.calls,
        'ollama pull llama3.2:3b @http://10.0.0.7:11434\nollama pull qwen3:8b @http://10.0.0.7:11434\n',
      );
      const bad = runScript(script, ['pull-models', 'bad:model', 'qwen3:8b']);
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /could not pull: bad:model@10\.0\.0\.7/);
      assert.match(bad.calls, /ollama pull qwen3:8b/);
    });

    it('on install the Job leaves the first pull to the initContainers instead of failing while it runs; on upgrade it waits for a ready pod', async () => {
      // No pod behind the headless Service yet, and no time to wait: a render with
      // waitSeconds 0 shows what happens once any wait is over, without waiting in the test.
      const values = 'ollama:\n  modelPullJob:\n    waitSeconds: 0\n';
      const scriptOf = (objs: K8sObject[]) =>
        (container(one(objs, 'Job'), 'pull') as unknown as { args: string[] }).args[0] as string;
      const install = runScript(
        scriptOf(await render(values)),
        ['pull-models', 'qwen3:8b'],
        undefined,
        [],
      );
      assert.equal(install.status, 0, install.stderr);
      assert.equal(install.calls, '', 'nothing to pull into yet');
      const upgrade = runScript(
        scriptOf(await render(values, ['--is-upgrade'])),
        ['pull-models', 'qwen3:8b'],
        undefined,
        [],
      );
      assert.equal(upgrade.status, 1);
      assert.match(upgrade.stderr, /no Ollama pod behind pods\.example answered within 0 s/);
      // Once a pod is ready, install pulls into it like upgrade does.
      const ready = runScript(scriptOf(await render(values)), ['pull-models', 'qwen3:8b']);
      assert.equal(ready.status, 0, ready.stderr);
      assert.equal(ready.calls, 'ollama pull qwen3:8b @http://10.0.0.7:11434\n');
    });

    it('the Job pulls into every Ollama pod the headless Service lists, IPv6 included', async () => {
      const job = one(await render('ollama:\n  replicaCount: 3\n'), 'Job');
      const script = (container(job, 'pull') as unknown as { args: string[] }).args[0] as string;
      const pods = ['10.0.0.7', '10.0.1.9', 'fd00::5'];
      const r = runScript(script, ['pull-models', 'qwen3:8b'], undefined, pods);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(r.calls.trim().split('\n').sort(), [
        'ollama pull qwen3:8b @http://10.0.0.7:11434',
        'ollama pull qwen3:8b @http://10.0.1.9:11434',
        'ollama pull qwen3:8b @http://[fd00::5]:11434',
      ]);
    });

    it('the initContainer pulls the ConfigMap’s list at a cold start and fails on a bad name', async () => {
      const sts = one(await render(), 'StatefulSet', 'ollama');
      const script = (container(sts, 'pull-models') as unknown as { args: string[] })
        .args[0] as string;
      const list = path.join(dir, 'models');
      writeFileSync(list, 'llama3.2:3b\n\nqwen3:8b\n');
      const ok = runScript(script, [], list);
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.calls, /ollama pull llama3\.2:3b\n(.*\n)*ollama pull qwen3:8b\n/);
      writeFileSync(list, 'bad:model\n');
      assert.equal(runScript(script, [], list).status, 1);
    });
  });

  describe('API keys under GitOps', () => {
    it('refuses to generate a key where the live Secret cannot be read', async () => {
      const r = await runHelm(['template', 'oag', CHART_DIR]);
      assert.notEqual(r.status, 0);
      assert.match(
        r.stderr,
        /auth: no auth\.existingSecret or auth\.apiKeys, and the live Secret cannot be read/,
      );
      assert.match(r.stderr, /set auth\.existingSecret/);
    });

    it('renders the same manifests twice from the same values, and rolls pods when the keys change', async () => {
      const a = await render();
      const b = await render();
      assert.deepEqual(a, b);
      const keyed = await render(
        'auth:\n  apiKeys: [{key: other-key-0123456789abcdef, role: admin}]\n',
      );
      const sum = (objs: K8sObject[]) =>
        podTemplate(one(objs, 'Deployment')).metadata.annotations?.['checksum/auth'];
      const secret = Buffer.from(
        (one(a, 'Secret').data as Record<string, string>)['api-keys'] ?? '',
        'base64',
      ).toString();
      assert.equal(secret, 'ci-admin-key-0123456789abcdef:admin\n');
      assert.notEqual(sum(keyed), sum(a));
      const gitops = await renderChart(['-f', ci('gitops-values.yaml')]);
      assert.equal(byKind(gitops, 'Secret').length, 0);
    });
  });

  describe('GPU details', () => {
    it('hides GPUs from the initContainer always and from Ollama without a GPU request; passes extraEnv to both', async () => {
      const cpu = one(
        await render('ollama:\n  extraEnv: [{name: HTTPS_PROXY, value: "http://proxy:3128"}]\n'),
        'StatefulSet',
        'ollama',
      );
      for (const name of ['pull-models', 'ollama']) {
        assert.equal(envOf(cpu, name).NVIDIA_VISIBLE_DEVICES, 'void', name);
        assert.equal(envOf(cpu, name).HTTPS_PROXY, 'http://proxy:3128', name);
      }
      const gpu = one(await renderChart(['-f', ci('gpu-values.yaml')]), 'StatefulSet', 'ollama');
      assert.equal(envOf(gpu, 'pull-models').NVIDIA_VISIBLE_DEVICES, 'void');
      assert.equal(
        envOf(gpu, 'ollama').NVIDIA_VISIBLE_DEVICES,
        undefined,
        'the image’s `all` stands',
      );
    });

    it('MIG: requests the MIG resource and tolerates the nvidia.com/gpu taint; gpu.taintKey overrides', async () => {
      const sts = one(await renderChart(['-f', ci('mig-values.yaml')]), 'StatefulSet', 'ollama');
      assert.equal(container(sts, 'ollama').resources?.limits?.['nvidia.com/mig-1g.10gb'], 1);
      assert.deepEqual(podSpecOf(sts).tolerations, [
        { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
      ]);
      const custom = one(
        await renderChart(['-f', ci('mig-values.yaml'), '--set', 'ollama.gpu.taintKey=gpu-pool']),
        'StatefulSet',
        'ollama',
      );
      assert.equal(podSpecOf(custom).tolerations?.[0]?.key, 'gpu-pool');
    });

    it('gives Ollama the gateway’s drain time before SIGTERM, since Ollama closes connections at once', async () => {
      const sts = one(
        await render('gateway:\n  config:\n    SHUTDOWN_TIMEOUT_MS: 120000\n'),
        'StatefulSet',
        'ollama',
      );
      const c = container(sts, 'ollama') as {
        lifecycle?: { preStop?: { exec?: { command?: string[] } } };
      };
      assert.deepEqual(c.lifecycle?.preStop?.exec?.command, ['sleep', '120']);
      assert.equal(podSpecOf(sts).terminationGracePeriodSeconds, 130);
      const set = one(await render('ollama:\n  drainSeconds: 0\n'), 'StatefulSet', 'ollama');
      assert.equal((container(set, 'ollama') as { lifecycle?: unknown }).lifecycle, undefined);
    });
  });

  describe('egress for webhooks, http_get and MCP servers', () => {
    it('offers HTTPS to public addresses, excluding every range the SSRF guard refuses', async () => {
      const objs = await render('networkPolicy:\n  gatewayInternetEgress: true\n');
      const policy = one(objs, 'NetworkPolicy', 'gateway').spec as {
        egress: {
          to?: { ipBlock?: { cidr: string; except: string[] } }[];
          ports?: { port: number }[];
        }[];
      };
      const rule = policy.egress.find((r) => r.to?.some((t) => t.ipBlock));
      assert.deepEqual(rule?.ports, [{ port: 443, protocol: 'TCP' }]);
      const blocks = rule?.to?.map((t) => t.ipBlock) ?? [];
      assert.deepEqual(
        blocks.map((b) => b?.cidr),
        ['0.0.0.0/0', '::/0'],
      );
      for (const cidr of blocks.flatMap((b) => b?.except ?? [])) {
        const [addr] = ipaddr.parseCIDR(cidr);
        assert.notEqual(addr.range(), 'unicast', `${cidr} is a range the guard refuses`);
      }
      // Every non-public IPv4 range the guard knows is excluded.
      const excepted = (blocks[0]?.except ?? []).map((c) => ipaddr.parseCIDR(c));
      for (const probe of [
        '10.1.2.3',
        '172.16.0.1',
        '192.168.1.1',
        '169.254.169.254',
        '100.64.0.1',
        '127.0.0.1',
        '0.0.0.1',
      ]) {
        const a = ipaddr.parse(probe);
        assert.ok(
          excepted.some((r) => a.match(r)),
          `${probe} is excluded`,
        );
      }
    });

    it('renders extra egress for the gateway and Ollama', async () => {
      const objs = await renderChart(['-f', ci('gitops-values.yaml')]);
      for (const component of ['gateway', 'ollama']) {
        const text = JSON.stringify(one(objs, 'NetworkPolicy', component).spec);
        assert.match(text, /"cidr":"10\.20\.0\.10\/32"/, component);
      }
    });

    it('NOTES warn when webhooks or http_get are configured without egress', async () => {
      const warning = /WARNING: (webhooks|the http_get tool|MCP)[\s\S]*gatewayInternetEgress/;
      const httpGet = valuesFile(
        'gateway:\n  config:\n    HTTP_TOOL_ALLOWLIST: docs.example.com\n',
      );
      assert.match(await renderNotes([DEFAULTS_FILE, httpGet]), /the http_get tool are configured/);
      const hooks = valuesFile(
        'gateway:\n  secretEnv: [{name: WEBHOOK_SECRET, secretName: s, secretKey: k}]\n',
      );
      assert.match(await renderNotes([DEFAULTS_FILE, hooks]), /WARNING: webhooks are configured/);
      assert.doesNotMatch(await renderNotes([ci('full-values.yaml')]), warning);
    });

    it('NOTES warn when the agents file names MCP servers, or MCP_ALLOWLIST is set, without egress', async () => {
      const warning = /WARNING: MCP tool servers are configured[\s\S]*gatewayInternetEgress/;
      const agents = valuesFile(
        [
          'gateway:',
          '  agents: |',
          '    mcp_servers:',
          '      - name: docs',
          '        url: https://mcp.example.com/mcp',
          '    agents:',
          '      - name: helper',
          '        mcp_servers: [docs]',
          '',
        ].join('\n'),
      );
      assert.match(await renderNotes([DEFAULTS_FILE, agents]), warning);
      const allowlist = valuesFile('gateway:\n  config:\n    MCP_ALLOWLIST: mcp.tools.svc\n');
      assert.match(await renderNotes([DEFAULTS_FILE, allowlist]), warning);
      const egress = valuesFile('networkPolicy:\n  gatewayInternetEgress: true\n');
      assert.doesNotMatch(await renderNotes([DEFAULTS_FILE, agents, egress]), warning);
      assert.doesNotMatch(await renderNotes([DEFAULTS_FILE]), warning);
    });
  });

  describe('the scrape behind a NetworkPolicy', () => {
    it('lets metricsFrom reach the port when gatewayIngressFrom limits it, and NOTES warn without it', async () => {
      const peers = valuesFile(
        [
          'networkPolicy:',
          '  gatewayIngressFrom:',
          '    - namespaceSelector: { matchLabels: { name: ingress } }',
          '',
        ].join('\n'),
      );
      const scrapers = valuesFile(
        'networkPolicy:\n  metricsFrom:\n    - namespaceSelector: { matchLabels: { name: monitoring } }\n',
      );
      const warning =
        /WARNING: networkPolicy\.gatewayIngressFrom limits who reaches the gateway's port/;
      assert.match(await renderNotes([DEFAULTS_FILE, peers]), warning);
      assert.doesNotMatch(await renderNotes([DEFAULTS_FILE, peers, scrapers]), warning);
      assert.doesNotMatch(await renderNotes([DEFAULTS_FILE]), warning);

      const policy = one(
        await renderChart(['-f', DEFAULTS_FILE, '-f', peers, '-f', scrapers]),
        'NetworkPolicy',
        'gateway',
      ).spec as { ingress: Array<{ from?: Array<{ namespaceSelector?: unknown }> }> };
      assert.deepEqual(
        policy.ingress.map((rule) => rule.from?.map((peer) => peer.namespaceSelector)),
        [[{ matchLabels: { name: 'ingress' } }], [{ matchLabels: { name: 'monitoring' } }]],
      );
    });
  });

  describe('Ingress and Gateway API', () => {
    it('ships long-request and SSE annotations, keeps /metrics off, and sets TRUST_PROXY', async () => {
      const objs = await render('ingress:\n  enabled: true\n  hosts: [{host: a.example.com}]\n');
      const ing = one(objs, 'Ingress');
      assert.deepEqual(ing.metadata.annotations, {
        'nginx.ingress.kubernetes.io/proxy-buffering': 'off',
        'nginx.ingress.kubernetes.io/proxy-read-timeout': '3600',
        'nginx.ingress.kubernetes.io/proxy-request-buffering': 'off',
        'nginx.ingress.kubernetes.io/proxy-send-timeout': '3600',
      });
      const paths = (
        ing.spec as { rules: { http: { paths: { path: string }[] } }[] }
      ).rules[0]?.http.paths.map((p) => p.path);
      assert.deepEqual(paths, ['/agents', '/ollama', '/health', '/v1', '/api']);
      assert.equal(gatewayEnv(objs).TRUST_PROXY, '1');
      assert.equal(gatewayEnv(await render()).TRUST_PROXY, undefined);
      const own = await render(
        'ingress:\n  enabled: true\n  hosts: [{host: a.example.com}]\ngateway:\n  config:\n    TRUST_PROXY: 2\n',
      );
      assert.equal(gatewayEnv(own).TRUST_PROXY, '2');
      // A user's annotation wins over the chart's.
      const full = one(await renderChart(['-f', ci('full-values.yaml')]), 'Ingress');
      assert.equal(
        full.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-read-timeout'],
        '600',
      );
      await refused(
        'ingress:\n  enabled: true\n  hosts: [{host: a.example.com, paths: [{path: /}]}]\n',
        /paths: \/ would publish \/metrics/,
      );
    });

    it('offers an HTTPRoute on the public prefixes with a long request timeout', async () => {
      const objs = await renderChart(['-f', ci('gitops-values.yaml')]);
      const route = one(objs, 'HTTPRoute').spec as {
        parentRefs: unknown[];
        rules: { matches: { path: { value: string } }[]; timeouts?: { request: string } }[];
      };
      assert.deepEqual(route.parentRefs, [{ name: 'public', namespace: 'gateways' }]);
      const values = route.rules[0]?.matches.map((m) => m.path.value);
      assert.deepEqual(values, ['/agents', '/ollama', '/health', '/v1', '/api']);
      assert.equal(route.rules[0]?.timeouts?.request, '3600s');
      assert.equal(gatewayEnv(objs).TRUST_PROXY, '1');
      await refused('httpRoute:\n  enabled: true\n', /httpRoute\.parentRefs: at least one Gateway/);
    });
  });

  describe('smaller points', () => {
    it('honours ollama.probes.startup.timeoutSeconds', async () => {
      const sts = one(
        await render('ollama:\n  probes:\n    startup:\n      timeoutSeconds: 17\n'),
        'StatefulSet',
        'ollama',
      );
      assert.equal(
        (container(sts, 'ollama').startupProbe as { timeoutSeconds?: number }).timeoutSeconds,
        17,
      );
    });

    it('renders storageClass "-" as an empty storageClassName, and a name quoted', async () => {
      const claim = (objs: K8sObject[]) =>
        (
          one(objs, 'StatefulSet', 'ollama').spec as {
            volumeClaimTemplates: { spec: { storageClassName?: string } }[];
          }
        ).volumeClaimTemplates[0]?.spec;
      assert.equal(
        claim(await render("ollama:\n  persistence:\n    storageClass: '-'\n"))?.storageClassName,
        '',
      );
      assert.equal(
        claim(await renderChart(['-f', ci('mig-values.yaml')]))?.storageClassName,
        'fast-ssd',
      );
      assert.equal('storageClassName' in (claim(await render()) ?? {}), false);
    });

    it('every ci values file pulls every model its gateway and agents name', async () => {
      for (const file of ciValuesFiles()) {
        const objs = await renderChart(['-f', file]);
        if (byKind(objs, 'StatefulSet').filter(isOllama).length === 0) continue;
        const env = gatewayEnv(objs);
        const pulled =
          configMapOf(objs, 'oag-ollama-agent-gateway-ollama-models').models?.split('\n') ?? [];
        const agents = configMapOf(objs, 'oag-ollama-agent-gateway-agents')['agents.yaml'] ?? '';
        const named = [
          env.OLLAMA_MODEL ?? '',
          ...((parse(agents) as { agents?: { model?: string }[] } | null)?.agents ?? []).map(
            (a) => a.model ?? env.OLLAMA_MODEL ?? '',
          ),
        ];
        for (const model of named)
          assert.ok(pulled.includes(model), `${path.basename(file)}: ${model} is pulled`);
      }
    });

    it('scales the gateway on CPU only: more gateways add no GPU', async () => {
      const hpa = one(await renderChart(['-f', ci('full-values.yaml')]), 'HorizontalPodAutoscaler');
      const metrics = (hpa.spec as { metrics: { type: string; resource?: { name: string } }[] })
        .metrics;
      assert.deepEqual(
        metrics.map((m) => `${m.type}/${m.resource?.name}`),
        ['Resource/cpu'],
      );
    });
  });

  describe('escape hatches', () => {
    let objs: K8sObject[] = [];
    before(async () => (objs = await renderChart(['-f', ci('gitops-values.yaml')])));
    const pods = () => [
      one(objs, 'Deployment'),
      one(objs, 'StatefulSet', 'ollama'),
      one(objs, 'Job'),
      ...byKind(objs, 'Pod'),
    ];

    it('extraEnv, extraEnvFrom, extraVolumes and extraVolumeMounts reach both workloads', () => {
      const gw = one(objs, 'Deployment');
      assert.equal(envOf(gw, 'gateway').NODE_EXTRA_CA_CERTS, '/etc/corp-ca/ca.crt');
      const gwc = container(gw, 'gateway') as {
        envFrom?: object[];
        volumeMounts?: { name: string }[];
      };
      assert.deepEqual(gwc.envFrom?.[1], {
        configMapRef: { name: 'corp-proxy-env', optional: true },
      });
      assert.ok(gwc.volumeMounts?.some((m) => m.name === 'corp-ca'));
      assert.ok(podSpecOf(gw).volumes?.some((v) => v.name === 'corp-ca'));
      const sts = one(objs, 'StatefulSet', 'ollama');
      for (const name of ['pull-models', 'ollama']) {
        assert.equal(envOf(sts, name).HTTPS_PROXY, 'http://proxy.corp.example:3128');
        const mounts = (container(sts, name) as { volumeMounts?: { name: string }[] }).volumeMounts;
        assert.ok(
          mounts?.some((m) => m.name === 'corp-ca'),
          name,
        );
      }
      assert.ok(podSpecOf(sts).volumes?.some((v) => v.name === 'corp-ca'));
    });

    it('refuses an extraEnv name the chart or gateway.config already sets', async () => {
      await refused(
        'gateway:\n  extraEnv: [{name: PORT, value: "1"}]\n',
        /gateway\.extraEnv: PORT is set by the chart/,
      );
      await refused(
        'gateway:\n  extraEnv: [{name: LOG_LEVEL, value: debug}]\n',
        /gateway\.extraEnv: LOG_LEVEL/,
      );
    });

    it('pod annotations and labels, priority classes, pull secrets and the global registry', () => {
      const gw = podTemplate(one(objs, 'Deployment')) as unknown as {
        metadata: { annotations: Record<string, string>; labels: Record<string, string> };
      };
      assert.equal(gw.metadata.annotations['example.com/owner'], 'ml-platform');
      assert.equal(gw.metadata.labels['cost-center'], 'ml');
      const sts = podTemplate(one(objs, 'StatefulSet', 'ollama')) as unknown as {
        metadata: { labels: Record<string, string> };
      };
      assert.equal(sts.metadata.labels['cost-center'], 'ml');
      assert.equal(
        (podSpecOf(one(objs, 'Deployment')) as { priorityClassName?: string }).priorityClassName,
        'agents-high',
      );
      assert.equal(
        (podSpecOf(one(objs, 'StatefulSet', 'ollama')) as { priorityClassName?: string })
          .priorityClassName,
        'agents-gpu',
      );
      for (const pod of pods()) {
        const spec = podSpecOf(pod) as { imagePullSecrets?: unknown };
        assert.deepEqual(spec.imagePullSecrets, [{ name: 'corp-registry' }], pod.kind);
        for (const c of [...podSpecOf(pod).containers, ...(podSpecOf(pod).initContainers ?? [])])
          assert.match(
            c.image,
            /^registry\.corp\.example:5000\/(ollama-agent-gateway\/ollama-agent-gateway|ollama\/ollama|curlimages\/curl)[:@]/,
            c.image,
          );
      }
    });

    it('serviceAccount options, extraObjects through tpl, claim annotations and retention', () => {
      const sa = one(objs, 'ServiceAccount') as K8sObject & {
        automountServiceAccountToken?: boolean;
      };
      assert.equal(
        sa.metadata.annotations?.['eks.amazonaws.com/role-arn'],
        'arn:aws:iam::123456789012:role/agents',
      );
      assert.equal(sa.metadata.labels?.team, 'ml-platform');
      assert.equal(sa.automountServiceAccountToken, false);
      const ca = byKind(objs, 'ConfigMap').find(
        (c) => c.metadata.name === 'corp-ca',
      ) as K8sObject & {
        metadata: { namespace?: string };
      };
      assert.equal(ca.metadata.namespace, 'default');
      const spec = one(objs, 'StatefulSet', 'ollama').spec as {
        persistentVolumeClaimRetentionPolicy: object;
        volumeClaimTemplates: { metadata: { annotations?: object } }[];
      };
      assert.deepEqual(spec.persistentVolumeClaimRetentionPolicy, {
        whenDeleted: 'Delete',
        whenScaled: 'Retain',
      });
      assert.deepEqual(spec.volumeClaimTemplates[0]?.metadata.annotations, {
        'backup.example.com/skip': 'true',
      });
    });

    it('rejects mistyped escape hatches in values.schema.json', async () => {
      await refused('gateway:\n  extraEnv: [{value: x}]\n', /name is required/);
      await refused(
        'podDisruptionBudget:\n  unhealthyPodEvictionPolicy: Never\n',
        /unhealthyPodEvictionPolicy/,
      );
      await refused(
        'ollama:\n  persistence:\n    retentionPolicy:\n      whenDeleted: Keep\n',
        /whenDeleted/,
      );
      await refused('imagePullSecrets: [regcred]\n', /imagePullSecrets\.0: Invalid type/);
    });
  });
});
