import type { Express } from 'express';
import { Registry } from 'prom-client';
import { createRequestContextStore } from '../../src/request-context';
import { createMetrics, type Metrics, type MetricsOptions } from '../../services/metrics/metrics';
import type { OllamaHealthSnapshot } from '../../services/ollama/types';
import { createApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createSchemaRegistry } from '../../src/validation';
import { composeAppDeps } from './build-app';

/** A healthy cached Ollama state for the metrics' scrape-time gauges; override what a test needs. */
export function healthSnapshot(over: Partial<OllamaHealthSnapshot> = {}): OllamaHealthSnapshot {
  return {
    status: 'up',
    checkedAt: 1,
    latencyMs: 3,
    version: '0.12.0',
    loadedModels: [],
    loadedModelsStale: false,
    installedModels: ['llama3.2:latest', 'qwen3:8b'],
    activeModelInstalled: true,
    lastError: null,
    ...over,
  };
}

export const TEST_BUILD = { name: 'ollama-agent-gateway', version: '9.9.9' };

/** A new app with its own registry and metrics (options reach createMetrics), for metrics tests. */
export function buildMetricsApp(
  options: { env?: Record<string, string> } & Partial<
    Omit<MetricsOptions, 'registry' | 'build'>
  > = {},
): { app: Express; metrics: Metrics; registry: Registry } {
  const { env = {}, ...metricsOptions } = options;
  const schemas = createSchemaRegistry();
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env }, schemas);
  const context = createRequestContextStore();
  const registry = new Registry();
  const metrics = createMetrics({
    registry,
    build: TEST_BUILD,
    nodeVersion: 'v20.0.0',
    ...metricsOptions,
  });
  const logger = createLogger({ level: 'silent', format: 'json', context });
  const deps = composeAppDeps({ config, schemas, logger, context, build: TEST_BUILD });
  const app = createApp({ ...deps, metrics, startedAt: 0, now: () => 0 });
  return { app, metrics, registry };
}
