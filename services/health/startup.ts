/**
 * The warm-up that runs in the background once the server listens: wait for Ollama, pull the
 * active model when asked to and it is missing, preload it. `/health/startup` answers from
 * {@link StartupSequence.state}. The sequence never throws and never exits the process: a pod
 * whose Ollama never comes up stays in startup, and the startup probe's budget decides.
 */
import { backoff, type Clock } from '../../src/clock';
import type { Config } from '../../src/config';
import { AppError, isAppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import type { ModelManager, OllamaHealth, OllamaService } from '../ollama';

export type StartupStepName = 'wait_for_ollama' | 'pull' | 'preload';

export interface StartupStepRecord {
  name: StartupStepName;
  outcome: 'ok' | 'skipped' | 'failed';
  duration_ms: number;
  /** Why a step was skipped or failed. */
  reason?: string;
}

export interface StartupState {
  done: boolean;
  /** What the sequence is doing now. */
  phase: 'pending' | StartupStepName | 'done' | 'stopped';
  /** Attempts of the current step (1 on the first try). */
  attempts: number;
  steps: readonly StartupStepRecord[];
  /** Whole sequence, ms; null until done. */
  duration_ms: number | null;
  last_error: { code: string; message: string } | null;
}

export interface StartupSequence {
  /** Runs the sequence once; resolves when it is done or stopped, never rejects. */
  run(): Promise<StartupState>;
  /** Aborts the sequence (shutdown); `run()` then resolves with phase `stopped`. */
  stop(): void;
  /** The current state; no I/O. */
  state(): StartupState;
}

export interface StartupOptions {
  config: Pick<
    Config,
    'OLLAMA_PULL_ON_START' | 'OLLAMA_PRELOAD' | 'STARTUP_RETRY_MAX_MS' | 'OLLAMA_KEEP_ALIVE'
  >;
  ollama: Pick<OllamaService, 'pull' | 'preload'>;
  ollamaHealth: Pick<OllamaHealth, 'refresh'>;
  models: Pick<ModelManager, 'active'>;
  logger: Logger;
  /** Step durations and the waits between attempts. */
  clock: Pick<Clock, 'now' | 'sleep'>;
  /** Jitter source (default Math.random). */
  random?: () => number;
}

/** First backoff between attempts; it doubles up to STARTUP_RETRY_MAX_MS. */
export const STARTUP_RETRY_BASE_MS = 500;

/** Failures that say "Ollama is not there yet": worth waiting for. Anything else is final. */
const TRANSIENT = new Set(['OLLAMA_UNAVAILABLE', 'OLLAMA_TIMEOUT', 'OLLAMA_BUSY', 'QUEUE_TIMEOUT']);

/** Builds the startup sequence; nothing runs until `run()`. */
export function createStartupSequence(options: StartupOptions): StartupSequence {
  const { config, ollama, ollamaHealth, models, logger } = options;
  const { clock } = options;
  const { now } = clock;
  const random = options.random ?? Math.random;
  const abort = new AbortController();
  const signal = abort.signal;
  const steps: StartupStepRecord[] = [];
  let phase: StartupState['phase'] = 'pending';
  let attempts = 0;
  let duration: number | null = null;
  let lastError: StartupState['last_error'] = null;
  let running: Promise<StartupState> | null = null;

  const state = (): StartupState => ({
    done: phase === 'done',
    phase,
    attempts,
    steps: [...steps],
    duration_ms: duration,
    last_error: lastError,
  });

  const retryBackoff = {
    baseMs: STARTUP_RETRY_BASE_MS,
    maxMs: config.STARTUP_RETRY_MAX_MS,
    jitter: 'equal',
    random,
  } as const;

  /** Runs one step, retrying transient failures with backoff until it succeeds or is stopped. */
  async function step(name: StartupStepName, fn: () => Promise<void>): Promise<void> {
    phase = name;
    attempts = 0;
    const started = now();
    for (;;) {
      attempts += 1;
      try {
        await fn();
        lastError = null;
        record(name, 'ok', started);
        return;
      } catch (err) {
        if (signal.aborted) throw err;
        const appError = isAppError(err) ? err : new AppError('INTERNAL_ERROR', String(err));
        lastError = { code: appError.code, message: appError.message };
        if (!TRANSIENT.has(appError.code)) {
          record(name, 'failed', started, `${appError.code}: ${appError.message}`);
          return;
        }
        const wait = backoff(attempts, retryBackoff);
        logger.warn('startup step will retry', {
          step: name,
          attempt: attempts,
          code: appError.code,
          retry_in_ms: wait,
        });
        // A stop ends the wait early; the check below turns it into the stop.
        await clock.sleep(wait, signal).catch(() => undefined);
        if (signal.aborted) throw err;
      }
    }
  }

  function record(
    name: StartupStepName,
    outcome: StartupStepRecord['outcome'],
    started: number,
    reason?: string,
  ): void {
    const entry: StartupStepRecord = { name, outcome, duration_ms: now() - started };
    if (reason !== undefined) entry.reason = reason;
    steps.push(entry);
    logger.log(outcome === 'failed' ? 'error' : 'info', 'startup step finished', {
      step: name,
      outcome,
      duration_ms: entry.duration_ms,
      reason,
    });
  }

  /** Whether the active model is installed, from the last check this sequence ran. */
  let installed = false;

  async function waitForOllama(): Promise<void> {
    const snapshot = await ollamaHealth.refresh();
    if (snapshot.status !== 'up') {
      throw new AppError('OLLAMA_UNAVAILABLE', snapshot.lastError?.message);
    }
    installed = snapshot.activeModelInstalled === true;
  }

  async function pull(model: string): Promise<void> {
    let lastStatus = '';
    for await (const progress of ollama.pull(model, { signal })) {
      if (progress.status !== lastStatus && !progress.status.startsWith('pulling ')) {
        logger.info('startup pull progress', { model, status: progress.status });
      }
      lastStatus = progress.status;
    }
    installed = (await ollamaHealth.refresh()).activeModelInstalled === true;
  }

  async function sequence(): Promise<StartupState> {
    const started = now();
    const model = models.active();
    logger.info('startup begins', { model });
    try {
      await step('wait_for_ollama', waitForOllama);
      if (!installed && config.OLLAMA_PULL_ON_START) {
        await step('pull', () => pull(model));
      } else if (!installed) {
        skip('pull', 'the active model is missing and OLLAMA_PULL_ON_START is false');
      } else {
        skip('pull', 'the active model is installed');
      }
      if (!config.OLLAMA_PRELOAD) skip('preload', 'OLLAMA_PRELOAD is false');
      else if (!installed) skip('preload', 'the active model is not installed');
      else {
        await step('preload', async () => {
          await ollama.preload(model, config.OLLAMA_KEEP_ALIVE, { signal });
        });
      }
    } catch {
      phase = 'stopped';
      logger.info('startup stopped', { duration_ms: now() - started });
      return state();
    }
    duration = now() - started;
    phase = 'done';
    logger.info('startup complete', { duration_ms: duration, model });
    return state();
  }

  function skip(name: StartupStepName, reason: string): void {
    steps.push({ name, outcome: 'skipped', duration_ms: 0, reason });
    logger.info('startup step skipped', { step: name, reason });
  }

  return {
    run() {
      running ??= sequence();
      return running;
    },
    stop() {
      abort.abort();
    },
    state,
  };
}
