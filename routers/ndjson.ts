import type { Request, Response } from 'express';
import { errorBody, toAppError } from '../src/errors';

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
 */
export async function sendNdjson(
  req: Request,
  res: Response,
  produce: (write: (line: object) => void) => Promise<void>,
): Promise<void> {
  const write = (line: object): void => {
    if (res.writableEnded || res.destroyed) return;
    if (!res.headersSent) {
      res.status(200);
      res.setHeader('Content-Type', NDJSON);
      res.setHeader('Cache-Control', 'no-cache');
      res.setHeader('X-Accel-Buffering', 'no'); // nginx: do not buffer progress
    }
    res.write(`${JSON.stringify(line)}\n`);
  };
  try {
    await produce(write);
  } catch (err) {
    if (!res.headersSent) throw err;
    write(errorBody(toAppError(err), req.id));
    throw err;
  }
  res.end();
}
