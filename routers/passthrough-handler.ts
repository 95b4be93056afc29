import type { RequestHandler } from 'express';
import { streamSignals } from '../middleware/client-signal';
import { admissionTicket } from '../src/principal';
import type { ErrorShape } from '../middleware/compat-error-shape';
import type { Lifecycle } from '../services/health';
import type { PassthroughRoute, PassthroughService } from '../services/passthrough';
import { sendPassthrough } from './passthrough-response';

export interface PassthroughRouterOptions {
  passthrough: PassthroughService;
  validate: import('../middleware/validate').Validate;
  /** Registry of open streams, so a shutdown ends them in the API's own framing. */
  lifecycle?: Pick<Lifecycle, 'trackStream'>;
  /** The caller's token budgets, checked before a generation (middleware/token-budget). */
  tokenBudget?: RequestHandler;
}

/**
 * The handler of one drop-in route: forwards the (validated) body along `route`, with a signal
 * that aborts the upstream call when the client goes away or a shutdown ends the stream, and
 * writes the answer through as it arrives. `upstreamPath` maps the request to Ollama's path. A
 * HEAD is forwarded as the route's GET (Ollama answers HEAD on a few paths only); Node sends
 * no body for a HEAD.
 */
export function passthroughHandler(
  route: PassthroughRoute,
  shape: ErrorShape,
  options: PassthroughRouterOptions,
  upstreamPath: (params: Record<string, string>) => string = () => route.path,
): RequestHandler {
  return async (req, res) => {
    const { left, stop } = streamSignals(res);
    const { signal } = stop;
    const body = route.method === 'POST' || route.method === 'DELETE' ? req.body : undefined;
    const path = upstreamPath(req.params as Record<string, string>);
    // A client that went away has nobody to answer: its call was aborted and counted as
    // cancelled by the service, so its abort is not an error of ours.
    const unlessLeft = (err: unknown): undefined => {
      if (left.aborted) return undefined;
      throw err;
    };
    const answer = await options.passthrough
      .forward(
        { ...route, path },
        body,
        signal,
        admissionTicket(req.principal, req.ip),
        req.principal?.id,
      )
      .catch(unlessLeft);
    if (answer === undefined) return;
    await sendPassthrough(req, res, answer, { shape, stop, lifecycle: options.lifecycle }).catch(
      unlessLeft,
    );
  };
}
