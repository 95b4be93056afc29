/**
 * Histogram buckets, in the metric's unit. Prometheus' defaults (5 ms … 10 s) fit web
 * requests; LLM work spans tens of milliseconds (a cached short answer, a queue hop) to
 * minutes (a long generation on CPU, a cold load of a large model), so each histogram gets
 * buckets spread over its real range, roughly doubling, with more resolution where SLOs sit.
 * Every bucket is a series per label set, so the lists stay short (10–15 bounds).
 */

/** HTTP handling, 5 ms … 5 min: probes and lookups at the low end, synchronous agent runs at the top. */
export const HTTP_DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
] as const;

/** One Ollama call from admission to the last byte, 50 ms … 10 min. */
export const INFERENCE_DURATION_BUCKETS = [
  0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600,
] as const;

/**
 * Time to first token, 25 ms … 1 min. A warm model answers in well under a second; a cold
 * one includes the load (seconds to a minute), which the top buckets separate.
 */
export const TTFT_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60] as const;

/** Generation speed, tokens/s: CPU inference runs at 1–20, a GPU at 30–300+. */
export const TOKENS_PER_SECOND_BUCKETS = [
  1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500,
] as const;

/** Model loads and switches, 250 ms … 5 min (a large model from a slow disk). */
export const MODEL_LOAD_BUCKETS = [0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300] as const;

/** Wait in the gateway's admission queue, 1 ms … 1 min (QUEUE_TIMEOUT_MS defaults to 30 s). */
export const QUEUE_WAIT_BUCKETS = [
  0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
] as const;

/** Whole agent runs, 100 ms … 30 min (a run's default timeout is 5 min; background runs may be longer). */
export const AGENT_RUN_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800] as const;

/** One Ollama health check, 5 ms … 5 s (OLLAMA_HEALTH_TIMEOUT_MS defaults to 3 s). */
export const HEALTH_CHECK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

/** One Redis command, 0.1 ms … 1 s (REDIS_COMMAND_TIMEOUT_MS defaults to 500 ms). */
export const REDIS_COMMAND_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
] as const;

/**
 * Ollama reports a `load_duration` on every answer, a few milliseconds when the model was
 * already loaded; only loads above this count as a model load.
 */
export const MODEL_LOAD_MIN_S = 0.1;
