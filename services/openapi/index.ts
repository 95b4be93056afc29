/**
 * The OpenAPI 3.1 document of the gateway, generated from the route catalog and the JSON
 * Schemas in schemas/ (the same files the routes validate with): one source of truth. Built
 * once per app; `GET /openapi.json` serves it.
 */
import type { SchemaRegistry } from '../../src/validation';
import { OPERATIONS, RUN, type ErrorFamily, type OperationSpec } from './catalog';

export { OPERATIONS, type OperationSpec } from './catalog';

type Json = Record<string, unknown>;

const COMPONENTS = '#/components/schemas/';

const ERROR_SCHEMA: Record<ErrorFamily, string> = {
  gateway: 'error.response',
  openai: 'openai-error.response',
  ollama: 'ollama-native-error.response',
};

/**
 * One schema as a component: `$schema`/`$id` dropped, and every `$ref` (`ollama-common#/…`,
 * `agent`, or `#/definitions/…` inside the schema itself) pointed into components.
 */
function toComponent(value: unknown, id: string): unknown {
  if (Array.isArray(value)) return value.map((v) => toComponent(v, id));
  if (value === null || typeof value !== 'object') return value;
  const out: Json = {};
  for (const [key, v] of Object.entries(value as Json)) {
    if (key === '$schema' || key === '$id') continue;
    if (key === '$ref' && typeof v === 'string') {
      const [target = '', pointer = ''] = v.split('#');
      out.$ref = `${COMPONENTS}${target === '' ? id : target}${pointer}`;
      continue;
    }
    out[key] = toComponent(v, id);
  }
  return out;
}

const ref = (id: string) => ({ $ref: `${COMPONENTS}${id}` });

function parameters(schemas: SchemaRegistry, id: string | undefined, where: 'path' | 'query') {
  if (!id) return [];
  const doc = schemas.schema(id) as { properties?: Json; required?: string[] };
  return Object.keys(doc.properties ?? {}).map((name) => ({
    name,
    in: where,
    required: where === 'path' || (doc.required ?? []).includes(name),
    schema: { $ref: `${COMPONENTS}${id}/properties/${name}` },
  }));
}

const header = (description: string, type: 'string' | 'integer' = 'string'): Json => ({
  description,
  schema: { type },
});

/** Response headers every answer carries, and those of the rate-limited routes. */
const REQUEST_ID = {
  'X-Request-ID': header('The request id, also in error bodies and on every log line of it.'),
};
const RATE_LIMIT = {
  RateLimit: header('The budget left (IETF draft-8 fields): `"<policy>"; r=<left>; t=<reset s>`.'),
  'RateLimit-Policy': header('The budget: `"<policy>"; q=<limit>; w=<window s>; pk=:<key>:`.'),
};
const RETRY_AFTER = {
  'Retry-After': header('Seconds to wait before trying again (429 and 503).', 'integer'),
};
const LOCATION = { Location: header("The run's URL (`/agents/runs/{id}`).") };

function operation(schemas: SchemaRegistry, op: OperationSpec): Json {
  const responses: Json = {};
  const always = { ...REQUEST_ID, ...(op.access === 'open' ? {} : RATE_LIMIT) };
  for (const [status, answer] of Object.entries(op.ok)) {
    const types = answer.types ?? ['application/json'];
    const content: Json = {};
    for (const type of types) {
      content[type] =
        type === 'application/json' && answer.schema ? { schema: ref(answer.schema) } : {};
    }
    const headers = status === '202' && answer.schema === RUN ? { ...always, ...LOCATION } : always;
    responses[status] = { description: answer.description ?? 'Success.', headers, content };
  }
  const error = { content: { 'application/json': { schema: ref(ERROR_SCHEMA[op.errors]) } } };
  responses['4XX'] = {
    description: 'Client error (401 without a valid key, 403 without the role, 429 limits).',
    headers: { ...always, ...RETRY_AFTER },
    ...error,
  };
  responses['5XX'] = {
    description: 'Ollama or the gateway failed (503 carries Retry-After).',
    headers: { ...always, ...RETRY_AFTER },
    ...error,
  };
  return {
    operationId: `${op.method}${op.path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
    summary: op.summary,
    tags: [op.tag],
    ...(op.access === 'open' ? { security: [] } : { 'x-required-role': op.access }),
    parameters: [
      ...parameters(schemas, op.params, 'path'),
      ...parameters(schemas, op.query, 'query'),
      ...(op.headers ?? []).map((h) => ({
        name: h.name,
        in: 'header',
        required: false,
        description: h.description,
        schema: h.schema,
      })),
    ],
    ...(op.body
      ? {
          requestBody: {
            required: true,
            content: { 'application/json': { schema: ref(op.body) } },
          },
        }
      : {}),
    responses,
  };
}

/** Builds the document; throws at start when the catalog names a schema that does not exist. */
export function buildOpenApiDocument(
  schemas: SchemaRegistry,
  build: { name: string; version: string },
): Json {
  const components: Json = {};
  for (const id of schemas.ids) components[id] = toComponent(schemas.schema(id), id);
  const paths: Record<string, Json> = {};
  for (const op of OPERATIONS) {
    for (const id of [op.body, op.params, op.query, ...Object.values(op.ok).map((a) => a.schema)]) {
      if (id !== undefined) schemas.schema(id);
    }
    paths[op.path] = { ...paths[op.path], [op.method]: operation(schemas, op) };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: build.name,
      version: build.version,
      description:
        'Gateway in front of Ollama: agent runs, probes, metrics, model management, and drop-in OpenAI-compatible (/v1) and Ollama-native (/api) endpoints behind API keys, rate limits and a bounded queue. Every GET operation also answers HEAD (the headers of the GET, no body).',
    },
    security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
    paths,
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'A gateway API key.' },
        apiKeyHeader: {
          type: 'apiKey',
          in: 'header',
          name: 'X-API-Key',
          description: 'The same key, for clients that cannot set Authorization.',
        },
      },
      schemas: components,
    },
  };
}
