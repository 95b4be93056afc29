import { createModelService, type ActiveModelStore, type ModelService } from '../models';
import type { Admission } from './admission';
import { createLocalAdmission } from './admissions';
import { createOllamaService, type OllamaClient } from './client';
import { createOllamaHealth } from '../health';
import type { OllamaHealth } from './types';
import type { Telemetry } from '../metrics';
import type { Clock } from '../../src/clock';
import type { Config } from '../../src/config';
import type { Logger } from '../../src/logger';

/** The Ollama collaborators every other part uses, built together because they share state. */
export interface OllamaStack {
  ollama: OllamaClient;
  ollamaHealth: OllamaHealth;
  models: ModelService;
  /** Stops the health timer and closes the connection pool. */
  close(): Promise<void>;
}

export interface OllamaStackOptions {
  config: Readonly<Config>;
  telemetry: Telemetry;
  logger: Logger;
  /** Time, timers and waits for every part of the stack. */
  clock: Clock;
  /** Where the active model lives (default: in this process, from OLLAMA_MODEL). */
  activeModel?: ActiveModelStore;
  /** The backend's admission (compose's factory; default: one in memory from the config). */
  admission?: Admission;
}

/**
 * Builds the Ollama service, the model manager (active model, switch, cached catalog) and the
 * cached health. Starts nothing: the owner calls `ollamaHealth.start()` when it is ready.
 */
export function createOllamaStack(options: OllamaStackOptions): OllamaStack {
  const { config, telemetry, logger } = options;
  const { clock } = options;
  const { now } = clock;
  const admission = options.admission ?? createLocalAdmission(config, clock);
  const ollama = createOllamaService({ config, telemetry, logger, clock, admission });
  const models = createModelService({
    ollama,
    cacheTtlMs: config.MODELS_CACHE_TTL_MS,
    psTimeoutMs: config.OLLAMA_HEALTH_TIMEOUT_MS,
    initialModel: config.OLLAMA_MODEL,
    ...(options.activeModel ? { store: options.activeModel } : {}),
    telemetry,
    logger,
    now,
  });
  const ollamaHealth = createOllamaHealth({
    ollama,
    activeModel: () => models.active(),
    ttlMs: config.OLLAMA_HEALTH_TTL_MS,
    timeoutMs: config.OLLAMA_HEALTH_TIMEOUT_MS,
    psTimeoutMs: config.OLLAMA_PS_TIMEOUT_MS,
    telemetry,
    logger,
    clock,
  });
  return {
    ollama,
    ollamaHealth,
    models,
    async close() {
      ollamaHealth.stop();
      await ollama.close();
    },
  };
}
