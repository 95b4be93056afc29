import { Router } from 'express';
import { openaiErrorShape } from '../middleware/compat-error-shape';
import { createMethodNotAllowed } from '../middleware/error-handler';
import type { PassthroughRoute } from '../services/passthrough';
import { passthroughHandler, type PassthroughRouterOptions } from './passthrough-handler';

const generation = (path: string, operation: PassthroughRoute['operation']): PassthroughRoute => ({
  api: 'openai',
  method: 'POST',
  path,
  kind: 'generation',
  operation,
  modelScoped: true,
  streamsByDefault: false,
});

/**
 * The OpenAI-compatible API at `/v1`, forwarded to Ollama's own `/v1` endpoints (Ollama does the
 * translation; the gateway adds keys, limits, the queue and metrics). Errors answer in OpenAI's
 * shape with the gateway's code in `code` (see middleware/compat-error-shape.ts).
 */
export function createOpenAiRouter(options: PassthroughRouterOptions): Router {
  const { validate } = options;
  const router = Router();
  const only = (...methods: string[]) => createMethodNotAllowed(methods);
  const post = (path: string, schema: string, operation: PassthroughRoute['operation']) =>
    router
      .route(path)
      .post(
        validate({ body: schema }),
        ...(options.tokenBudget ? [options.tokenBudget] : []),
        passthroughHandler(generation(path, operation), openaiErrorShape, options),
      )
      .all(only('POST'));

  post('/v1/chat/completions', 'openai-chat-completions.request', 'chat');
  post('/v1/completions', 'openai-completions.request', 'generate');
  post('/v1/embeddings', 'openai-embeddings.request', 'embed');
  post('/v1/responses', 'openai-responses.request', 'chat');

  const read = { api: 'openai', method: 'GET', kind: 'read', streamsByDefault: false } as const;
  router
    .route('/v1/models')
    .get(
      passthroughHandler(
        { ...read, path: '/v1/models', modelScoped: false },
        openaiErrorShape,
        options,
      ),
    )
    .all(only('GET'));
  router
    .route('/v1/models/:model')
    .get(
      validate({ params: 'openai-model.params' }),
      passthroughHandler(
        { ...read, path: '/v1/models/:model', modelScoped: true },
        openaiErrorShape,
        options,
        (params) => `/v1/models/${encodeURIComponent(params.model ?? '')}`,
      ),
    )
    .all(only('GET'));
  return router;
}
