import type { LoadOutcome } from './scheduler';
import type { SimModelFailure, SimModelFailureKind } from './types';

/**
 * Ollama's texts for a model's deterministic failures (ollama-api.md §2.4), all answered 500.
 * The prefixes are Ollama's; what follows the colon is llama-server's own output, which varies
 * (the simulator's default tails are examples, unconfirmed as exact llama-server text).
 */
export const MODEL_FAILURE_TEXT = {
  /** llama-server exits during startup [llm/llama_server.go:1303-1325]. */
  load: 'llama-server process has terminated: ',
  /** Out of memory at load [llm/llama_server.go:1371-1376]. */
  oom: 'llama-server reported out-of-memory during startup: ',
  /** The load stalls past OLLAMA_LOAD_TIMEOUT [llm/llama_server.go:1334-1337]. */
  'load-timeout': 'timed out waiting for llama-server to start - ',
  /** The runner dies while a request waits for its answer [llm/llama_server.go:1640-1644]. */
  crash:
    'model runner has unexpectedly stopped, this may be due to resource limitations or an internal error, check ollama server logs for details',
  /** The runner dies after the stream started [llm/llama_server.go:2069-2076]. */
  crashMidStream: 'an error was encountered while running the model: ',
} as const;

const DEFAULT_DETAIL: Record<SimModelFailureKind, string> = {
  load: 'exit status 1',
  oom: 'cudaMalloc failed: out of memory',
  'load-timeout': 'llama_model_load: error loading model',
  crash: 'unexpected EOF',
};

/** The 500 text a load of a failing model ends with; undefined for loads that succeed. */
export function loadFailure(failure: SimModelFailure | undefined): LoadOutcome {
  if (!failure || failure.kind === 'crash') return undefined;
  return {
    fail: MODEL_FAILURE_TEXT[failure.kind] + (failure.detail ?? DEFAULT_DETAIL[failure.kind]),
  };
}

/**
 * A runner crash: before the first byte Ollama answers 500 with the fixed text (the detail
 * appended after `: ` when given); after `afterChunks` chunks, an error line.
 */
export function crashText(failure: SimModelFailure, midStream: boolean): string {
  if (midStream)
    return MODEL_FAILURE_TEXT.crashMidStream + (failure.detail ?? DEFAULT_DETAIL.crash);
  return failure.detail
    ? `${MODEL_FAILURE_TEXT.crash}: ${failure.detail}`
    : MODEL_FAILURE_TEXT.crash;
}
