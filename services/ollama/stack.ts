import { createModelService, type ActiveModelStore, type ModelService } from '../models';
import type { OllamaClient } from './client';
import type { Admission } from './admission';
import { createBackendSet, type BackendSet } from './backends';
import type { Resolver } from './discovery';
import type { OllamaHealth } from './types';
import type { Telemetry } from '../metrics';
import type { Clock } from '../../src/clock';
import type { Config } from '../../src/config';
import type { Logger } from '../../src/logger';

/** The Ollama collaborators every other part uses, built together because they share state. */
export interface OllamaStack {
  /** Every backend seen as one Ollama (routing, fan-out); `backends()` lists them. */
  ollama: OllamaClient & Pick<BackendSet, 'backends'>;
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
  /** One admission per backend (compose's factory; default: an in-process one each). */
  admissionFor?: (backendId: string) => Admission;
  /** The resolver behind OLLAMA_DISCOVERY (default: node:dns/promises). */
  resolve?: Resolver;
}

/**
 * Builds the Ollama service, the model manager (active model, switch, cached catalog) and the
 * cached health. Starts nothing: the owner calls `ollamaHealth.start()` when it is ready.
 */
export function createOllamaStack(options: OllamaStackOptions): OllamaStack {
  const { config, telemetry, logger } = options;
  const { clock } = options;
  const { now } = clock;
  const backends = createBackendSet({
    config,
    telemetry,
    logger,
    clock,
    activeModel: () => models.active(),
    ...(options.admissionFor ? { admissionFor: options.admissionFor } : {}),
    ...(options.resolve ? { resolve: options.resolve } : {}),
  });
  const ollama = backends;
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
  const ollamaHealth = backends.health;
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
