import { readdirSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CHART_PATH, helmTemplate, repoRoot } from '../../../scripts/lib/chart';

/** A rendered Kubernetes object, loosely typed: tests read the fields they check. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export const ROOT = repoRoot();
export const CHART_DIR = path.join(ROOT, CHART_PATH);
export const RELEASE = 'oag';
/** The CRD APIs a cluster with the Prometheus operator and KEDA announces. */
export const MONITORING_APIS = [
  '--api-versions',
  'monitoring.coreos.com/v1/ServiceMonitor',
  '--api-versions',
  'monitoring.coreos.com/v1/PrometheusRule',
  '--api-versions',
  'keda.sh/v1alpha1',
];

/** The values matrix: every file in the chart's ci/ folder. */
export function ciValuesFiles(): string[] {
  return readdirSync(path.join(CHART_DIR, 'ci'))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => path.join(CHART_DIR, 'ci', f));
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0)
        throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

export async function renderChart(args: readonly string[] = []): Promise<K8sObject[]> {
  return parseManifests(await helmTemplate([RELEASE, CHART_DIR, ...MONITORING_APIS, ...args]));
}

/** The defaults as a render without a cluster can have them: ci/defaults-values.yaml (a key). */
export const DEFAULTS_FILE = path.join(CHART_DIR, 'ci', 'defaults-values.yaml');
