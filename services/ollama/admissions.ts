import { randomUUID } from 'node:crypto';
import type { Clock } from '../../src/clock';
import type { Config } from '../../src/config';
import type { Logger } from '../../src/logger';
import type { RedisConnection } from '../stores';
import { createAdmission, type Admission } from './admission';
import { createRedisAdmission, type RedisAdmission } from './admission-redis';

/** Builds (once per id) the admission of one Ollama backend. */
export type AdmissionFactory = (backendId: string) => Admission;

export type AdmissionConfig = Pick<
  Config,
  | 'OLLAMA_MAX_CONCURRENCY'
  | 'QUEUE_MAX'
  | 'QUEUE_TIMEOUT_MS'
  | 'KEY_MAX_CONCURRENCY'
  | 'OLLAMA_MAX_CONCURRENCY_LOCAL'
  | 'ADMISSION_LEASE_MS'
>;

export interface Admissions {
  /** The admission of a backend; the same object for the same id. */
  forBackend: AdmissionFactory;
  /** Starts the Redis admissions' grant subscriptions and lease renewals. */
  start(): void;
  stop(): void;
}

/**
 * The cap of a key that has none of its own: KEY_MAX_CONCURRENCY, or (0) every slot but one,
 * so no single key fills the backend while one caller alone still gets nearly all of it.
 */
export function keyCap(config: AdmissionConfig, maxConcurrency: number): number {
  if (config.KEY_MAX_CONCURRENCY > 0) return config.KEY_MAX_CONCURRENCY;
  return Math.max(1, maxConcurrency - 1);
}

/** A backend's admission in this process's memory (no Redis: one replica). */
export function createLocalAdmission(
  config: AdmissionConfig,
  clock: Pick<Clock, 'now' | 'after'>,
  maxConcurrency = config.OLLAMA_MAX_CONCURRENCY,
): Admission {
  return createAdmission({
    maxConcurrency,
    maxQueue: config.QUEUE_MAX,
    timeoutMs: config.QUEUE_TIMEOUT_MS,
    keyMaxConcurrency: Math.min(maxConcurrency, keyCap(config, config.OLLAMA_MAX_CONCURRENCY)),
    clock,
  });
}

export interface AdmissionsOptions {
  config: AdmissionConfig;
  clock: Pick<Clock, 'now' | 'after' | 'every'>;
  logger: Logger;
  /** The replica's Redis connection (REDIS_URL): admission is then global across replicas. */
  redis?: RedisConnection;
}

/**
 * The admissions of every backend: in memory without Redis; with Redis, shared by all
 * replicas (OLLAMA_MAX_CONCURRENCY and QUEUE_MAX count every replica's generations), falling
 * back to OLLAMA_MAX_CONCURRENCY_LOCAL per replica while Redis is unreachable.
 */
export function createAdmissions(options: AdmissionsOptions): Admissions {
  const { config, clock, logger, redis } = options;
  const built = new Map<string, Admission>();
  const shared: RedisAdmission[] = [];
  const replicaId = randomUUID();
  let started = false;
  return {
    forBackend(backendId) {
      const existing = built.get(backendId);
      if (existing) return existing;
      let admission: Admission;
      if (!redis) admission = createLocalAdmission(config, clock);
      else {
        const remote = createRedisAdmission({
          redis,
          backendId,
          replicaId,
          maxConcurrency: config.OLLAMA_MAX_CONCURRENCY,
          maxQueue: config.QUEUE_MAX,
          timeoutMs: config.QUEUE_TIMEOUT_MS,
          keyMaxConcurrency: keyCap(config, config.OLLAMA_MAX_CONCURRENCY),
          leaseMs: config.ADMISSION_LEASE_MS,
          local: createLocalAdmission(config, clock, config.OLLAMA_MAX_CONCURRENCY_LOCAL),
          clock,
          logger,
        });
        shared.push(remote);
        if (started) remote.start();
        admission = remote;
      }
      built.set(backendId, admission);
      return admission;
    },
    start() {
      started = true;
      for (const remote of shared) remote.start();
    },
    stop() {
      for (const remote of shared) remote.stop();
    },
  };
}
