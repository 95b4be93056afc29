import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { createRequestContextStore } from '../../middleware/request-context';
import { createAgentsRuntime, type AgentsRuntime } from '../../services/agents/runtime';
import { createOllamaService, type OllamaClient } from '../../services/ollama-client';
import { createMetrics, type Metrics } from '../../services/metrics';
import type { ToolDefinition } from '../../services/tools/types';
import { createApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createSchemaRegistry, type SchemaRegistry } from '../../src/validation';
import { startOllamaSimulator, type OllamaSimulator } from './ollama-simulator';
import { createManualTimers, type ManualTimers } from './manual-timers';

export interface AgentsHarness {
  sim: OllamaSimulator;
  /** Base URL of the gateway, e.g. http://127.0.0.1:43121 */
  url: string;
  server: Server;
  agents: AgentsRuntime;
  /** The app's metrics, fed by the runtime's telemetry hooks. */
  metrics: Metrics;
  ollama: OllamaClient;
  timers: ManualTimers;
  schemas: SchemaRegistry;
  close(): Promise<void>;
}

export interface HarnessOptions {
  env?: Record<string, string>;
  extraTools?: ToolDefinition[];
}

/**
 * The whole gateway for agents tests: the Ollama simulator over HTTP, the real Ollama adapter,
 * the agents runtime with hand-fired timers, and the app listening on port 0.
 */
export async function startAgentsHarness(options: HarnessOptions = {}): Promise<AgentsHarness> {
  const sim = await startOllamaSimulator();
  const schemas = createSchemaRegistry();
  const config = loadConfig(
    {
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      OLLAMA_HOST: sim.url,
      OLLAMA_MODEL: 'llama3.2:3b',
      OLLAMA_RETRY_MAX: '1',
      OLLAMA_RETRY_BASE_MS: '1',
      ...options.env,
    },
    schemas,
  );
  const context = createRequestContextStore();
  const logger = createLogger({
    level: 'silent',
    format: 'json',
    context,
    stream: new PassThrough(),
  });
  const metrics: Metrics = createMetrics({
    registry: new Registry(),
    build: { version: '0.0.0' },
    defaultMetrics: false,
    knownAgents: () => agents.service.listAgents().map((a) => a.name),
    knownTools: () => agents.toolNames,
  });
  const telemetry = metrics;
  const ollama = createOllamaService({ config, telemetry, logger });
  const timers = createManualTimers();
  const agents: AgentsRuntime = createAgentsRuntime({
    config,
    schemas,
    ollama,
    models: { active: () => config.OLLAMA_MODEL },
    telemetry,
    logger,
    now: Date.now,
    timers,
    extraTools: options.extraTools,
    webhookRetryDelayMs: () => 0,
  });
  const app = createApp({
    config,
    logger,
    schemas,
    context,
    build: { name: 'test', version: '0.0.0' },
    metrics,
    startedAt: Date.now(),
    now: Date.now,
    agents,
  });
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    sim,
    url,
    server,
    agents,
    metrics,
    ollama,
    timers,
    schemas,
    async close() {
      agents.service.cancelAll();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await ollama.close();
      await sim.close();
    },
  };
}

/** One parsed server-sent event. */
export interface SseEvent {
  id: number;
  event: string;
  data: Record<string, unknown>;
}

/** Parses SSE text into events (comments such as `: ping` are skipped). */
export function parseSse(text: string): SseEvent[] {
  const out: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    const fields: Record<string, string> = {};
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const i = line.indexOf(': ');
      if (i > 0) fields[line.slice(0, i)] = line.slice(i + 2);
    }
    if (fields.event && fields.data) {
      out.push({
        id: Number(fields.id),
        event: fields.event,
        data: JSON.parse(fields.data) as Record<string, unknown>,
      });
    }
  }
  return out;
}
