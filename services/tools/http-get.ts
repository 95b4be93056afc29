import { Agent, request } from 'undici';
import { SsrfError, type SsrfGuard } from '../net';
import { ToolError, type ToolDefinition } from './types';

export interface HttpGetOptions {
  /** Checks every URL, including each redirect target; also pins the connection's DNS lookup. */
  guard: SsrfGuard;
  /** Largest body read, bytes; the rest is cut off and `truncated` is set (default 256 KiB). */
  maxBytes?: number;
  /** Redirects followed, each re-checked by the guard (default 3). */
  maxRedirects?: number;
  /** The tool's own deadline, ms (default 10 s). */
  timeoutMs?: number;
}

const TEXTUAL =
  /^(text\/|application\/(json|xml|xhtml\+xml|ld\+json|[\w.+-]+\+json|[\w.+-]+\+xml)\b)/i;

type Body = AsyncIterable<Buffer> & {
  destroy(): void;
  on(event: 'error', fn: () => void): unknown;
};

/** Stops reading a body; the abort error that destroying raises is expected, not a failure. */
function discard(body: Body): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** Reads at most `maxBytes` of a body, then stops reading (the connection is destroyed). */
async function readLimited(
  body: Body,
  maxBytes: number,
): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > maxBytes) {
      body.destroy();
      return {
        text: Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8'),
        truncated: true,
      };
    }
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
}

/**
 * `http_get`: fetches a text resource from an allowlisted host. The guard refuses anything but
 * https to public addresses of allowed hosts (DNS resolved, private / loopback / link-local /
 * metadata refused); redirects are followed by hand so each hop is checked again.
 * The registry only offers this tool when HTTP_TOOL_ALLOWLIST names hosts.
 */
export function createHttpGetTool(options: HttpGetOptions): ToolDefinition {
  const { guard } = options;
  const maxBytes = options.maxBytes ?? 256 * 1024;
  const maxRedirects = options.maxRedirects ?? 3;
  const timeoutMs = options.timeoutMs ?? 10_000;

  const fetchOnce = async (url: URL, signal: AbortSignal) => {
    const dispatcher = new Agent({ connect: { lookup: guard.lookup, timeout: timeoutMs } });
    try {
      const res = await request(url, {
        method: 'GET',
        dispatcher,
        signal,
        headers: {
          accept: 'text/*, application/json;q=0.9, */*;q=0.1',
          'user-agent': 'ollama-agent-gateway',
        },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const location = res.headers.location;
      if (res.statusCode >= 300 && res.statusCode < 400 && typeof location === 'string') {
        discard(res.body);
        return { redirect: new URL(location, url) };
      }
      const type = String(res.headers['content-type'] ?? '');
      if (type !== '' && !TEXTUAL.test(type)) {
        discard(res.body);
        throw new ToolError(
          `The response is ${type.split(';')[0]}, not text; only text is returned.`,
        );
      }
      const { text, truncated } = await readLimited(res.body, maxBytes);
      return {
        result: {
          url: url.href,
          status: res.statusCode,
          content_type: type,
          body: text,
          truncated,
        },
      };
    } finally {
      void dispatcher.destroy();
    }
  };

  return {
    name: 'http_get',
    description: `Fetches a web page or JSON document with HTTP GET (allowlisted hosts only, https). Returns status, content type and at most ${maxBytes} bytes of the body as text.`,
    parameters: {
      type: 'object',
      properties: {
        url: { type: 'string', minLength: 8, maxLength: 2048, description: 'Absolute https URL.' },
      },
      required: ['url'],
      additionalProperties: false,
    },
    idempotent: true,
    timeoutMs,
    async run(args, ctx) {
      let url: URL;
      try {
        url = await guard.check(String(args.url));
        for (let hop = 0; ; hop += 1) {
          const out = await fetchOnce(url, ctx.signal);
          if (out.result) return out.result;
          if (hop >= maxRedirects) throw new ToolError(`More than ${maxRedirects} redirects.`);
          url = await guard.check(out.redirect);
        }
      } catch (err) {
        if (err instanceof SsrfError)
          throw new ToolError(`Refused: ${err.message}`, { cause: err });
        if (err instanceof ToolError || ctx.signal.aborted) throw err;
        // Network failures are worth the one retry an idempotent tool gets.
        throw new ToolError(`The request failed: ${(err as Error).message}`, {
          retryable: true,
          cause: err,
        });
      }
    },
  };
}
