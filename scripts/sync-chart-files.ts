/**
 * Copies into the chart the files it reads with `.Files.Get` (Helm can read only inside the
 * chart folder): the service's config schema (validateValues checks `gateway.config` against
 * it) and the alert rule files and dashboard from `monitoring/`. A test fails when a copy differs.
 * Usage: npm run chart:sync
 */
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { CHART_PATH, repoRoot } from './lib/chart';

export const CHART_FILE_COPIES: ReadonlyArray<{ source: string; copy: string }> = [
  { source: 'schemas/config.schema.json', copy: 'files/config.schema.json' },
  { source: 'monitoring/prometheus-rules.yaml', copy: 'files/prometheus-rules.yaml' },
  {
    source: 'monitoring/prometheus-rules-availability.yaml',
    copy: 'files/prometheus-rules-availability.yaml',
  },
  { source: 'monitoring/grafana-dashboard.json', copy: 'files/grafana-dashboard.json' },
].map(({ source, copy }) => ({ source, copy: path.join(CHART_PATH, copy) }));

export function syncChartFiles(root: string = repoRoot()): string[] {
  return CHART_FILE_COPIES.map(({ source, copy }) => {
    copyFileSync(path.join(root, source), path.join(root, copy));
    return copy;
  });
}

if (require.main === module) {
  for (const copy of syncChartFiles()) console.log(`wrote ${copy}`);
}
