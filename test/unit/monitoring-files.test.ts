import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { createMetrics } from '../../services/metrics/metrics';

const root = path.join(__dirname, '..', '..', '..');
const read = (file: string): string => readFileSync(path.join(root, file), 'utf8');

/** Every metric name (histograms with their _bucket/_sum/_count series) the app exports. */
async function exportedNames(): Promise<Set<string>> {
  const metrics = createMetrics({ registry: new Registry(), build: { version: '0.0.0' } });
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram')
      for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

/** Metric-looking names in a PromQL expression (our prefixes and the process ones). */
const METRIC_TOKEN =
  /\b(?:http|inference|agent|ollama|model|rate_limit|errors|webhook|active|app|process|nodejs)_[a-z0-9_]*\b/g;

interface Rule {
  alert: string;
  expr: string;
  annotations?: Record<string, string>;
}

describe('monitoring files', () => {
  describe('monitoring/prometheus-rules.yaml', () => {
    const rules = (
      parse(read('monitoring/prometheus-rules.yaml')) as { groups: { rules: Rule[] }[] }
    ).groups.flatMap((g) => g.rules);

    it('has the alerts the runbooks promise, each with a summary and a runbook line', () => {
      const names = rules.map((r) => r.alert);
      for (const alert of [
        'OllamaDown',
        'GatewayHighErrorRate',
        'InferenceQueueSaturated',
        'CircuitBreakerOpen',
        'SlowTimeToFirstToken',
      ]) {
        assert.ok(names.includes(alert), alert);
      }
      for (const r of rules) {
        assert.ok(r.annotations?.summary, `${r.alert} summary`);
        assert.ok((r.annotations?.runbook ?? '').length > 40, `${r.alert} runbook`);
      }
    });

    it('uses only metrics the app exports', async () => {
      const exported = await exportedNames();
      for (const r of rules) {
        for (const name of r.expr.match(METRIC_TOKEN) ?? []) {
          assert.ok(exported.has(name), `${r.alert} uses ${name}, which is not exported`);
        }
      }
    });
  });

  describe('monitoring/grafana-dashboard.json', () => {
    interface Panel {
      title: string;
      type: string;
      targets?: { expr: string }[];
    }
    const dashboard = JSON.parse(read('monitoring/grafana-dashboard.json')) as { panels: Panel[] };
    const panels = dashboard.panels.filter((p) => p.type !== 'row');

    it('has the panels an SRE needs', () => {
      const titles = panels.map((p) => p.title.toLowerCase()).join('\n');
      for (const want of [
        'request rate',
        'errors',
        'p50 / p95 / p99',
        'time to first token',
        'tokens per second',
        'queue depth',
        'queue wait',
        'loaded models',
        'vram',
        'agent runs by stop reason',
      ]) {
        assert.ok(titles.includes(want), want);
      }
    });

    it('queries only metrics the app exports', async () => {
      const exported = await exportedNames();
      const used = new Set<string>();
      for (const p of panels) {
        assert.ok(p.targets && p.targets.length > 0, `${p.title} has no query`);
        for (const t of p.targets) {
          for (const name of t.expr.match(METRIC_TOKEN) ?? []) {
            used.add(name);
            assert.ok(exported.has(name), `${p.title} uses ${name}, which is not exported`);
          }
        }
      }
      assert.ok(used.size >= 25, `${used.size} metrics on the dashboard`);
    });
  });
});
