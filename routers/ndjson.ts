import type { Request, Response } from 'express';
import type { Lifecycle } from '../services/health';
import { errorBody, toAppError } from '../src/errors';
import { onResponseClose } from '../src/response-close';

export const NDJSON = 'application/x-ndjson';

/** Whether the client asked for NDJSON progress (`Accept: application/x-ndjson`). */
export function wantsNdjson(req: Request): boolean {
  return req.accepts(['application/json', NDJSON]) === NDJSON;
}

/**
 * Streams `produce`'s lines as NDJSON, one JSON object per line, each written as it arrives.
 * Headers go out with the first line, so an error raised before any progress (404, 409, 503)
 * still gets its proper status from the error handler. An error after that can only be told
 * in-band: it becomes a last `{"error":{…}}` line, then goes on to the error handler, which
 * logs it and ends the response.
 *
 * With `tracking`, the open stream is registered with the lifecycle: a shutdown that outlasts
 * SHUTDOWN_TIMEOUT_MS ends it with a last SHUTTING_DOWN error line and aborts `tracking.stop`
 * (the signal of the upstream work), instead of leaving the socket to be cut.
 */
export async function sendNdjson(
  req: Request,
  res: Response,
  produce: (write: (line: object) => void) => Promise<void>,
  tracking?: { lifecycle?: Pick<Lifecycle, 'trackStream'>; stop: AbortController },
): Promise<void> {
  let endedByShutdown = false;
  const write = (line: object): void => {
    if (res.writableEnded || res.destroyed) return;
    if (!res.headersSent) {
      res.status(200);
      res.setHeader('Content-Type', NDJSON);
      res.setHeader('Cache-Control', 'no-cache');
      res.setHeader('X-Accel-Buffering', 'no'); // nginx: do not buffer progress
      tracking?.lifecycle?.trackStream(res, (error) => {
        endedByShutdown = true;
        write(errorBody(error, req.id));
        res.end();
        tracking.stop.abort(error);
      });
    }
    res.write(`${JSON.stringify(line)}\n`);
  };
  try {
    await produce(write);
  } catch (err) {
    if (!res.headersSent) throw err;
    // Already told in-band (and logged by the lifecycle): the abort is ours, not a failure.
    if (endedByShutdown) return;
    write(errorBody(toAppError(err), req.id));
    throw err;
  }
  res.end();
}

/**
 * Answers `work`'s result as JSON (the same operations without `Accept: application/x-ndjson`),
 * registered with the lifecycle while it runs: a shutdown that outlasts SHUTDOWN_TIMEOUT_MS
 * aborts `tracking.stop` with SHUTTING_DOWN, which the error handler answers (503 in the error
 * shape) before the connection closes, rather than the socket being cut.
 */
export async function sendJson(
  res: Response,
  work: () => Promise<unknown>,
  tracking: { lifecycle?: Pick<Lifecycle, 'trackStream'>; stop: AbortController },
): Promise<void> {
  const answered = new Promise<void>((resolve) => onResponseClose(res, resolve));
  tracking.lifecycle?.trackStream(res, async (error) => {
    tracking.stop.abort(error);
    await answered;
  });
  let result: unknown;
  try {
    result = await work();
  } catch (err) {
    // Whatever the aborted work threw, the answer is the shutdown's.
    throw tracking.stop.signal.aborted ? (tracking.stop.signal.reason as Error) : err;
  }
  res.json(result);
}
