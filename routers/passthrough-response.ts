import type { Request, Response } from 'express';
import type { ErrorShape } from '../middleware/compat-error-shape';
import type { Lifecycle } from '../services/health';
import type { PassthroughAnswer } from '../services/passthrough';
import { toAppError, type AppError } from '../src/errors';

/** The in-band error of a stream that already sent its status, in its own framing. */
function inBandError(contentType: string, shape: ErrorShape, err: AppError, requestId: string) {
  const body = JSON.stringify(shape(err, requestId));
  // OpenAI's SDKs throw an APIError for a `data:` event carrying `error`; ollama-js throws for
  // an NDJSON line with an `error` key.
  return contentType.startsWith('text/event-stream') ? `data: ${body}\n\n` : `${body}\n`;
}

/**
 * Resolves once the client has taken what was written (`drain`) or is gone (`close`), and
 * leaves no listener behind: a long stream to a slow reader waits here many times.
 */
export function drainedOrClosed(res: Pick<Response, 'on' | 'off'>): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Writes Ollama's answer to the client: an answer that is not streamed is read whole and sent
 * in one piece (with its length, and compressed when large); a stream goes out with Ollama's
 * status and content type, then each chunk as it comes (waiting for `drain` when the client
 * reads slowly). Nothing is sent before the first chunk, so an error raised before it still
 * gets its status from the error handler. A stream is registered with the lifecycle: a
 * shutdown that outlasts SHUTDOWN_TIMEOUT_MS ends it with a SHUTTING_DOWN error in the API's
 * framing and aborts the upstream call through `stop`. A failure after the first chunk is told
 * in-band the same way, then handed to the error handler (which logs it and ends the response).
 */
export async function sendPassthrough(
  req: Request,
  res: Response,
  answer: PassthroughAnswer,
  options: { shape: ErrorShape; stop: AbortController; lifecycle?: Pick<Lifecycle, 'trackStream'> },
): Promise<void> {
  const contentType = answer.contentType ?? 'application/json; charset=utf-8';
  let endedByShutdown = false;
  const start = (): void => {
    res.status(answer.status);
    res.setHeader('Content-Type', contentType);
    if (!answer.streamed) return;
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('X-Accel-Buffering', 'no');
    options.lifecycle?.trackStream(res, (error) => {
      endedByShutdown = true;
      res.end(inBandError(contentType, options.shape, error, req.id));
      options.stop.abort(error);
    });
  };
  if (!answer.streamed) {
    const parts: Uint8Array[] = [];
    for await (const chunk of answer.chunks) parts.push(chunk);
    if (res.destroyed || res.writableEnded) return;
    start();
    res.end(parts.length === 1 ? parts[0] : Buffer.concat(parts));
    return;
  }
  try {
    for await (const chunk of answer.chunks) {
      if (res.destroyed || res.writableEnded) break;
      if (!res.headersSent) start();
      if (!res.write(chunk)) await drainedOrClosed(res);
    }
  } catch (err) {
    if (endedByShutdown) return;
    if (!res.headersSent) throw err;
    if (!res.writableEnded)
      res.write(inBandError(contentType, options.shape, toAppError(err), req.id));
    throw err;
  }
  if (!res.headersSent) start();
  if (!res.writableEnded) res.end();
}
