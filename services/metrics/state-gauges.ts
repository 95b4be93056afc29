import { Gauge, type Registry } from 'prom-client';
import { modelKey } from '../../src/model-name';
import type { BackendStatus, OllamaHealthSnapshot, OllamaService } from '../ollama';

/**
 * Where the gauges that mirror state read it. Each getter returns cached state and is called
 * only at scrape time (from prom-client's `collect()`), so a scrape never waits on Ollama; the
 * getters may close over collaborators built after the metrics (the Ollama service needs the
 * telemetry first). A missing getter leaves its gauges at their empty value.
 */
export interface MetricsState {
  /** The cached health snapshot: `ollama_up`, installed and loaded models, VRAM. */
  health?: () => OllamaHealthSnapshot;
  circuitState?: OllamaService['circuitState'];
  /** Models paused after failing on their own (OllamaService.failingModels). */
  failingModels?: OllamaService['failingModels'];
  queueStats?: OllamaService['queueStats'];
  /** The active model (ModelManager.active). */
  activeModel?: () => string;
  /** Whether the replica's Redis connection is up; `redis_up` exists only with REDIS_URL. */
  redisUp?: () => boolean;
  /** Every Ollama backend with its state (the `ollama_backend_*` gauges). */
  backends?: () => BackendStatus[];
}

const CIRCUIT_VALUE = { closed: 0, 'half-open': 1, open: 2 } as const;

/** Registers the state-mirroring gauges on `registry`; they hold no state of their own. */
export function registerStateGauges(registry: Registry, state: MetricsState): void {
  const registers = [registry];
  const { health, circuitState, queueStats, activeModel, failingModels, redisUp } = state;

  new Gauge({
    name: 'ollama_up',
    help: 'Whether the last Ollama health check succeeded (1) or not (0; also before the first check).',
    registers,
    collect() {
      this.set(health?.().status === 'up' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'ollama_circuit_breaker_state',
    help: 'Circuit breaker in front of Ollama: 0 closed, 1 half-open, 2 open.',
    registers,
    collect() {
      if (circuitState) this.set(CIRCUIT_VALUE[circuitState()]);
    },
  });
  const queueGauge = (name: string, help: string, pick: (q: QueueStats) => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        if (queueStats) this.set(pick(queueStats()));
      },
    });
  };
  queueGauge('active_requests', 'Generations in flight to Ollama now.', (q) => q.inFlight);
  queueGauge(
    'inference_queue_depth',
    'Generations waiting for a free Ollama slot.',
    (q) => q.queued,
  );
  queueGauge(
    'inference_queue_capacity',
    'Most generations allowed to wait (QUEUE_MAX); beyond it, 429 QUEUE_FULL.',
    (q) => q.maxQueue,
  );
  queueGauge(
    'inference_concurrency_limit',
    'Generations allowed in flight to Ollama at once (OLLAMA_MAX_CONCURRENCY).',
    (q) => q.maxConcurrency,
  );
  new Gauge({
    name: 'admission_mode',
    help: 'How the admission queue counts: global (1 on mode="global": every replica together, through Redis) or local (1 on mode="local": this replica alone, without Redis or while it is unreachable).',
    labelNames: ['mode'],
    registers,
    collect() {
      if (!queueStats) return;
      const global = queueStats().mode === 'global';
      this.set({ mode: 'global' }, global ? 1 : 0);
      this.set({ mode: 'local' }, global ? 0 : 1);
    },
  });

  new Gauge({
    name: 'ollama_model_loaded',
    help: 'Per installed model: 1 when loaded in Ollama memory (cached /api/ps), else 0.',
    labelNames: ['model'],
    registers,
    collect() {
      this.reset();
      if (!health) return;
      const snap = health();
      for (const name of snap.installedModels ?? []) this.set({ model: name }, 0);
      for (const m of snap.loadedModels) this.set({ model: m.name }, 1);
    },
  });
  new Gauge({
    name: 'ollama_model_circuit_open',
    help: 'Per installed model: 1 while its requests are refused (MODEL_FAILING) after it failed MODEL_FAILURE_THRESHOLD times in a row, else 0.',
    labelNames: ['model'],
    registers,
    collect() {
      this.reset();
      if (!health || !failingModels) return;
      const failing = new Set(failingModels().map(modelKey));
      for (const name of health().installedModels ?? []) {
        this.set({ model: name }, failing.has(modelKey(name)) ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'ollama_model_vram_bytes',
    help: 'Per loaded model: bytes held in GPU memory (cached /api/ps; 0 on CPU-only nodes).',
    labelNames: ['model'],
    registers,
    collect() {
      this.reset();
      for (const m of health?.().loadedModels ?? []) this.set({ model: m.name }, m.vramBytes);
    },
  });
  if (redisUp) {
    new Gauge({
      name: 'redis_up',
      help: "Whether this replica's Redis connection is up (1) or not (0).",
      registers,
      collect() {
        this.set(redisUp() ? 1 : 0);
      },
    });
  }
  new Gauge({
    name: 'ollama_active_model_info',
    help: 'The active model (the default of agents and what probes check); always 1.',
    labelNames: ['model'],
    registers,
    collect() {
      this.reset();
      if (activeModel) this.set({ model: activeModel() }, 1);
    },
  });
}

type QueueStats = ReturnType<OllamaService['queueStats']>;
