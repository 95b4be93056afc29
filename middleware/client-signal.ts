import type { Response } from 'express';
import { onResponseClose } from '../src/response-close';

const clientLeft = (): DOMException =>
  new DOMException('The client closed the connection.', 'AbortError');

/**
 * An AbortSignal that aborts when the HTTP client goes away before its response finished, so
 * the Ollama request made for it is aborted too (Ollama stops generating for nobody).
 */
export function clientSignal(res: Response): AbortSignal {
  const controller = new AbortController();
  onResponseClose(res, () => {
    if (!res.writableFinished) controller.abort(clientLeft());
  });
  return controller.signal;
}

/**
 * The signals of an answer passed through as it arrives: `left` aborts when the client goes
 * away before the response finished; `stop` aborts then too, and also when the gateway ends
 * the answer itself (a shutdown, a write that failed), so `stop.signal` is the one to hand to
 * the upstream call. One listener sets both: `AbortSignal.any` would do the same with weak
 * references and a finalization registry, whose GC work cost 36–69 µs per answered `/v1` chat
 * and 25–73 µs per streamed one here (`bench:ab`, interleaved and concurrent pairs; README).
 */
export function streamSignals(res: Response): { left: AbortSignal; stop: AbortController } {
  const left = new AbortController();
  const stop = new AbortController();
  onResponseClose(res, () => {
    if (res.writableFinished) return;
    const reason = clientLeft();
    left.abort(reason);
    stop.abort(reason);
  });
  return { left: left.signal, stop };
}
