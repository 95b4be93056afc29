import http from 'node:http';
import { parseSse, type SseEvent } from './agents-harness';

/** An SSE response read as it arrives, so a test can act between events. */
export interface SseClient {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Everything received so far, comments included. */
  readonly raw: string;
  events(): SseEvent[];
  /** Resolves when the received text satisfies `test` (checked on every chunk). */
  until(test: (raw: string) => boolean): Promise<void>;
  /** Resolves when the server ended the response. */
  ended: Promise<void>;
  /** Drops the connection like a client that went away. */
  destroy(): void;
}

export function openSse(
  url: string,
  options: { method?: 'GET' | 'POST'; body?: unknown; headers?: Record<string, string> } = {},
): Promise<SseClient> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: options.method ?? 'GET',
      headers: {
        accept: 'text/event-stream',
        ...(payload ? { 'content-type': 'application/json' } : {}),
        ...options.headers,
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let raw = '';
      const waiters: Array<{ test: (raw: string) => boolean; resolve: () => void }> = [];
      const check = (): void => {
        for (const w of [...waiters]) {
          if (w.test(raw)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve();
          }
        }
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        raw += chunk;
        check();
      });
      const ended = new Promise<void>((done) => res.on('close', () => done()));
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        get raw() {
          return raw;
        },
        events: () => parseSse(raw),
        until(test) {
          if (test(raw)) return Promise.resolve();
          return new Promise((r) => waiters.push({ test, resolve: r }));
        },
        ended,
        destroy: () => req.destroy(),
      });
    });
    req.end(payload);
  });
}
