import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from 'undici';
import type { SsrfGuard } from './ssrf-guard';

/** A `fetch` whose connections pass the SSRF guard and whose answers are bounded. */
export interface GuardedFetch {
  fetch(url: string | URL, init?: RequestInit): Promise<Response>;
  /** Closes its connections. */
  close(): Promise<void>;
}

/**
 * The same response with a body that fails once more than `limit` bytes came, while it is
 * read: a caller that reads answers whole (JSON) or as an SSE stream gets an error instead of
 * buffering an oversized answer. Failing the stream cancels the request, which closes its
 * connection.
 */
function capBody(res: Response, limit: number): Response {
  if (!res.body) return res;
  let seen = 0;
  const body = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > limit) controller.error(new Error(`The answer is larger than ${limit} bytes.`));
        else controller.enqueue(chunk);
      },
    }),
  );
  return new Response(body, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
}

/**
 * A `fetch` for clients that take one (the MCP SDK's transport): every connection resolves its
 * host through the guard's `lookup`, as webhooks and http_get do, so a DNS answer that changes
 * after `guard.check` cannot reach a private address; every answer's body is cut off past
 * `maxBodyBytes`. It checks no URL itself: `guard.check` the URLs it is given first.
 */
export function createGuardedFetch(
  guard: SsrfGuard,
  options: { maxBodyBytes: number },
): GuardedFetch {
  const dispatcher = new Agent({ connect: { lookup: guard.lookup } });
  return {
    async fetch(url, init) {
      const res = await undiciFetch(url, { ...(init as UndiciRequestInit), dispatcher });
      return capBody(res as unknown as Response, options.maxBodyBytes);
    },
    close: () => dispatcher.destroy().catch(() => undefined),
  };
}
