import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ErrorCode } from '../../src/errors';
import { RUN_STATUSES, STOP_REASONS } from '../agents';
import type { InferenceEvent, Telemetry } from './telemetry';
import * as buckets from './buckets';
import { createInstruments } from './instruments';
import {
  createCappedLabeler,
  createEnumLabeler,
  createModelLabeler,
  createNameLabeler,
  HTTP_METHODS,
} from './labels';
import { registerStateGauges, type MetricsState } from './state-gauges';
import { registerBackendMetrics } from './backend-metrics';

export type { MetricsState } from './state-gauges';

export interface MetricsOptions {
  /** The app's own registry (never prom-client's global one). */
  registry: Registry;
  /** For `app_info`. */
  build: { version: string };
  /** For `app_info`; the running Node by default. */
  nodeVersion?: string;
  /** Installed model names Ollama lists (cached); any other model is labelled `other`. */
  knownModels?: () => readonly string[];
  /** Registered agent names; `inline` is always allowed; others are `other`. */
  knownAgents?: () => readonly string[];
  /** Registered tool names; others are `other`. */
  knownTools?: () => readonly string[];
  /** Ids of the configured API keys; `anonymous` is always allowed; others are `other`. */
  knownKeyIds?: () => readonly string[];
  /** Getters the state gauges read at scrape time. */
  state?: MetricsState;
  /** Node process metrics (`process_*`, `nodejs_*`); on unless false. */
  defaultMetrics?: boolean;
}

export type HttpLabel = 'method' | 'route' | 'status_code';

/** The HTTP instruments, recorded by middleware/http-metrics. */
export interface HttpInstruments {
  requests: Counter<HttpLabel>;
  duration: Histogram<HttpLabel>;
  inFlight: Gauge;
  /** A request method, or `other` (Node accepts ~30 methods; only these are worth a series). */
  method(method: string): string;
}

/** Everything that records metrics; it is also the app's {@link Telemetry}. */
export interface Metrics extends Telemetry {
  readonly registry: Registry;
  readonly http: HttpInstruments;
  /** One error response, by catalogued code (the error handler's `onError`). */
  error(code: ErrorCode): void;
  /**
   * One request refused by a rate limiter. Pass the route template or the limiter's budget
   * name, never a raw URL; past 50 distinct values new ones are labelled `other`.
   */
  rateLimited(route: string): void;
  /** One request served unlimited because the rate-limit store failed (fail open). */
  rateLimitStoreError(): void;
  /** The label a model name gets (`other` unless Ollama lists it). */
  modelLabel(model: string): string;
  /**
   * One Redis command (RedisConnection's command listener): its group (past 20 distinct groups
   * new ones are labelled `other`), duration and whether Redis answered.
   */
  redisCommand(group: string, seconds: number, ok: boolean): void;
  /** Tokens of one generation for an API key id (`tokens_total{key_id, model, kind}`). */
  keyTokens(
    keyId: string,
    model: string,
    tokens: { promptTokens: number; completionTokens: number },
  ): void;
}

/** Outcomes of calls that reached Ollama; the others were refused before and took no time there. */
const RAN_OUTCOMES = new Set<InferenceEvent['outcome']>([
  'success',
  'error',
  'timeout',
  'cancelled',
]);
const RATE_LIMITED_ROUTES_MAX = 50;
const REDIS_GROUPS_MAX = 20;
const MISNAMED_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

const isCount = (n: number | undefined): n is number =>
  n !== undefined && Number.isFinite(n) && n > 0;
const isDuration = (n: number | undefined): n is number =>
  n !== undefined && Number.isFinite(n) && n >= 0;

/**
 * Builds every metric of the service on `registry` and returns the recorder. Hooks never throw
 * and never do I/O: label values go through bounded mappings and bad numbers are dropped.
 */
export function createMetrics(options: MetricsOptions): Metrics {
  const { registry } = options;
  const registers = [registry];
  const none = (): readonly string[] => [];
  const modelLabel = createModelLabeler(options.knownModels ?? none);
  const agentLabel = createNameLabeler(options.knownAgents ?? none, ['inline']);
  const toolLabel = createNameLabeler(options.knownTools ?? none);
  const keyLabel = createNameLabeler(options.knownKeyIds ?? none, ['anonymous']);
  const statusLabel = createEnumLabeler(RUN_STATUSES);
  const stopReasonLabel = createEnumLabeler(STOP_REASONS);
  const methodLabel = createEnumLabeler(HTTP_METHODS);
  const routeLabel = createCappedLabeler(RATE_LIMITED_ROUTES_MAX);
  const redisGroupLabel = createCappedLabeler(REDIS_GROUPS_MAX);
  // MCP servers are named in AGENTS_FILE (at most 32 by its schema).
  const mcpServerLabel = createCappedLabeler(32);

  if (options.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    // prom-client names these three gauges `_total`, which Prometheus reserves for counters
    // (`promtool check metrics` rejects them); the same counts by type remain as
    // `nodejs_active_{handles,requests,resources}`, and sum() gives the totals.
    for (const name of MISNAMED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  }
  registerStateGauges(registry, options.state ?? {});
  const routing = registerBackendMetrics(registry, options.state?.backends);

  const http: HttpInstruments = {
    requests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by route template and status.',
      labelNames: ['method', 'route', 'status_code'],
      registers,
    }),
    duration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from receiving a request to the end of its response (streams: to the last event).',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [...buckets.HTTP_DURATION_BUCKETS],
      registers,
    }),
    inFlight: new Gauge({
      name: 'http_requests_in_flight',
      help: 'HTTP requests being served now.',
      registers,
    }),
    method: methodLabel,
  };

  const m = createInstruments(registry);
  new Gauge({
    name: 'app_info',
    help: 'Build information; always 1.',
    labelNames: ['version', 'node_version'],
    registers,
  }).set(
    { version: options.build.version, node_version: options.nodeVersion ?? process.version },
    1,
  );

  return {
    registry,
    http,
    modelLabel,
    error: (code) => m.errors.inc({ code }),
    rateLimited: (route) => m.rateLimitHits.inc({ route: routeLabel(route) }),
    rateLimitStoreError: () => m.rateLimitStoreErrors.inc(),
    redisCommand(group, seconds, ok) {
      if (!isDuration(seconds)) return;
      m.redisCommands.observe(
        { group: redisGroupLabel(group), outcome: ok ? 'ok' : 'error' },
        seconds,
      );
    },
    keyTokens(keyId, model, tokens) {
      const labels = { key_id: keyLabel(keyId), model: modelLabel(model) };
      if (isCount(tokens.promptTokens)) {
        m.keyTokens.inc({ ...labels, kind: 'prompt' }, tokens.promptTokens);
      }
      if (isCount(tokens.completionTokens)) {
        m.keyTokens.inc({ ...labels, kind: 'completion' }, tokens.completionTokens);
      }
    },

    inference(e) {
      const model = modelLabel(e.model);
      const api = e.api ?? 'agents';
      m.inferenceRequests.inc({ api, model, operation: e.operation, outcome: e.outcome });
      if (RAN_OUTCOMES.has(e.outcome) && isDuration(e.durationS)) {
        m.inferenceDuration.observe({ model, operation: e.operation }, e.durationS);
      }
      if (isDuration(e.queueWaitS)) m.queueWait.observe({ api }, e.queueWaitS);
      if (isDuration(e.ttftS)) m.ttft.observe({ api, model }, e.ttftS);
      if (isCount(e.promptTokens)) m.tokens.inc({ api, model, kind: 'prompt' }, e.promptTokens);
      if (isCount(e.completionTokens))
        m.tokens.inc({ api, model, kind: 'completion' }, e.completionTokens);
      if (isCount(e.completionTokens) && isCount(e.evalDurationNs)) {
        m.tokensPerSecond.observe({ model }, e.completionTokens / (e.evalDurationNs / 1e9));
      }
      if (isDuration(e.loadDurationNs) && e.loadDurationNs / 1e9 > buckets.MODEL_LOAD_MIN_S) {
        m.modelLoad.observe({ model }, e.loadDurationNs / 1e9);
      }
    },
    healthCheck(e) {
      if (isDuration(e.durationS)) m.healthCheck.observe(e.durationS);
    },
    modelSwitch(e) {
      m.switches.inc({ outcome: e.outcome });
      if (isDuration(e.durationS)) m.switchDuration.observe(e.durationS);
    },
    modelSwitchPropagated: () => m.switchesPropagated.inc(),
    agentRun(e) {
      const agent = agentLabel(e.agent);
      const stopReason = stopReasonLabel(e.stopReason === '' ? 'none' : e.stopReason);
      m.runs.inc({ agent, status: statusLabel(e.status), stop_reason: stopReason });
      if (isDuration(e.durationS)) m.runDuration.observe({ agent }, e.durationS);
    },
    agentStep(e) {
      m.steps.inc({ agent: agentLabel(e.agent), kind: e.kind });
    },
    toolCall(e) {
      m.toolCalls.inc({ tool: toolLabel(e.tool), outcome: e.outcome });
    },
    webhook(e) {
      m.webhooks.inc({ outcome: e.outcome });
    },
    runCoordination(e) {
      if (e.kind === 'takeover') m.runTakeovers.inc();
      else m.runRemoteCancels.inc({ direction: e.kind === 'cancel_sent' ? 'sent' : 'received' });
    },
    route: routing.route,
    modelLoad: routing.modelLoad,
    backendRemoved: routing.backendRemoved,
    mcpFailure(e) {
      m.mcpFailures.inc({ server: mcpServerLabel(e.server) });
    },
  };
}
