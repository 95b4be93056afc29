import type { Access } from '../../middleware/auth-policy';

/**
 * Every endpoint of the service, for the role matrix and the bad-input suite. One row per
 * (method, concrete path); `access` is what the row EXPECTS (the role-matrix test checks the
 * policy table agrees). `landed: false` marks routers still on their branches (issue3: the
 * Ollama router, issue5: agents, issue6: metrics): their requests reach the JSON 404 today,
 * which the suites still exercise (auth, limits and the body parser run first). Flip
 * `landed` and fill `validBody` when a router is merged.
 */
export interface EndpointRow {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  access: Access;
  landed: boolean;
  /** For POST rows: a body the endpoint accepts, so a suite can check it still works. */
  validBody?: unknown;
}

export const ENDPOINTS: readonly EndpointRow[] = [
  { method: 'GET', path: '/health', access: 'open', landed: true },
  { method: 'GET', path: '/health/live', access: 'open', landed: false },
  { method: 'GET', path: '/health/ready', access: 'open', landed: false },
  { method: 'GET', path: '/health/startup', access: 'open', landed: false },
  { method: 'GET', path: '/metrics', access: 'open', landed: false },
  { method: 'GET', path: '/health/detailed', access: 'admin', landed: false },

  { method: 'POST', path: '/agents/run', access: 'agent', landed: false },
  { method: 'GET', path: '/agents', access: 'agent', landed: false },
  { method: 'GET', path: '/agents/runs/run_0000', access: 'agent', landed: false },
  { method: 'GET', path: '/agents/runs/run_0000/events', access: 'agent', landed: false },
  { method: 'POST', path: '/agents/runs/run_0000/cancel', access: 'agent', landed: false },
  { method: 'GET', path: '/ollama/models', access: 'agent', landed: false },
  { method: 'GET', path: '/ollama/model-info', access: 'agent', landed: false },
  { method: 'GET', path: '/ollama/health', access: 'agent', landed: false },

  { method: 'POST', path: '/ollama/model/switch', access: 'admin', landed: false },
  { method: 'POST', path: '/ollama/models/pull', access: 'admin', landed: false },
  { method: 'DELETE', path: '/ollama/models/llama3.2:3b', access: 'admin', landed: false },
  { method: 'DELETE', path: '/ollama/models/library%2Fqwen3:0.6b', access: 'admin', landed: false },
  { method: 'GET', path: '/ollama/health/detailed', access: 'admin', landed: false },
];

/** The POST endpoints the bad-input suite attacks; `POST /health` is the 405 path that exists today. */
export const POST_ENDPOINTS: readonly EndpointRow[] = [
  ...ENDPOINTS.filter((e) => e.method === 'POST'),
  { method: 'POST', path: '/health', access: 'open', landed: true },
];
