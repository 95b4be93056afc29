import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Handler, Route, RouteContext, SimCore } from './core';
import { aborted, HttpError, parseJsonObject, readBody, sendJson, sendText } from './http-io';
import { chat, generate } from './routes-inference';
import { embed, pull } from './routes-embed-pull';
import { copy, openaiModels, ps, remove, root, show, tags, version } from './routes-meta';
import { chatCompletions, openaiError } from './routes-openai';
import {
  completions,
  embeddings,
  legacyEmbeddings,
  openaiModel,
  responses,
} from './routes-openai-more';
import { ChunkWriter } from './streams';
import type { StreamFormat } from './streams';
import type { StreamFault } from './knobs';
import type { SimRequestLog } from './types';

function route(methods: Record<string, Handler>, inference = false, openai = false): Route {
  return { methods, inference, openai };
}

/** The route table of §9.2; GET routes also answer HEAD where Ollama registers both. */
export function createRoutes(): Map<string, Route> {
  return new Map<string, Route>([
    ['/', route({ GET: root, HEAD: root })],
    ['/api/version', route({ GET: version, HEAD: version })],
    ['/api/tags', route({ GET: tags, HEAD: tags })],
    ['/api/show', route({ POST: show })],
    ['/api/ps', route({ GET: ps })],
    ['/api/generate', route({ POST: generate }, true)],
    ['/api/chat', route({ POST: chat }, true)],
    ['/api/embed', route({ POST: embed }, true)],
    ['/api/pull', route({ POST: pull })],
    ['/api/delete', route({ DELETE: remove })],
    ['/api/copy', route({ POST: copy })],
    ['/v1/chat/completions', route({ POST: chatCompletions }, true, true)],
    ['/v1/models', route({ GET: openaiModels })],
    ['/api/embeddings', route({ POST: legacyEmbeddings }, true)],
    ['/v1/completions', route({ POST: completions }, true, true)],
    ['/v1/embeddings', route({ POST: embeddings }, true, true)],
    ['/v1/responses', route({ POST: responses }, true, true)],
    ['/v1/models/:model', route({ GET: openaiModel }, false, true)],
  ]);
}

export interface RequestDeps {
  core: SimCore;
  routes: Map<string, Route>;
  nextId: () => number;
  log: (entry: SimRequestLog) => void;
  /** Aborted by close()/stop() so hung and sleeping requests let go. */
  lifetime: () => AbortSignal;
  track: (delta: 1 | -1) => void;
}

function tryParse(raw: string): unknown {
  try {
    return raw === '' ? undefined : (JSON.parse(raw) as unknown);
  } catch {
    return undefined;
  }
}

function sendError(res: ServerResponse, openai: boolean, status: number, message: string) {
  if (res.headersSent) return void res.end();
  sendJson(res, status, openai ? openaiError(status, message) : { error: message });
}

/**
 * One request's life: count it in flight, log it, report 'request', then apply hang/failNext
 * and route it. When the socket closes before the response finished the client went away:
 * the request's signal aborts and 'aborted' is reported (unless the simulator dropped it).
 */
export async function handleRequest(deps: RequestDeps, req: IncomingMessage, res: ServerResponse) {
  const { core } = deps;
  const id = deps.nextId();
  const method = req.method ?? 'GET';
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const controller = new AbortController();
  const lifetime = deps.lifetime();
  const onLifetimeEnd = () => controller.abort();
  lifetime.addEventListener('abort', onLifetimeEnd, { once: true });
  let dropped = false;
  deps.track(1);
  res.on('close', () => {
    lifetime.removeEventListener('abort', onLifetimeEnd);
    deps.track(-1);
    if (!res.writableFinished) {
      controller.abort();
      if (!dropped) core.emit({ type: 'aborted', requestId: id, method, path });
    }
    core.emit({ type: 'request-closed', requestId: id, method, path });
  });

  const entry = (at: Date, raw: string) => ({
    id,
    method,
    path,
    body: tryParse(raw),
    headers: req.headers,
    at,
  });
  const at = new Date(core.now());
  let raw: string;
  try {
    raw = await readBody(req);
  } catch {
    return; // the client went away while sending the body
  }
  deps.log(entry(at, raw));
  core.emit({ type: 'request', requestId: id, method, path, data: tryParse(raw) });

  const hung = core.knobs.takeHang();
  if (hung) await Promise.race([hung, aborted(controller.signal)]);
  if (controller.signal.aborted) return;

  const found =
    deps.routes.get(path) ??
    (path.startsWith('/v1/models/') ? deps.routes.get('/v1/models/:model') : undefined);
  if (!found) return sendText(res, 404, '404 page not found');
  const handler = found.methods[method];
  if (!handler) return sendText(res, 405, '405 method not allowed');
  const failure = core.knobs.takeFailure(found.inference);
  if (failure) return sendError(res, found.openai, failure.status, failure.message);

  const ctx: RouteContext = {
    id,
    method,
    path,
    req,
    res,
    signal: controller.signal,
    body: () => parseJsonObject(raw),
    stream: (format: StreamFormat, fault?: StreamFault) =>
      new ChunkWriter(
        {
          res,
          signal: controller.signal,
          knobs: core.knobs,
          clock: core.clock,
          fault,
          requestId: id,
          path,
          emit: core.emit,
          markDropped: () => (dropped = true),
        },
        format,
      ),
  };
  try {
    await handler(ctx, core);
  } catch (err) {
    if (controller.signal.aborted) return;
    if (err instanceof HttpError && err.raw && !res.headersSent) {
      return sendJson(res, err.status, err.raw.body, undefined, err.raw.headers);
    }
    if (err instanceof HttpError) return sendError(res, found.openai, err.status, err.message);
    const message = err instanceof Error ? err.message : String(err);
    sendError(res, found.openai, 500, message);
  }
}
