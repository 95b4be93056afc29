/**
 * Every operation the gateway serves, as the OpenAPI document describes it. Bodies and answers
 * name schemas in schemas/ by `$id` (the schemas the routes validate with), so the document and
 * the validation cannot disagree. test/http/openapi.test.ts fails when a route has no row here.
 */

/** Which error body a path answers with. */
export type ErrorFamily = 'gateway' | 'openai' | 'ollama';

export interface OperationSpec {
  method: 'get' | 'post' | 'delete' | 'head';
  /** OpenAPI path template (`{id}` for a parameter). */
  path: string;
  summary: string;
  tag: 'agents' | 'ollama' | 'health' | 'metrics' | 'openai' | 'ollama-native' | 'meta';
  /** `open`, or the least role whose API key may call it. */
  access: 'open' | 'agent' | 'admin';
  body?: string;
  params?: string;
  query?: string;
  /** Success answers: status → schema `$id` (or none) and content types. */
  ok: Record<string, { schema?: string; types?: readonly string[]; description?: string }>;
  errors: ErrorFamily;
}

const JSON_T = ['application/json'] as const;
const SSE = ['text/event-stream'] as const;
const NDJSON = ['application/x-ndjson'] as const;

const openai = (
  path: string,
  summary: string,
  body: string,
  response: string,
  streams: boolean,
): OperationSpec => ({
  method: 'post',
  path,
  summary,
  tag: 'openai',
  access: 'agent',
  body,
  ok: {
    '200': {
      schema: response,
      types: streams ? [...JSON_T, ...SSE] : JSON_T,
      description: streams ? 'The answer; with `stream: true` Server-Sent Events.' : 'The answer.',
    },
  },
  errors: 'openai',
});

const native = (
  method: OperationSpec['method'],
  path: string,
  summary: string,
  response: string | undefined,
  options: { body?: string; streams?: boolean; access?: 'agent' | 'admin' } = {},
): OperationSpec => ({
  method,
  path,
  summary,
  tag: 'ollama-native',
  access: options.access ?? 'agent',
  body: options.body,
  ok: {
    '200': {
      schema: response,
      types: options.streams ? [...JSON_T, ...NDJSON] : JSON_T,
      description: options.streams
        ? 'The answer; streamed as NDJSON unless `stream: false`.'
        : 'The answer.',
    },
  },
  errors: 'ollama',
});

export const OPERATIONS: readonly OperationSpec[] = [
  // Probes and metrics.
  {
    method: 'get',
    path: '/health',
    summary: 'Service status and build',
    tag: 'health',
    access: 'open',
    ok: { '200': { schema: 'health.response' } },
    errors: 'gateway',
  },
  {
    method: 'get',
    path: '/health/live',
    summary: 'Liveness probe (never calls Ollama)',
    tag: 'health',
    access: 'open',
    ok: { '200': { schema: 'health-live.response' } },
    errors: 'gateway',
  },
  {
    method: 'get',
    path: '/health/ready',
    summary: 'Readiness probe',
    tag: 'health',
    access: 'open',
    ok: { '200': { schema: 'health-ready.response' } },
    errors: 'gateway',
  },
  {
    method: 'get',
    path: '/health/startup',
    summary: 'Startup probe',
    tag: 'health',
    access: 'open',
    ok: { '200': { schema: 'health-startup.response' } },
    errors: 'gateway',
  },
  {
    method: 'get',
    path: '/health/detailed',
    summary: 'Every check with its details',
    tag: 'health',
    access: 'admin',
    ok: { '200': { schema: 'health-detailed.response' } },
    errors: 'gateway',
  },
  {
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics',
    tag: 'metrics',
    access: 'open',
    ok: { '200': { types: ['text/plain'], description: 'Prometheus text exposition.' } },
    errors: 'gateway',
  },
  {
    method: 'get',
    path: '/openapi.json',
    summary: 'This document',
    tag: 'meta',
    access: 'open',
    ok: { '200': { description: 'OpenAPI 3.1 document.' } },
    errors: 'gateway',
  },

  // Agents.
  {
    method: 'get',
    path: '/agents',
    summary: 'List agents',
    tag: 'agents',
    access: 'agent',
    ok: { '200': { schema: 'agent-list.response' } },
    errors: 'gateway',
  },
  {
    method: 'post',
    path: '/agents/run',
    summary: 'Run an agent (answered, streamed or in the background)',
    tag: 'agents',
    access: 'agent',
    body: 'agent-run.request',
    ok: {
      '200': {
        schema: 'agent-run.response',
        types: [...JSON_T, ...SSE],
        description: 'The finished run; with `stream: true` Server-Sent Events.',
      },
      '202': { schema: 'agent-run.response', description: 'Background run accepted.' },
    },
    errors: 'gateway',
  },
  {
    method: 'get',
    path: '/agents/runs/{id}',
    summary: 'One run',
    tag: 'agents',
    access: 'agent',
    params: 'agent-run.params',
    ok: { '200': { schema: 'agent-run.response' } },
    errors: 'gateway',
  },
  {
    method: 'get',
    path: '/agents/runs/{id}/events',
    summary: "Follow a run's events",
    tag: 'agents',
    access: 'agent',
    params: 'agent-run.params',
    query: 'agent-run-events.query',
    ok: { '200': { types: SSE, description: 'Server-Sent Events.' } },
    errors: 'gateway',
  },
  {
    method: 'post',
    path: '/agents/runs/{id}/cancel',
    summary: 'Cancel a run',
    tag: 'agents',
    access: 'agent',
    params: 'agent-run.params',
    ok: { '200': { schema: 'agent-run.response' } },
    errors: 'gateway',
  },
  {
    method: 'get',
    path: '/agents/{name}',
    summary: "One agent's definition",
    tag: 'agents',
    access: 'agent',
    params: 'agent.params',
    ok: { '200': { schema: 'agent' } },
    errors: 'gateway',
  },

  // Operators' model management.
  {
    method: 'get',
    path: '/ollama/health',
    summary: 'Cached Ollama health',
    tag: 'ollama',
    access: 'agent',
    ok: { '200': { schema: 'ollama-health.response' } },
    errors: 'gateway',
  },
  {
    method: 'get',
    path: '/ollama/health/detailed',
    summary: 'Ollama health with loaded models and queue',
    tag: 'ollama',
    access: 'admin',
    ok: { '200': { schema: 'ollama-health-detailed.response' } },
    errors: 'gateway',
  },
  {
    method: 'get',
    path: '/ollama/models',
    summary: 'Installed models and the active one',
    tag: 'ollama',
    access: 'agent',
    query: 'ollama-models.query',
    ok: { '200': { schema: 'ollama-models.response' } },
    errors: 'gateway',
  },
  {
    method: 'get',
    path: '/ollama/model-info',
    summary: "A model's facts",
    tag: 'ollama',
    access: 'agent',
    query: 'ollama-model-info.query',
    ok: { '200': { schema: 'ollama-model-info.response' } },
    errors: 'gateway',
  },
  {
    method: 'post',
    path: '/ollama/model/switch',
    summary: 'Switch the active model',
    tag: 'ollama',
    access: 'admin',
    body: 'ollama-switch.request',
    ok: { '200': { schema: 'ollama-switch.response', types: [...JSON_T, ...NDJSON] } },
    errors: 'gateway',
  },
  {
    method: 'post',
    path: '/ollama/models/pull',
    summary: 'Pull a model',
    tag: 'ollama',
    access: 'admin',
    body: 'ollama-pull.request',
    ok: { '200': { schema: 'ollama-pull.response', types: [...JSON_T, ...NDJSON] } },
    errors: 'gateway',
  },
  {
    method: 'delete',
    path: '/ollama/models/{name}',
    summary: 'Delete a model',
    tag: 'ollama',
    access: 'admin',
    params: 'ollama-model.params',
    ok: { '204': { description: 'Deleted.' } },
    errors: 'gateway',
  },

  // OpenAI-compatible, forwarded to Ollama's /v1.
  openai(
    '/v1/chat/completions',
    'Chat completion (OpenAI)',
    'openai-chat-completions.request',
    'openai-chat-completion.response',
    true,
  ),
  openai(
    '/v1/completions',
    'Text completion (OpenAI legacy)',
    'openai-completions.request',
    'openai-completion.response',
    true,
  ),
  openai(
    '/v1/embeddings',
    'Embeddings (OpenAI)',
    'openai-embeddings.request',
    'openai-embeddings.response',
    false,
  ),
  openai(
    '/v1/responses',
    'Responses API, stateless (OpenAI)',
    'openai-responses.request',
    'openai-response.response',
    true,
  ),
  {
    method: 'get',
    path: '/v1/models',
    summary: 'Installed models (OpenAI)',
    tag: 'openai',
    access: 'agent',
    ok: { '200': { schema: 'openai-models.response' } },
    errors: 'openai',
  },
  {
    method: 'get',
    path: '/v1/models/{model}',
    summary: 'One installed model (OpenAI)',
    tag: 'openai',
    access: 'agent',
    params: 'openai-model.params',
    ok: { '200': { schema: 'openai-model.response' } },
    errors: 'openai',
  },

  // Ollama-native, forwarded as they are.
  native('post', '/api/chat', 'Chat (Ollama)', 'ollama-native-chat.response', {
    body: 'ollama-native-chat.request',
    streams: true,
  }),
  native('post', '/api/generate', 'Generate (Ollama)', 'ollama-native-generate.response', {
    body: 'ollama-native-generate.request',
    streams: true,
  }),
  native('post', '/api/embed', 'Embeddings (Ollama)', 'ollama-native-embed.response', {
    body: 'ollama-native-embed.request',
  }),
  native(
    'post',
    '/api/embeddings',
    'One embedding (Ollama, legacy)',
    'ollama-native-embeddings.response',
    { body: 'ollama-native-embeddings.request' },
  ),
  native('get', '/api/tags', 'Installed models (Ollama)', 'ollama-native-models.response'),
  native('post', '/api/show', 'Model metadata (Ollama)', 'ollama-native-show.response', {
    body: 'ollama-native-model.request',
  }),
  native('get', '/api/ps', 'Loaded models (Ollama)', 'ollama-native-models.response'),
  native('get', '/api/version', "Ollama's version", 'ollama-native-version.response'),
  {
    method: 'get',
    path: '/',
    summary: 'Ollama is running',
    tag: 'ollama-native',
    access: 'agent',
    ok: { '200': { types: ['text/plain'], description: '`Ollama is running`' } },
    errors: 'ollama',
  },
  native('post', '/api/pull', 'Pull a model (Ollama; admin)', 'ollama-native-progress.response', {
    body: 'ollama-native-model.request',
    streams: true,
    access: 'admin',
  }),
  native('post', '/api/push', 'Push a model (Ollama; admin)', 'ollama-native-progress.response', {
    body: 'ollama-native-model.request',
    streams: true,
    access: 'admin',
  }),
  native(
    'post',
    '/api/create',
    'Create a model (Ollama; admin)',
    'ollama-native-progress.response',
    { body: 'ollama-native-model.request', streams: true, access: 'admin' },
  ),
  native('post', '/api/copy', 'Copy a model (Ollama; admin)', undefined, {
    body: 'ollama-native-copy.request',
    access: 'admin',
  }),
  native('delete', '/api/delete', 'Delete a model (Ollama; admin)', undefined, {
    body: 'ollama-native-model.request',
    access: 'admin',
  }),
];
