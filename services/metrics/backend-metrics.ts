import { Counter, Gauge, type Registry } from 'prom-client';
import type { BackendStatus } from '../ollama';
import type { ModelLoadEvent, RouteEvent } from './telemetry';

const CIRCUIT_VALUE = { closed: 0, 'half-open': 1, open: 2 } as const;
const ROUTE_REASONS: ReadonlyArray<RouteEvent['reason']> = [
  'loaded',
  'installed',
  'least_loaded',
  'affinity',
  'failover',
];

/** The routing instruments: what telemetry records about the choice of a backend. */
export interface BackendInstruments {
  route(e: RouteEvent): void;
  modelLoad(e: ModelLoadEvent): void;
  backendRemoved(e: { backend: string }): void;
}

/**
 * Per-backend gauges read at scrape time from `backends` (cached state, never I/O), and the
 * routing counters. The `backend` label is the backend's id, never its URL, which may carry
 * credentials: its index in OLLAMA_HOSTS, or a discovered pod's address (the same in every
 * replica). A removed backend's series are dropped (the gauges are rebuilt at each scrape, the
 * load counter's series removed), so the label stays bounded by the backends there are at
 * once, however often pods come and go. `ollama_backend_requests_waiting` and
 * `ollama_backend_requests_running` are the names an endpoint picker is configured to read.
 */
export function registerBackendMetrics(
  registry: Registry,
  backends: (() => BackendStatus[]) | undefined,
): BackendInstruments {
  const registers = [registry];
  const gauge = (name: string, help: string, value: (b: BackendStatus) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['backend'],
      registers,
      collect() {
        this.reset();
        for (const b of backends?.() ?? []) this.set({ backend: b.id }, value(b));
      },
    });
  };
  gauge('ollama_backend_up', 'Per Ollama backend: 1 when its last health check succeeded.', (b) =>
    b.state === 'up' ? 1 : 0,
  );
  gauge(
    'ollama_backend_draining',
    'Per Ollama backend: 1 while it finishes its work after leaving discovery.',
    (b) => (b.state === 'draining' ? 1 : 0),
  );
  gauge(
    'ollama_backend_circuit_state',
    'Per Ollama backend: its circuit breaker, 0 closed, 1 half-open, 2 open.',
    (b) => CIRCUIT_VALUE[b.circuit],
  );
  gauge(
    'ollama_backend_requests_running',
    'Per Ollama backend: generations in flight there now (an endpoint picker reads this).',
    (b) => b.inFlight,
  );
  gauge(
    'ollama_backend_requests_waiting',
    'Per Ollama backend: generations routed there still waiting for a slot or a model load (an endpoint picker reads this).',
    (b) => b.queued,
  );
  gauge(
    'ollama_backend_loaded_models',
    'Per Ollama backend: models it holds in memory (cached /api/ps plus what the gateway loaded since).',
    (b) => b.loadedModels.length,
  );
  const routes = new Counter({
    name: 'ollama_route_total',
    help: 'Generations routed to a backend, by the rule that chose it: loaded (the only one with the model loaded), installed (the only one with it installed, or with room), least_loaded, affinity (the run or conversation hash), failover (after a failure before the first byte).',
    labelNames: ['reason'],
    registers,
  });
  for (const reason of ROUTE_REASONS) routes.inc({ reason }, 0);
  const loads = new Counter({
    name: 'ollama_backend_model_loads_total',
    help: 'Model loads the gateway started, per Ollama backend.',
    labelNames: ['backend'],
    registers,
  });
  return {
    route: (e) => routes.inc({ reason: e.reason }),
    modelLoad: (e) => loads.inc({ backend: e.backend }),
    backendRemoved: (e) => loads.remove({ backend: e.backend }),
  };
}
