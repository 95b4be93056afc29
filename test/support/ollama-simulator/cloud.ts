import type { InstalledModel } from './catalog';
import type { SimCore } from './core';
import { HttpError } from './http-io';
import type { SimCloudAnswer } from './types';

/**
 * Cloud models (ollama-api.md §1.13). Explicit cloud names are proxied to ollama.com; the
 * errors Ollama produces locally keep the native `{"error"}` shape on every route, including
 * /v1; upstream answers (ollama.com's 429 among them) pass through unchanged.
 */
export const CLOUD_DISABLED = 'ollama cloud is disabled: remote model is unavailable';
export const CLOUD_DISABLED_SHOW = 'ollama cloud is disabled: remote model details are unavailable';
export const REMOTE_NOT_ALLOWED = 'this server cannot run this remote model';

const SIGNIN_URL =
  'https://ollama.com/connect?' +
  new URLSearchParams({
    name: 'ollama-simulator',
    key: 'c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTU=',
  }).toString();

const REASON: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

function raw(status: number, body: unknown, headers?: Record<string, string>): HttpError {
  const message = (body as { error?: unknown } | null)?.error;
  return new HttpError(status, typeof message === 'string' ? message : `${status}`, {
    body,
    ...(headers ? { headers } : {}),
  });
}

/**
 * What the cloud knob answers instead of a model's reply; undefined for 'ok'. `stub` is the
 * path through an installed cloud stub, where an upstream error is re-sent with Go's tagless
 * StatusError fields (`StatusCode`, `Status`) beside `error` (derived, unconfirmed).
 */
export function cloudRefusal(
  answer: SimCloudAnswer,
  path: string,
  stub: boolean,
): HttpError | undefined {
  if (answer === 'ok') return undefined;
  if (answer === 'disabled') {
    return raw(403, { error: path === '/api/show' ? CLOUD_DISABLED_SHOW : CLOUD_DISABLED });
  }
  if (answer === 'unauthorized') return raw(401, { error: 'unauthorized', signin_url: SIGNIN_URL });
  if (answer === 'unreachable') {
    const target = `https://ollama.com:443${path}`;
    return raw(502, { error: `Post "${target}": dial tcp: lookup ollama.com: no such host` });
  }
  const body = answer.body ?? { error: REASON[answer.status] ?? `status ${answer.status}` };
  if (!stub) return raw(answer.status, body, answer.headers);
  const text = (body as { error?: unknown } | null)?.error;
  return raw(
    answer.status,
    {
      StatusCode: answer.status,
      Status: `${answer.status} ${REASON[answer.status] ?? ''}`.trim(),
      error: typeof text === 'string' ? text : JSON.stringify(body),
    },
    answer.headers,
  );
}

/** A model ollama.com serves under an explicit cloud name: not installed, never loaded here. */
export function cloudModel(base: string): InstalledModel {
  return {
    name: base,
    family: 'cloud',
    parameterSize: '0',
    quantization: '',
    capabilities: ['completion', 'tools', 'thinking'],
    contextLength: 131072,
    embeddingLength: 3072,
    sizeBytes: 0,
    digest: '',
    modifiedAt: new Date(0),
    format: 'gguf',
    toolCallMode: 'rendered',
    remoteHost: 'https://ollama.com:443',
    remoteModel: base,
  };
}

/** Throws what the cloud knob answers for an explicit cloud name or an installed stub. */
export function checkCloud(core: SimCore, path: string, model: InstalledModel, stub: boolean) {
  if (stub && model.remoteHost) {
    const host = hostOf(model.remoteHost);
    if (!core.remotes.some((r) => r.toLowerCase() === host)) {
      throw new HttpError(400, REMOTE_NOT_ALLOWED);
    }
  }
  const refusal = cloudRefusal(core.knobs.cloud, path, stub);
  if (refusal) throw refusal;
}

function hostOf(remote: string): string {
  try {
    return new URL(remote.includes('://') ? remote : `https://${remote}`).hostname.toLowerCase();
  } catch {
    return remote.toLowerCase();
  }
}
