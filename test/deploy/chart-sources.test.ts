import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { ConfigError, loadConfig } from '../../src/config';
import { createSchemaRegistry } from '../../src/validation';
import {
  chartReadmePaths,
  parameterTable,
  renderProbeBudgetTable,
  withProbeBudgets,
  withTable,
} from '../../scripts/chart-docs';
import { helmTemplate, KUBE_VERSION, runHelm } from '../../scripts/lib/chart';
import { renderK8s } from '../../scripts/render-k8s';
import { CHART_FILE_COPIES } from '../../scripts/sync-chart-files';
import { CHART_DIR, DEFAULTS_FILE, ROOT } from './support/render';
import { AFTER_DRAIN_MS } from './support/shutdown';

const read = (p: string) => readFileSync(path.join(ROOT, p), 'utf8');

interface ConfigDecl {
  type: 'string' | 'integer' | 'boolean';
  default?: unknown;
  enum?: string[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  writeOnly?: boolean;
}
const configSchema = JSON.parse(read('schemas/config.schema.json')) as {
  properties: Record<string, ConfigDecl>;
};

/** Whether the service refuses `value` for `key` at start (its loadConfig names the key). */
let registry: ReturnType<typeof createSchemaRegistry> | undefined;
function serviceRefuses(key: string, value: string): boolean {
  try {
    loadConfig({ [key]: value }, (registry ??= createSchemaRegistry()));
    return false;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.message.includes(`${key}:`);
  }
}

/**
 * A value the service refuses for a variable, found through the keywords that constrain it in
 * its declaration (a value refused only by the service's later checks would not do: the chart
 * reads the schema alone); undefined for an unconstrained variable.
 */
function refusedValue(key: string, decl: ConfigDecl): string | undefined {
  const candidates: string[] = [];
  if (decl.type === 'integer') {
    if (decl.maximum !== undefined) candidates.push(String(decl.maximum + 1));
    if (decl.minimum !== undefined) candidates.push(String(decl.minimum - 1));
  } else if (decl.type === 'boolean') {
    // Not `yes`: YAML 1.1, which Helm reads values with, takes that for true.
    candidates.push('maybe');
  } else {
    if (decl.enum) candidates.push('not-listed');
    if (decl.pattern) candidates.push('bad value!!', '*');
    if (decl.maxLength !== undefined) candidates.push('x'.repeat(decl.maxLength + 1));
    if (decl.minLength !== undefined) candidates.push('x'.repeat(decl.minLength - 1));
  }
  return candidates.find((v) => serviceRefuses(key, v));
}

describe('chart sources stay in step with the service', function () {
  this.timeout(30_000);

  it('appVersion equals the package version', () => {
    const chart = parse(read('helm/ollama-agent-gateway/Chart.yaml')) as {
      appVersion: string;
      apiVersion: string;
    };
    const pkg = JSON.parse(read('package.json')) as { version: string };
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.appVersion, pkg.version);
  });

  for (const { source, copy } of CHART_FILE_COPIES) {
    it(`${copy} is an exact copy of ${source} (npm run chart:sync)`, () => {
      assert.ok(existsSync(path.join(ROOT, source)), `${source} is missing`);
      assert.equal(
        read(copy),
        read(source),
        `${copy} differs from ${source}: run npm run chart:sync`,
      );
    });
  }

  it('the README parameter table matches values.yaml (npm run chart:docs)', () => {
    const { values, readme } = chartReadmePaths(ROOT);
    const current = readFileSync(readme, 'utf8');
    const fresh = withTable(current, parameterTable(readFileSync(values, 'utf8')));
    assert.equal(current, fresh, 'README parameter table is stale: run npm run chart:docs');
  });

  it('the README probe-budget table matches a default render (npm run chart:docs)', async () => {
    const current = read('README.md');
    const fresh = withProbeBudgets(current, await renderProbeBudgetTable(ROOT));
    assert.equal(current, fresh, 'README probe-budget table is stale: run npm run chart:docs');
  });

  it('the README’s values example for an 8B model renders (strict values schema)', async () => {
    const readme = read('README.md');
    const at = readme.indexOf('### Helm on a GPU cluster');
    const example = /```yaml\n([\s\S]*?)```/.exec(readme.slice(at))?.[1];
    assert.ok(at >= 0 && example, 'the GPU section has a values example');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'oag-readme-values-'));
    try {
      writeFileSync(path.join(dir, 'my-values.yaml'), example);
      // helm install generates the key; a render without a cluster needs one given.
      const out = await helmTemplate([
        'gw',
        CHART_DIR,
        '-f',
        DEFAULTS_FILE,
        '-f',
        path.join(dir, 'my-values.yaml'),
      ]);
      assert.match(out, /nvidia\.com\/gpu: 1/);
      assert.match(out, /OLLAMA_MODEL: "llama3\.1:8b"/);
      // The install commands name the StatefulSet and its initContainer as the chart renders them.
      assert.match(readme, /statefulset\/gw-ollama-agent-gateway-ollama -c pull-models/);
      assert.match(out, /kind: StatefulSet\nmetadata:\n {2}name: gw-ollama-agent-gateway-ollama\n/);
      assert.match(out, /- name: pull-models\n/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an undocumented value', () => {
    assert.throws(
      () => parameterTable('a:\n  # -- documented\n  b: 1\n  c: 2\n'),
      /undocumented keys: a\.c/,
    );
  });

  it('k8s/ equals a fresh render of the chart (npm run k8s:render)', async () => {
    const files = await renderK8s(ROOT);
    const onDisk = readdirSync(path.join(ROOT, 'k8s', 'rendered')).map((f) => `rendered/${f}`);
    assert.deepEqual(
      onDisk.sort(),
      [...files.keys()].filter((f) => f.startsWith('rendered/')).sort(),
    );
    for (const [name, content] of files) {
      assert.equal(
        read(path.join('k8s', name)),
        content,
        `k8s/${name} drifted: run npm run k8s:render`,
      );
    }
  });
});

describe('values validation', function () {
  this.timeout(30_000);
  let dir = '';
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'oag-values-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const template = async (values: string) => {
    const file = path.join(dir, `v${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, values);
    // On top of the defaults file: its key is what a render without a cluster needs.
    return runHelm(['template', 'oag', CHART_DIR, '-f', DEFAULTS_FILE, '-f', file]);
  };

  const rejected: Array<[string, string, RegExp]> = [
    [
      'a string GPU count',
      'ollama:\n  gpu:\n    enabled: true\n    count: "1"\n',
      /ollama\.gpu\.count: Invalid type\. Expected: integer, given: string/,
    ],
    ['an unknown key', 'gateway:\n  replicas: 3\n', /Additional property replicas is not allowed/],
    [
      'a negative replica count',
      'gateway:\n  replicaCount: -1\n',
      /gateway\.replicaCount: Must be greater than or equal to 0/,
    ],
    ['a latest image tag', 'ollama:\n  image:\n    tag: latest\n', /ollama\.image\.tag/],
    [
      "a SHUTDOWN_DELAY_MS above the service's maximum",
      'gateway:\n  config:\n    SHUTDOWN_DELAY_MS: 200000\n',
      /gateway\.config\.SHUTDOWN_DELAY_MS: must be <= 120000 \(got 200000\)/,
    ],
    [
      'a LOG_LEVEL the service does not know',
      'gateway:\n  config:\n    LOG_LEVEL: verbose\n',
      /gateway\.config\.LOG_LEVEL: must be one of: .*\(got "verbose"\)/,
    ],
    [
      'a model name Ollama refuses',
      'ollama:\n  models:\n    - "bad!!name"\n',
      /ollama\.models\[0\]: must match pattern/,
    ],
  ];
  for (const [what, values, message] of rejected) {
    it(`helm template fails on ${what}`, async () => {
      const r = await template(values);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, message);
    });
  }

  it('wants the bearerTokenSecret when METRICS_TOKEN protects /metrics and a ServiceMonitor scrapes it', async () => {
    const file = path.join(dir, 'metrics-token.yaml');
    writeFileSync(
      file,
      'gateway:\n  secretEnv:\n    - { name: METRICS_TOKEN, secretName: m, secretKey: token }\nmetrics:\n  serviceMonitor:\n    enabled: true\n',
    );
    const render = (...extra: string[]) =>
      runHelm(['template', 'oag', CHART_DIR, '-f', DEFAULTS_FILE, '-f', file, ...extra]);
    const scraped = await render('--api-versions', 'monitoring.coreos.com/v1/ServiceMonitor');
    assert.notEqual(scraped.status, 0);
    assert.match(
      scraped.stderr,
      /metrics\.serviceMonitor\.bearerTokenSecret: METRICS_TOKEN protects/,
    );
    const withToken = await render(
      '--api-versions',
      'monitoring.coreos.com/v1/ServiceMonitor',
      '--set',
      'metrics.serviceMonitor.bearerTokenSecret.name=m,metrics.serviceMonitor.bearerTokenSecret.key=token',
    );
    assert.equal(withToken.status, 0, withToken.stderr);
    // No monitoring API: no ServiceMonitor is rendered, so nothing to send the token.
    const unscraped = await render();
    assert.equal(unscraped.status, 0, unscraped.stderr);
  });

  it('refuses every gateway.config value the service would refuse at start (loadConfig)', async () => {
    const bad: Record<string, string> = {};
    for (const [key, decl] of Object.entries(configSchema.properties)) {
      if (decl.writeOnly) continue;
      const value = refusedValue(key, decl);
      const constrained =
        decl.type === 'boolean' ||
        [decl.enum, decl.minimum, decl.maximum, decl.minLength, decl.maxLength, decl.pattern].some(
          (k) => k !== undefined,
        );
      assert.equal(value !== undefined, constrained, `${key}: a value the service refuses`);
      if (value !== undefined) bad[key] = value;
    }
    assert.ok(Object.keys(bad).length > 50, 'the schema constrains most variables');
    const r = await template(stringify({ gateway: { config: bad } }));
    assert.notEqual(r.status, 0);
    const named = Object.keys(bad).filter((key) =>
      new RegExp(`gateway\\.config\\.${key}: must`).test(r.stderr),
    );
    assert.deepEqual(named, Object.keys(bad), r.stderr);
  });

  it('accepts the values the service accepts, as text or YAML scalars', async () => {
    const model = 'registry.example.com:5000/team/model:v1';
    assert.ok(!serviceRefuses('OLLAMA_MODEL', model));
    const r = await template(
      [
        'gateway:',
        '  config:',
        "    SHUTDOWN_DELAY_MS: '120000'",
        '    LOG_LEVEL: debug',
        `    OLLAMA_MODEL: ${model}`,
        '    OLLAMA_PULL_ON_START: TRUE',
        '    REQUEST_TIMEOUT_MS: 300000',
        'ollama:',
        '  models:',
        `    - ${model}`,
        '    - hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M',
      ].join('\n'),
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`OLLAMA_MODEL: "${model}"`));
  });

  it('reports every cross-field problem at once', async () => {
    const r = await template(
      [
        'gateway:',
        '  terminationGracePeriodSeconds: 20',
        '  config:',
        '    API_KEYS: "aaaaaaaaaaaaaaaaaaaa:admin"',
        '    NOT_A_SETTING: "x"',
        'ollama:',
        '  enabled: false',
        'podDisruptionBudget:',
        '  minAvailable: 2',
        '  maxUnavailable: null',
      ].join('\n'),
    );
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /Invalid values \(5 problems\)/);
    assert.match(r.stderr, /gateway\.config\.API_KEYS: a secret never goes into a ConfigMap/);
    assert.match(
      r.stderr,
      /gateway\.config\.NOT_A_SETTING: the service does not read this variable/,
    );
    assert.match(r.stderr, /terminationGracePeriodSeconds: 20 s does not cover .*37000 ms/);
    assert.match(r.stderr, /ollama\.externalHost: required/);
    assert.match(r.stderr, /podDisruptionBudget\.minAvailable: 2 with 2 replicas/);
  });

  it('accepts a grace period longer than the shutdown settings plus what runs after the drain', async () => {
    const drainMs =
      Number(configSchema.properties.SHUTDOWN_DELAY_MS?.default) +
      Number(configSchema.properties.SHUTDOWN_TIMEOUT_MS?.default);
    const exact = (drainMs + AFTER_DRAIN_MS) / 1000;
    assert.ok(Number.isInteger(exact), 'the defaults add up to whole seconds');
    const at = await template(`gateway:\n  terminationGracePeriodSeconds: ${exact}\n`);
    assert.notEqual(at.status, 0, 'exactly delay + timeout + socket grace + stopServices');
    assert.match(at.stderr, new RegExp(`terminationGracePeriodSeconds: ${exact} s does not cover`));
    const r = await template(`gateway:\n  terminationGracePeriodSeconds: ${exact + 1}\n`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`terminationGracePeriodSeconds: ${exact + 1}\n`));
  });

  it('computes the grace period from the same values the ConfigMap hands the service', async () => {
    // A string and an odd number: the ConfigMap must carry them as the service reads them,
    // and the computation must round up from exactly those.
    const r = await template(
      [
        'gateway:',
        '  terminationGraceExtraSeconds: 3',
        '  config:',
        "    SHUTDOWN_DELAY_MS: '2500'",
        '    SHUTDOWN_TIMEOUT_MS: 61001',
      ].join('\n'),
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /SHUTDOWN_DELAY_MS: "2500"\n/);
    assert.match(r.stdout, /SHUTDOWN_TIMEOUT_MS: "61001"\n/);
    // ceil(63501 / 1000) + 3 = 67 > 63.501 + 2.
    assert.match(r.stdout, /terminationGracePeriodSeconds: 67\n/);
  });

  it('refuses a grace slack that leaves no second beyond the socket grace and stopServices', async () => {
    const least = AFTER_DRAIN_MS / 1000 + 1;
    const r = await template(`gateway:\n  terminationGraceExtraSeconds: ${least - 1}\n`);
    assert.notEqual(r.status, 0);
    assert.match(
      r.stderr,
      new RegExp(`terminationGraceExtraSeconds: Must be greater than or equal to ${least}`),
    );
    const ok = await template(`gateway:\n  terminationGraceExtraSeconds: ${least}\n`);
    assert.equal(ok.status, 0, ok.stderr);
  });
});

describe('supported Kubernetes versions', function () {
  this.timeout(30_000);
  it('Chart.yaml states them, and the chart refuses to render for an older cluster', async () => {
    const chart = parse(read('helm/ollama-agent-gateway/Chart.yaml')) as { kubeVersion: string };
    assert.equal(chart.kubeVersion, '>=1.31.0-0');
    const at = (v: string) =>
      runHelm(['template', 'oag', CHART_DIR, '-f', DEFAULTS_FILE, '--kube-version', v]);
    const old = await at('1.30.9');
    assert.notEqual(old.status, 0);
    assert.match(old.stderr, /chart requires kubeVersion: >=1\.31\.0-0/);
    assert.equal((await at('1.31.0')).status, 0);
    assert.equal((await at(KUBE_VERSION)).status, 0);
  });
});
