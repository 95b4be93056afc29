import type { ServerResponse } from 'node:http';

/**
 * Runs `listener` once the response has closed (sent, or its client left): on the next
 * microtask when it has closed already, since a `close` listener added after the event (a
 * client that left while the handler awaited) would never run. Returns the function that
 * removes the listener.
 */
export function onResponseClose(res: ServerResponse, listener: () => void): () => void {
  if (res.closed) {
    let removed = false;
    queueMicrotask(() => {
      if (!removed) listener();
    });
    return () => {
      removed = true;
    };
  }
  res.once('close', listener);
  return () => {
    res.off('close', listener);
  };
}
