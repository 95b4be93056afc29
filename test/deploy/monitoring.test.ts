import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { CHART_FILE_COPIES } from '../../scripts/sync-chart-files';
import { ROOT } from './support/render';

/**
 * Gauges whose value, with Redis, is the cluster's figure in every replica: the admission's
 * in-flight and queued generations (services/ollama/admission-redis.ts `stats()` returns the
 * shared snapshot) and the per-backend running and waiting generations (the KEDA query takes
 * their max by backend for the same reason). Summed over pods they multiply by the replicas.
 */
const CLUSTER_WIDE_GAUGES = [
  'active_requests',
  'inference_queue_depth',
  'ollama_backend_requests_running',
  'ollama_backend_requests_waiting',
];

/** Every PromQL expression of the dashboard's panels, with the panel's title. */
function dashboardExpressions(): { title: string; expr: string }[] {
  const dashboard = JSON.parse(
    readFileSync(path.join(ROOT, 'monitoring', 'grafana-dashboard.json'), 'utf8'),
  ) as { panels: { title: string; targets?: { expr: string }[] }[] };
  return dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })),
  );
}

/**
 * The aggregations applied directly to `metric`'s selector: `op by (labels) (metric{…})` or
 * `op(metric{…})`, with the labels kept.
 */
function aggregationsOf(expr: string, metric: string): { op: string; by: string[] }[] {
  const re = new RegExp(`\\b(\\w+)\\s*(?:by\\s*\\(([^)]*)\\))?\\s*\\(\\s*${metric}\\b`, 'g');
  return [...expr.matchAll(re)].map((m) => ({
    op: m[1] ?? '',
    by: (m[2] ?? '')
      .split(',')
      .map((l) => l.trim())
      .filter(Boolean),
  }));
}

describe('monitoring/grafana-dashboard.json', () => {
  it('never sums a cluster-wide gauge across pods (with Redis every pod reports the whole figure)', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const [, name] of readme.matchAll(/^\| `(\w+)` \| gauge \|[^\n]*from every replica/gm)) {
      assert.ok(CLUSTER_WIDE_GAUGES.includes(name ?? ''), `${name} is cluster-wide per the README`);
    }
    const exprs = dashboardExpressions();
    let checked = 0;
    for (const metric of CLUSTER_WIDE_GAUGES) {
      for (const { title, expr } of exprs.filter((e) =>
        new RegExp(`\\b${metric}\\b`).test(e.expr),
      )) {
        const aggs = aggregationsOf(expr, metric);
        assert.ok(aggs.length > 0, `${title}: ${metric} is aggregated (${expr})`);
        for (const { op, by } of aggs) {
          const perPod = by.includes('pod') || by.includes('instance');
          assert.ok(op !== 'sum' || perPod, `${title}: ${op} over pods of ${metric} (${expr})`);
        }
        checked += 1;
      }
    }
    assert.ok(checked >= 3, 'the in-flight panels and the queue panel are checked');
  });
});

describe('monitoring/ alert rule files', () => {
  const files = readdirSync(path.join(ROOT, 'monitoring'))
    .filter((f) => /^prometheus-rules.*\.yaml$/.test(f) && !f.endsWith('.test.yaml'))
    .sort();

  it('are each loaded by the promtool test and copied into the chart', () => {
    assert.ok(files.length >= 2, files.join(', '));
    const test = parse(
      readFileSync(path.join(ROOT, 'monitoring', 'prometheus-rules.test.yaml'), 'utf8'),
    ) as { rule_files: string[] };
    assert.deepEqual([...test.rule_files].sort(), files);
    const copied = CHART_FILE_COPIES.map((c) => c.source);
    for (const f of files) assert.ok(copied.includes(`monitoring/${f}`), `${f} is in the chart`);
  });

  it('alert when Prometheus cannot scrape a gateway pod and when no replica reaches Redis', () => {
    const rules = files.flatMap((f) =>
      (
        parse(readFileSync(path.join(ROOT, 'monitoring', f), 'utf8')) as {
          groups: { rules: { alert: string; expr: string; annotations: { runbook: string } }[] }[];
        }
      ).groups.flatMap((g) => g.rules),
    );
    const scrape = rules.find((r) => /\bup\{job=~"[^"]*ollama-agent-gateway/.test(r.expr));
    assert.ok(scrape, 'an alert on up of the gateway job');
    assert.match(scrape.expr, /== 0/);
    const redis = rules.find((r) => /\bredis_up\b/.test(r.expr));
    assert.ok(redis, 'an alert on redis_up');
    for (const r of [scrape, redis]) assert.ok(r.annotations.runbook.length > 40, r.alert);
  });
});
