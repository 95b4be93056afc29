import type { Access } from '../../middleware/auth-policy';

/**
 * Every endpoint of the service, for the role matrix and the bad-input suite. One row per
 * (method, concrete path); `access` is what the row EXPECTS (the role-matrix test checks the
 * policy table agrees). `PLACEHOLDER_RUN` is a well-formed id of a run that does not exist;
 * a suite that needs a real run swaps in the id of one it created (see `withRunId`).
 */
export interface EndpointRow {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  access: Access;
  /**
   * For POST rows: a body the endpoint accepts and answers with a 2xx quickly against the
   * default simulator, so a suite can check the endpoint still works after an attack.
   */
  validBody?: unknown;
}

/** The placeholder run id in the rows' paths. */
export const PLACEHOLDER_RUN = 'run_00000000000000000000';

export const ENDPOINTS: readonly EndpointRow[] = [
  { method: 'GET', path: '/health', access: 'open' },
  { method: 'GET', path: '/health/live', access: 'open' },
  { method: 'GET', path: '/health/ready', access: 'open' },
  { method: 'GET', path: '/health/startup', access: 'open' },
  { method: 'GET', path: '/metrics', access: 'open' },
  { method: 'GET', path: '/health/detailed', access: 'admin' },

  { method: 'POST', path: '/agents/run', access: 'agent', validBody: { input: 'hi' } },
  { method: 'POST', path: '/agents/run-agent', access: 'agent', validBody: { input: 'hi' } },
  {
    method: 'POST',
    path: `/agents/runs/${PLACEHOLDER_RUN}/resume`,
    access: 'agent',
    validBody: { tool_outputs: [] },
  },
  { method: 'GET', path: '/agents', access: 'agent' },
  { method: 'GET', path: '/agents/no-such-agent', access: 'agent' },
  { method: 'GET', path: `/agents/runs/${PLACEHOLDER_RUN}`, access: 'agent' },
  { method: 'GET', path: `/agents/runs/${PLACEHOLDER_RUN}/events`, access: 'agent' },
  {
    method: 'POST',
    path: `/agents/runs/${PLACEHOLDER_RUN}/cancel`,
    access: 'agent',
    validBody: {},
  },
  { method: 'GET', path: '/ollama/models', access: 'agent' },
  { method: 'GET', path: '/ollama/model-info', access: 'agent' },
  { method: 'GET', path: '/ollama/health', access: 'agent' },
  { method: 'GET', path: '/usage', access: 'agent' },

  {
    method: 'POST',
    path: '/ollama/model/switch',
    access: 'admin',
    validBody: { model: 'llama3.2:3b' },
  },
  {
    method: 'POST',
    path: '/ollama/models/pull',
    access: 'admin',
    validBody: { model: 'smollm2:135m' },
  },
  { method: 'DELETE', path: '/ollama/models/llama3.2:3b', access: 'admin' },
  { method: 'DELETE', path: '/ollama/models/library%2Fqwen3:0.6b', access: 'admin' },
  { method: 'GET', path: '/ollama/health/detailed', access: 'admin' },
];

/** The POST endpoints the bad-input suite attacks; `POST /health` is a 405 path. */
export const POST_ENDPOINTS: readonly EndpointRow[] = [
  ...ENDPOINTS.filter((e) => e.method === 'POST'),
  { method: 'POST', path: '/health', access: 'open' },
];

/** The row's path with the placeholder run replaced by a real run id. */
export function withRunId(path: string, runId: string): string {
  return path.replace(PLACEHOLDER_RUN, encodeURIComponent(runId));
}
