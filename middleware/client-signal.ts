import type { Response } from 'express';
import { onResponseClose } from '../src/response-close';

/**
 * An AbortSignal that aborts when the HTTP client goes away before its response finished, so
 * the Ollama request made for it is aborted too (Ollama stops generating for nobody).
 */
export function clientSignal(res: Response): AbortSignal {
  const controller = new AbortController();
  onResponseClose(res, () => {
    if (!res.writableFinished) {
      controller.abort(new DOMException('The client closed the connection.', 'AbortError'));
    }
  });
  return controller.signal;
}
