import type { RunEvent } from '../../services/agents/events';
import type { RunHandle } from '../../services/agents/run-handle';
import type { IdempotencyRepository } from '../../services/agents/idempotency';
import type { RunRepository } from '../../services/agents/run-repository';
import type { Server } from 'node:http';
import type { AgentsRuntime } from '../../services/agents/runtime';
import type { OllamaClient } from '../../services/ollama/client';
import type { Metrics } from '../../services/metrics/metrics';
import type { ToolDefinition } from '../../services/tools/types';
import type { SchemaRegistry } from '../../src/validation';
import { buildTestApp } from './build-app';
import type { ManualClock } from './manual-clock';
import type { OllamaSimulator } from './ollama-simulator';

export interface AgentsHarness {
  sim: OllamaSimulator;
  /** Base URL of the gateway, e.g. http://127.0.0.1:43121 */
  url: string;
  server: Server;
  agents: AgentsRuntime;
  /** The app's metrics, fed by the runtime's telemetry hooks. */
  metrics: Metrics;
  ollama: OllamaClient;
  clock: ManualClock;
  schemas: SchemaRegistry;
  close(): Promise<void>;
}

export interface HarnessOptions {
  env?: Record<string, string>;
  extraTools?: ToolDefinition[];
  /** Another harness's simulator (default: a new one, closed with this harness). */
  simulator?: OllamaSimulator;
  /** A run repository shared with other harnesses: they play replicas of one gateway. */
  runs?: RunRepository;
  /** The Idempotency-Key repository (default: in memory). */
  idempotency?: IdempotencyRepository;
}

/**
 * The whole gateway for agents tests (buildTestApp: the Ollama simulator over HTTP, the real
 * Ollama adapter, the agents runtime with a manual clock), listening on port 0, with one
 * quick retry against Ollama.
 */
export async function startAgentsHarness(options: HarnessOptions = {}): Promise<AgentsHarness> {
  const t = await buildTestApp({
    env: {
      OLLAMA_MODEL: 'llama3.2:3b',
      OLLAMA_RETRY_MAX: '1',
      OLLAMA_RETRY_BASE_MS: '1',
      ...options.env,
    },
    extraTools: options.extraTools,
    ...(options.simulator ? { simulator: options.simulator } : {}),
    ...(options.runs ? { runs: options.runs } : {}),
    ...(options.idempotency ? { idempotency: options.idempotency } : {}),
  });
  const running = await t.listen();
  return {
    sim: t.sim as OllamaSimulator,
    url: running.url,
    server: running.server,
    agents: t.agents,
    metrics: t.metrics,
    ollama: t.ollama,
    clock: t.clock,
    schemas: t.schemas,
    close: () => t.close(),
  };
}

/** A client tool of the run request (`tools[]`): the caller runs it and sends its output back. */
export const lookupOrder = {
  type: 'client',
  name: 'lookup_order',
  description: 'Looks an order up in the caller’s system.',
  parameters: {
    type: 'object',
    properties: { order_id: { type: 'string' } },
    required: ['order_id'],
    additionalProperties: false,
  },
};

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

/** The run's stored events after `after`, as a replaying follower gets them. */
export async function storedEvents(handle: RunHandle, after = 0): Promise<RunEvent[]> {
  const events: RunEvent[] = [];
  (await handle.follow(after, (event) => events.push(event)))();
  return events;
}
