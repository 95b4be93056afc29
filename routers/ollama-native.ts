import { Router } from 'express';
import { ollamaErrorShape } from '../middleware/compat-error-shape';
import { createMethodNotAllowed } from '../middleware/error-handler';
import type { PassthroughRoute } from '../services/passthrough';
import { passthroughHandler, type PassthroughRouterOptions } from './passthrough-handler';

type Row = Omit<PassthroughRoute, 'api'> & { schema?: string };

/**
 * Ollama's native API as ollama-js, ollama-python and Open WebUI call it. Model management
 * (pull, push, create, copy, delete) is for admin keys only (the auth policy); paths not listed
 * here are 404 under `/api`. Errors answer in Ollama's shape `{"error":"…"}`.
 */
export const OLLAMA_NATIVE_ROUTES: readonly Row[] = [
  gen('/api/chat', 'chat', true, 'ollama-native-chat.request'),
  gen('/api/generate', 'generate', true, 'ollama-native-generate.request'),
  gen('/api/embed', 'embed', false, 'ollama-native-embed.request'),
  gen('/api/embeddings', 'embed', false, 'ollama-native-embeddings.request'),
  read('GET', '/api/tags', false),
  read('POST', '/api/show', true, 'ollama-native-model.request'),
  read('GET', '/api/ps', false),
  read('GET', '/api/version', false),
  read('GET', '/', false),
  admin('POST', '/api/pull', true, 'ollama-native-model.request'),
  admin('POST', '/api/push', true, 'ollama-native-model.request'),
  admin('POST', '/api/create', true, 'ollama-native-model.request'),
  admin('POST', '/api/copy', false, 'ollama-native-copy.request'),
  admin('DELETE', '/api/delete', false, 'ollama-native-model.request'),
];

function gen(path: string, operation: Row['operation'], streams: boolean, schema: string): Row {
  const streamsByDefault = streams;
  return {
    method: 'POST',
    path,
    kind: 'generation',
    operation,
    modelScoped: true,
    streamsByDefault,
    schema,
  };
}

function read(method: 'GET' | 'POST', path: string, modelScoped: boolean, schema?: string): Row {
  return { method, path, kind: 'read', modelScoped, streamsByDefault: false, schema };
}

function admin(method: 'POST' | 'DELETE', path: string, streams: boolean, schema: string): Row {
  return { method, path, kind: 'admin', modelScoped: true, streamsByDefault: streams, schema };
}

export function createOllamaNativeRouter(options: PassthroughRouterOptions): Router {
  const router = Router();
  for (const { schema, ...row } of OLLAMA_NATIVE_ROUTES) {
    const handler = passthroughHandler({ ...row, api: 'ollama' }, ollamaErrorShape, options);
    const checks = schema ? [options.validate({ body: schema })] : [];
    if (row.kind === 'generation' && options.tokenBudget) checks.push(options.tokenBudget);
    const route = router.route(row.path);
    if (row.method === 'GET') route.get(handler);
    else if (row.method === 'POST') route.post(...checks, handler);
    else route.delete(...checks, handler);
    // Express answers HEAD with the GET handler, as Ollama registers HEAD beside GET.
    route.all(createMethodNotAllowed(row.method === 'GET' ? ['GET', 'HEAD'] : [row.method]));
  }
  return router;
}
