/**
 * Generates the chart's documentation tables, so the prose never restates numbers by hand:
 * - the parameter table of helm/ollama-agent-gateway/README.md from the `# --` comments in
 *   values.yaml (the helm-docs convention). A key with a `# --` comment is one row (a map or
 *   list documented that way is shown whole); a map without one is descended into. A leaf
 *   without a comment is an error: every value is documented.
 * - the "Probe budgets" table of the main README's Deployment section from the chart's default
 *   render (`helm template` with ci/defaults-values.yaml: the defaults plus a key, which a render
 *   without a cluster needs): the probe timings and grace period the
 *   chart really sets.
 * Tests fail when either table is stale. Usage: npm run chart:docs
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  isMap,
  isPair,
  isScalar,
  parseAllDocuments,
  parseDocument,
  type Node,
  type Pair,
} from 'yaml';
import { CHART_PATH, helmTemplate, repoRoot } from './lib/chart';

export interface ParameterRow {
  key: string;
  default: string;
  description: string;
}

const START = '<!-- parameters:start -->';
const END = '<!-- parameters:end -->';

function descriptionOf(comment: string | null | undefined): string | undefined {
  if (!comment) return undefined;
  const lines = comment.split('\n').map((l) => l.replace(/^ ?/, ''));
  const at = lines.findIndex((l) => l.startsWith('-- '));
  if (at < 0) return undefined;
  return lines.slice(at).join(' ').replace(/^-- /, '').replace(/\s+/g, ' ').trim();
}

/** Rows for every documented value; throws naming each undocumented leaf. */
export function parameterRows(valuesYaml: string): ParameterRow[] {
  const doc = parseDocument(valuesYaml);
  const rows: ParameterRow[] = [];
  const missing: string[] = [];
  const walk = (node: Node | null, prefix: string, inherited: string | null | undefined): void => {
    if (!isMap(node)) return;
    node.items.forEach((pair: Pair, i: number) => {
      if (!isPair(pair) || !isScalar(pair.key)) return;
      const key = `${prefix}${String(pair.key.value)}`;
      // The first pair's comment is attached to the map itself by the parser.
      const comment = (pair.key as Node).commentBefore ?? (i === 0 ? inherited : undefined);
      const description = descriptionOf(comment);
      const value = pair.value as Node | null;
      if (description !== undefined) {
        rows.push({
          key,
          default: JSON.stringify(value === null ? null : value.toJSON()),
          description,
        });
      } else if (isMap(value) && value.items.length > 0) {
        walk(value, `${key}.`, value.commentBefore);
      } else {
        missing.push(key);
      }
    });
  };
  walk(doc.contents as Node, '', (doc.contents as Node | null)?.commentBefore ?? doc.commentBefore);
  if (missing.length > 0) throw new Error(`values.yaml: undocumented keys: ${missing.join(', ')}`);
  return rows;
}

export function parameterTable(valuesYaml: string): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  return [
    '| Key | Default | Description |',
    '| --- | --- | --- |',
    ...parameterRows(valuesYaml).map(
      (r) => `| \`${r.key}\` | \`${cell(r.default)}\` | ${cell(r.description)} |`,
    ),
  ].join('\n');
}

/** `text` with what lies between the two marker comments replaced by `content`. */
function replaceBetween(text: string, start: string, end: string, content: string): string {
  const at = text.indexOf(start);
  const until = text.indexOf(end);
  if (at < 0 || until < at) throw new Error(`README has no ${start} … ${end} markers`);
  return `${text.slice(0, at + start.length)}\n\n${content}\n\n${text.slice(until)}`;
}

/** The chart README with its parameter table between the markers replaced. */
export function withTable(readme: string, table: string): string {
  return replaceBetween(readme, START, END, table);
}

const BUDGETS_START = '<!-- probe-budgets:start -->';
const BUDGETS_END = '<!-- probe-budgets:end -->';

interface Probe {
  httpGet?: { path: string; port: string | number };
  tcpSocket?: { port: string | number };
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
}
interface Container {
  name: string;
  ports?: { name?: string; containerPort: number }[];
  envFrom?: { configMapRef?: { name: string } }[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command?: string[] } } };
}
interface Obj {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: {
    template?: { spec: { containers: Container[]; terminationGracePeriodSeconds?: number } };
  };
}

function probeSummary(probe: Probe | undefined, c: Container): string {
  if (!probe) return 'none';
  const port = probe.tcpSocket?.port;
  const portNumber = c.ports?.find((p) => p.name === port)?.containerPort ?? port;
  const what = probe.httpGet ? `\`${probe.httpGet.path}\`` : `TCP on ${String(portNumber)}`;
  // Kubernetes' defaults for fields a probe leaves out.
  const period = probe.periodSeconds ?? 10;
  const failures = probe.failureThreshold ?? 3;
  return `${what} every ${period} s, timeout ${probe.timeoutSeconds ?? 1} s, ${failures} failures (${period * failures} s)`;
}

/** The table, from the objects of a default render. */
export function probeBudgetTable(
  objs: readonly Obj[],
  schemaDefaults: Record<string, unknown>,
): string {
  const workload = (kind: string, component: string) => {
    const o = objs.find(
      (x) => x.kind === kind && x.metadata.labels?.['app.kubernetes.io/component'] === component,
    );
    const pod = o?.spec?.template?.spec;
    if (!pod?.containers[0]) throw new Error(`no ${component} ${kind} in the render`);
    return { pod, container: pod.containers[0] };
  };
  const gw = workload('Deployment', 'gateway');
  const ol = workload('StatefulSet', 'ollama');
  const cmName = gw.container.envFrom?.[0]?.configMapRef?.name;
  const env = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === cmName)?.data ?? {};
  const ms = (key: string) => Number(env[key] ?? schemaDefaults[key]);
  const delay = ms('SHUTDOWN_DELAY_MS');
  const timeout = ms('SHUTDOWN_TIMEOUT_MS');
  const grace = gw.pod.terminationGracePeriodSeconds;
  if (grace === undefined) throw new Error('the gateway sets no terminationGracePeriodSeconds');
  const slack = grace - Math.ceil((delay + timeout) / 1000);
  const row = (name: string, field: 'startupProbe' | 'readinessProbe' | 'livenessProbe') =>
    `| ${name} | ${probeSummary(gw.container[field], gw.container)} | ${probeSummary(ol.container[field], ol.container)} |`;
  return [
    '| probe | gateway | Ollama |',
    '| --- | --- | --- |',
    row('startup', 'startupProbe'),
    row('readiness', 'readinessProbe'),
    row('liveness', 'livenessProbe'),
    `| grace after SIGTERM | ${grace} s: SHUTDOWN_DELAY_MS ${delay} ms + SHUTDOWN_TIMEOUT_MS ${timeout} ms, rounded up to ${grace - slack} s, + ${slack} s slack | ${ollamaGrace(ol.pod, ol.container)} |`,
  ].join('\n');
}

/** Ollama's grace: its preStop wait (Ollama closes connections at SIGTERM) plus slack. */
function ollamaGrace(
  pod: { terminationGracePeriodSeconds?: number },
  container: Container,
): string {
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  const wait = Number(container.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
  if (!wait) return `${grace} s, no preStop wait`;
  return `${grace} s: a preStop wait of ${wait} s (the gateway's SHUTDOWN_TIMEOUT_MS: running generations finish before Ollama's SIGTERM closes them) + ${grace - wait} s slack`;
}

/** The main README with its probe-budget table between the markers replaced. */
export function withProbeBudgets(readme: string, table: string): string {
  return replaceBetween(readme, BUDGETS_START, BUDGETS_END, table);
}

/** Renders the chart with its defaults and builds the table. */
export async function renderProbeBudgetTable(root: string = repoRoot()): Promise<string> {
  const chart = path.join(root, CHART_PATH);
  const text = await helmTemplate(
    ['oag', chart, '--skip-tests', '-f', path.join(chart, 'ci', 'defaults-values.yaml')],
    root,
  );
  const objs = parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
  const schema = JSON.parse(
    readFileSync(path.join(root, 'schemas', 'config.schema.json'), 'utf8'),
  ) as { properties: Record<string, { default?: unknown }> };
  const defaults = Object.fromEntries(
    Object.entries(schema.properties).map(([k, v]) => [k, v.default]),
  );
  return probeBudgetTable(objs, defaults);
}

export function chartReadmePaths(root: string = repoRoot()): { values: string; readme: string } {
  return {
    values: path.join(root, CHART_PATH, 'values.yaml'),
    readme: path.join(root, CHART_PATH, 'README.md'),
  };
}

if (require.main === module) {
  const { values, readme } = chartReadmePaths();
  const table = parameterTable(readFileSync(values, 'utf8'));
  writeFileSync(readme, withTable(readFileSync(readme, 'utf8'), table));
  console.log(`wrote the parameter table of ${readme}`);
  const main = path.join(repoRoot(), 'README.md');
  void renderProbeBudgetTable().then((budgets) => {
    writeFileSync(main, withProbeBudgets(readFileSync(main, 'utf8'), budgets));
    console.log(`wrote the probe-budget table of ${main}`);
  });
}
