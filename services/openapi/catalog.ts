/**
 * Every operation the gateway serves, as the OpenAPI document describes it. Bodies and answers
 * name schemas in schemas/ by `$id` (the schemas the routes validate with), so the document and
 * the validation cannot disagree. test/http/openapi.test.ts fails when a route has no row here.
 */

/** A request header an operation reads, as an OpenAPI header parameter. */
export interface HeaderSpec {
  name: string;
  description: string;
  schema: Record<string, unknown>;
}

const IDEMPOTENCY_KEY: HeaderSpec = {
  name: 'Idempotency-Key',
  description:
    'The same key with the same body answers with the original run (`Idempotency-Replayed: true`); with another body, 409 IDEMPOTENCY_CONFLICT.',
  schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' },
};

const LAST_EVENT_ID: HeaderSpec = {
  name: 'Last-Event-ID',
  description:
    'Replays the events after this one (what EventSource sends on reconnect); wins over `after`.',
  schema: { type: 'string', pattern: '^\\d{1,15}$' },
};

/** Which error body a path answers with. */
export type ErrorFamily = 'gateway' | 'openai' | 'ollama';

export interface OperationSpec {
  method: 'get' | 'post' | 'delete' | 'head';
  /** OpenAPI path template (`{id}` for a parameter). */
  path: string;
  summary: string;
  tag: 'agents' | 'ollama' | 'health' | 'metrics' | 'openai' | 'ollama-native' | 'meta' | 'usage';
  /** `open`, or the least role whose API key may call it. */
  access: 'open' | 'agent' | 'admin';
  body?: string;
  params?: string;
  query?: string;
  /** Request headers the operation reads. */
  headers?: readonly HeaderSpec[];
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

/** A row of the gateway's own API: one JSON answer (`schema`) unless `extra.ok` says otherwise. */
const own = (
  method: OperationSpec['method'],
  path: string,
  summary: string,
  tag: OperationSpec['tag'],
  access: OperationSpec['access'],
  schema: string | undefined,
  extra: Partial<OperationSpec> = {},
): OperationSpec => ({
  method,
  path,
  summary,
  tag,
  access,
  ok: { '200': schema ? { schema } : {} },
  errors: 'gateway',
  ...extra,
});

/**
 * A probe's answer: its report with 200, and the same report with 503 when it fails (what a
 * probe consumer reads), never the error shape.
 */
const probe = (schema: string): Pick<OperationSpec, 'ok'> => ({
  ok: {
    '200': { schema },
    '503': { schema, description: 'The check failed; the body is the same report.' },
  },
});

/** The run object's schema (every agents route that answers with a run). */
export const RUN = 'agent-run.response';
const runParams = { params: 'agent-run.params' };

/** POST /agents/run and its alias: one operation under two paths. */
const runOperation = (path: string, summary: string): OperationSpec =>
  own('post', path, summary, 'agents', 'agent', RUN, {
    body: 'agent-run.request',
    headers: [IDEMPOTENCY_KEY],
    ok: {
      '200': {
        schema: RUN,
        types: [...JSON_T, ...SSE],
        description:
          'The finished run, or the run paused in requires_action; with `stream: true` Server-Sent Events (ending with the run or its pause).',
      },
      '202': {
        schema: RUN,
        description: 'Background run accepted, or `wait_timeout_ms` passed (the run goes on).',
      },
    },
  });

export const OPERATIONS: readonly OperationSpec[] = [
  // Probes and metrics.
  own('get', '/health', 'Service status and build', 'health', 'open', 'health.response'),
  own(
    'get',
    '/health/live',
    'Liveness probe (never calls Ollama)',
    'health',
    'open',
    'health-live.response',
    probe('health-live.response'),
  ),
  own(
    'get',
    '/health/ready',
    'Readiness probe',
    'health',
    'open',
    'health-ready.response',
    probe('health-ready.response'),
  ),
  own(
    'get',
    '/health/startup',
    'Startup probe',
    'health',
    'open',
    'health-startup.response',
    probe('health-startup.response'),
  ),
  own(
    'get',
    '/health/detailed',
    'Every check with its details',
    'health',
    'admin',
    'health-detailed.response',
  ),
  own('get', '/metrics', 'Prometheus metrics', 'metrics', 'open', undefined, {
    ok: { '200': { types: ['text/plain'], description: 'Prometheus text exposition.' } },
  }),
  own('get', '/openapi.json', 'This document', 'meta', 'open', undefined, {
    ok: { '200': { description: 'OpenAPI 3.1 document.' } },
  }),

  // Agents.
  own('get', '/agents', 'List agents', 'agents', 'agent', 'agent-list.response'),
  runOperation('/agents/run', 'Run an agent (answered, streamed or in the background)'),
  runOperation('/agents/run-agent', 'Run an agent (the same endpoint as POST /agents/run)'),
  own('get', '/agents/runs/{id}', 'One run', 'agents', 'agent', RUN, runParams),
  own('get', '/agents/runs/{id}/events', "Follow a run's events", 'agents', 'agent', undefined, {
    ...runParams,
    query: 'agent-run-events.query',
    headers: [LAST_EVENT_ID],
    ok: {
      '200': { types: SSE, description: 'Server-Sent Events.' },
      '204': { description: 'The run has ended and no event is left after the one asked for.' },
    },
  }),
  own('post', '/agents/runs/{id}/cancel', 'Cancel a run', 'agents', 'agent', RUN, runParams),
  own(
    'post',
    '/agents/runs/{id}/resume',
    'Resume a run in requires_action (client tool outputs, approvals)',
    'agents',
    'agent',
    RUN,
    {
      ...runParams,
      body: 'agent-run-resume.request',
      ok: {
        '200': {
          schema: RUN,
          types: [...JSON_T, ...SSE],
          description:
            'The run once it finished or paused again; with `stream: true` Server-Sent Events.',
        },
        '202': {
          schema: RUN,
          description: 'Resumed in the background, or `wait_timeout_ms` passed.',
        },
      },
    },
  ),
  own('get', '/agents/{name}', "One agent's definition", 'agents', 'agent', 'agent', {
    params: 'agent.params',
  }),

  own(
    'get',
    '/usage',
    'Token usage per key and model, with budgets',
    'usage',
    'agent',
    'usage.response',
    {
      query: 'usage.query',
    },
  ),

  // Operators' model management.
  own(
    'get',
    '/ollama/health',
    'Cached Ollama health',
    'ollama',
    'agent',
    'ollama-health.response',
    probe('ollama-health.response'),
  ),
  own(
    'get',
    '/ollama/health/detailed',
    'Ollama health with loaded models and queue',
    'ollama',
    'admin',
    'ollama-health-detailed.response',
  ),
  own(
    'get',
    '/ollama/models',
    'Installed models and the active one',
    'ollama',
    'agent',
    'ollama-models.response',
    { query: 'ollama-models.query' },
  ),
  own(
    'get',
    '/ollama/model-info',
    "A model's facts",
    'ollama',
    'agent',
    'ollama-model-info.response',
    { query: 'ollama-model-info.query' },
  ),
  own('post', '/ollama/model/switch', 'Switch the active model', 'ollama', 'admin', undefined, {
    body: 'ollama-switch.request',
    ok: { '200': { schema: 'ollama-switch.response', types: [...JSON_T, ...NDJSON] } },
  }),
  own('post', '/ollama/models/pull', 'Pull a model', 'ollama', 'admin', undefined, {
    body: 'ollama-pull.request',
    ok: { '200': { schema: 'ollama-pull.response', types: [...JSON_T, ...NDJSON] } },
  }),
  own('delete', '/ollama/models/{name}', 'Delete a model', 'ollama', 'admin', undefined, {
    params: 'ollama-model.params',
    ok: { '204': { description: 'Deleted.' } },
  }),

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
