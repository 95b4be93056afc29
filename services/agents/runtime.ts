import type { Clock, TimerHandle } from '../../src/clock';
import { numCtxFor, type Config } from '../../src/config';
import type { Logger } from '../../src/logger';
import type { SchemaRegistry } from '../../src/validation';
import { createSsrfGuard, type ResolveHost } from '../net';
import type { ModelManager, OllamaService } from '../ollama';
import type { Telemetry } from '../metrics';
import type { RedisConnection } from '../stores';
import { createBuiltinTools, createMcpSource, createToolRegistry } from '../tools';
import type { McpServerStatus } from '../tools';
import type { ToolDefinition } from '../tools';
import { createMemoryIdempotencyRepository, type IdempotencyRepository } from './idempotency';
import { createRedisIdempotencyRepository } from './idempotency-redis';
import { createAgentRegistry, loadAgentsFile, loadMcpServers } from './registry';
import { createMemoryRunRepository, sweepPeriodMs, type RunRepository } from './run-repository';
import { createRedisRunRepository } from './run-repository-redis';
import { createAgentRunner } from './runner';
import type { TokenRecorder } from './model-step';
import { createAgentsService, type AgentsService } from './service';
import { createWebhookSender, type WebhookSenderOptions } from './webhooks';

export type AgentsConfig = Pick<
  Config,
  | 'AGENTS_FILE'
  | 'HTTP_TOOL_ALLOWLIST'
  | 'RUNS_MAX'
  | 'RUNS_TTL_MS'
  | 'RUN_LEASE_MS'
  | 'RUN_ACTION_TTL_MAX_MS'
  | 'GROUPTHINK_MAX_SAMPLES'
  | 'MCP_ALLOWLIST'
  | 'MCP_REFRESH_INTERVAL_MS'
  | 'MCP_TIMEOUT_MS'
  | 'MCP_MAX_RESULT_CHARS'
  | 'WEBHOOK_SECRET'
  | 'WEBHOOK_ALLOWLIST'
  | 'WEBHOOK_MAX_ATTEMPTS'
  | 'WEBHOOK_TIMEOUT_MS'
  | 'IDEMPOTENCY_TTL_MS'
  | 'STREAM_HEARTBEAT_MS'
  | 'OLLAMA_NUM_CTX'
  | 'OLLAMA_NUM_CTX_MODELS'
>;

export interface AgentsRuntimeOptions {
  config: AgentsConfig;
  schemas: SchemaRegistry;
  ollama: OllamaService;
  models: Pick<ModelManager, 'active'>;
  telemetry: Telemetry;
  logger: Logger;
  /** Time, run and tool deadlines, SSE heartbeats. */
  clock: Clock;
  /** Tools beyond the built-in ones. */
  extraTools?: readonly ToolDefinition[];
  /** DNS resolver for the SSRF guards (tests). */
  resolve?: ResolveHost;
  /**
   * Where runs live (default: in memory). Replicas that share one repository resume each
   * other's paused runs.
   */
  runs?: RunRepository;
  /** Where Idempotency-Keys live (default: in memory, or Redis with `redis`); tests pass one. */
  idempotency?: IdempotencyRepository;
  /** Webhook retry backoff (tests use 0). */
  webhookRetryDelayMs?: WebhookSenderOptions['retryDelayMs'];
  /** Counts each model step's tokens for the run's owner (services/usage). */
  usage?: TokenRecorder;
  /** The replica's Redis connection: runs and idempotency keys are shared through it. */
  redis?: RedisConnection;
}

/** What the router needs. */
export interface AgentsRuntime {
  service: AgentsService;
  clock: Clock;
  heartbeatMs: number;
  /** Names of the registered tools (bounded metric labels). */
  toolNames: readonly string[];
  /** The MCP servers of AGENTS_FILE and what each offers now (for /health/detailed). */
  mcpStatus(): McpServerStatus[];
  /**
   * Starts the background work on the clock's unref'd timers: expiry sweeps, leases, takeovers,
   * and the listing of the MCP servers' tools now and on MCP_REFRESH_INTERVAL_MS (never fails).
   */
  start(): void;
  /** Lists the MCP servers' tools now (joins a listing under way); never rejects. */
  refreshMcp(): Promise<void>;
  /** Stops the timers, the run work and the MCP refreshes, and closes the MCP connections. */
  stop(): Promise<void>;
}

/**
 * Builds the agents runtime from configuration: tools, AGENTS_FILE (read once, here, at
 * start), the run and idempotency stores, the webhook sender and the runner.
 * @throws AgentsFileError when AGENTS_FILE is unreadable or invalid.
 */
export function createAgentsRuntime(options: AgentsRuntimeOptions): AgentsRuntime {
  const { config, schemas, telemetry, logger, clock } = options;
  const { now } = clock;
  const mcpServers = config.AGENTS_FILE ? loadMcpServers(config.AGENTS_FILE, schemas) : [];
  // MCP URLs pass the webhooks' SSRF guard policy: https to public addresses, or a trusted host.
  const mcpGuard = createSsrfGuard({
    allowHosts: null,
    trustedHosts: config.MCP_ALLOWLIST,
    resolve: options.resolve,
  });
  const sources = mcpServers.map((server) =>
    createMcpSource({
      server,
      guard: mcpGuard,
      schemas,
      clock,
      logger,
      refreshMs: config.MCP_REFRESH_INTERVAL_MS,
      timeoutMs: config.MCP_TIMEOUT_MS,
      maxResultChars: config.MCP_MAX_RESULT_CHARS,
      onFailure: (name) => telemetry.mcpFailure({ server: name }),
    }),
  );
  const tools = createToolRegistry({
    sources,
    tools: [
      ...createBuiltinTools({
        now,
        httpAllowlist: config.HTTP_TOOL_ALLOWLIST,
        resolve: options.resolve,
      }),
      ...(options.extraTools ?? []),
    ],
    schemas,
  });
  const numCtx = {
    for: (model: string) => numCtxFor(config, model),
    defaultModel: () => options.models.active(),
  };
  const agents = createAgentRegistry({
    agents: config.AGENTS_FILE
      ? loadAgentsFile(config.AGENTS_FILE, {
          toolNames: tools.names(),
          schemas,
          numCtx,
          mcpServers: mcpServers.map((s) => s.name),
        })
      : [],
  });
  const webhookGuard = createSsrfGuard({
    allowHosts: null,
    trustedHosts: config.WEBHOOK_ALLOWLIST,
    resolve: options.resolve,
  });
  const webhooks = config.WEBHOOK_SECRET
    ? createWebhookSender({
        secret: config.WEBHOOK_SECRET,
        maxAttempts: config.WEBHOOK_MAX_ATTEMPTS,
        timeoutMs: config.WEBHOOK_TIMEOUT_MS,
        guard: webhookGuard,
        telemetry,
        logger,
        clock,
        retryDelayMs: options.webhookRetryDelayMs,
      })
    : null;
  const runner = createAgentRunner({
    ollama: options.ollama,
    tools,
    telemetry,
    logger,
    clock,
    usage: options.usage,
  });
  const { redis } = options;
  const runs: RunRepository =
    options.runs ??
    (redis
      ? createRedisRunRepository({
          redis,
          max: config.RUNS_MAX,
          ttlMs: config.RUNS_TTL_MS,
          leaseMs: config.RUN_LEASE_MS,
          clock,
          logger,
        })
      : createMemoryRunRepository({ max: config.RUNS_MAX, ttlMs: config.RUNS_TTL_MS, now }));
  const idempotency: IdempotencyRepository =
    options.idempotency ??
    (redis
      ? createRedisIdempotencyRepository({ redis, ttlMs: config.IDEMPOTENCY_TTL_MS, now })
      : // Keys outlive runs only as long as needed; bounded like the runs, with room for churn.
        createMemoryIdempotencyRepository({
          ttlMs: config.IDEMPOTENCY_TTL_MS,
          max: config.RUNS_MAX * 10,
          now,
        }));
  const service = createAgentsService({
    agents,
    tools,
    schemas,
    runner,
    runs,
    idempotency,
    webhooks,
    webhookGuard,
    models: options.models,
    numCtx,
    logger,
    now,
    clock,
    telemetry,
    // A lease lapses at most RUN_LEASE_MS after its replica died; a quarter of it later, some
    // replica has claimed the run.
    ...(redis ? { takeoverEveryMs: Math.max(100, Math.floor(config.RUN_LEASE_MS / 4)) } : {}),
    cancelWaitMs: config.RUN_LEASE_MS * 2,
    maxActionTtlMs: config.RUN_ACTION_TTL_MAX_MS,
    maxSamples: config.GROUPTHINK_MAX_SAMPLES,
    mcpServers: mcpServers.map((s) => s.name),
  });
  const sweeps: TimerHandle[] = [];
  const sweep = (what: string, expire: () => Promise<number>) => (): void => {
    expire().catch((err: unknown) => logger.debug('expiry sweep failed', { what, error: err }));
  };
  return {
    service,
    clock,
    heartbeatMs: config.STREAM_HEARTBEAT_MS,
    toolNames: tools.names(),
    mcpStatus: () => sources.map((s) => s.status()),
    start() {
      sources.forEach((s) => s.start());
      if (sweeps.length > 0) return;
      // Expired entries go on their own, not only when next touched (Redis also expires its keys).
      sweeps.push(
        clock.every(
          sweepPeriodMs(config.RUNS_TTL_MS),
          sweep('runs', () => runs.expire()),
        ),
        clock.every(
          sweepPeriodMs(config.IDEMPOTENCY_TTL_MS),
          sweep('idempotency', () => idempotency.expire()),
        ),
      );
      service.startWork();
    },
    refreshMcp: async () => {
      await Promise.all(sources.map((s) => s.refresh()));
    },
    async stop() {
      for (const timer of sweeps.splice(0)) timer.cancel();
      await Promise.all([service.stopWork(), ...sources.map((s) => s.stop())]);
    },
  };
}
