import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosError, type AxiosInstance, type InternalAxiosRequestConfig } from 'axios';
import axiosRetry, { isNetworkError, retryAfter } from 'axios-retry';
import { backoff, type Clock, type TimerHandle } from '../../src/clock';
import type { Logger } from '../../src/logger';
import type { SsrfGuard } from '../net';
import type { Telemetry } from '../metrics';

/**
 * The signing key: a Standard-Webhooks `whsec_<base64>` secret is base64-decoded; any other
 * string is used as its UTF-8 bytes.
 */
export function decodeSecret(secret: string): Buffer {
  return secret.startsWith('whsec_')
    ? Buffer.from(secret.slice('whsec_'.length), 'base64')
    : Buffer.from(secret, 'utf8');
}

/** `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, the Standard-Webhooks signature. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', decodeSecret(secret)).update(`${id}.${timestamp}.${body}`);
  return `v1,${mac.digest('base64')}`;
}

/**
 * What a receiver does: recompute the signature over the raw body and compare in constant
 * time with each `v1,` entry of `webhook-signature`, and refuse timestamps more than
 * `toleranceS` (default 300) away from now.
 */
export function verifyWebhook(
  secret: string,
  headers: { id: string; timestamp: string; signature: string },
  body: string,
  options: { nowS?: number; toleranceS?: number } = {},
): boolean {
  const timestamp = Number(headers.timestamp);
  const nowS = options.nowS ?? Math.floor(Date.now() / 1000);
  if (!Number.isInteger(timestamp) || Math.abs(nowS - timestamp) > (options.toleranceS ?? 300)) {
    return false;
  }
  const expected = Buffer.from(signWebhook(secret, headers.id, timestamp, body));
  return headers.signature.split(' ').some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

export interface DeliveryResult {
  status: 'delivered' | 'failed';
  attempts: number;
  /** The last HTTP status received, null when no response came back. */
  statusCode: number | null;
}

export interface WebhookSender {
  /**
   * POSTs `{type, timestamp, data}` to `url`, signed, retrying network errors, timeouts, 5xx
   * and 429 with exponential backoff (at most MAX_RETRY_DELAY_MS between attempts) up to
   * WEBHOOK_MAX_ATTEMPTS attempts, each within `timeoutMs` from its start to the end of the
   * answer's body. Never throws.
   */
  deliver(url: string, type: string, data: unknown): Promise<DeliveryResult>;
}

export interface WebhookSenderOptions {
  secret: string;
  maxAttempts: number;
  /** Wall-clock deadline of one attempt, from its start to the last byte of the answer. */
  timeoutMs: number;
  /** The SSRF guard for webhooks (any host; WEBHOOK_ALLOWLIST hosts trusted); pins DNS at connect time. */
  guard: SsrfGuard;
  telemetry: Telemetry;
  logger: Logger;
  /** `webhook-timestamp` and each attempt's deadline. */
  clock: Pick<Clock, 'now' | 'after'>;
  /** Delay before retry `n` (1-based), ms; default exponential from 500 ms with jitter, or Retry-After. */
  retryDelayMs?: (retry: number, error: AxiosError) => number;
}

/** What `deliver` reports of an attempt that ran out of time. */
const ATTEMPT_TIMED_OUT = 'ETIMEDOUT';

function retryable(error: AxiosError): boolean {
  const status = error.response?.status;
  if (status !== undefined) return status >= 500 || status === 429;
  return isNetworkError(error) || error.code === 'ECONNABORTED' || error.code === ATTEMPT_TIMED_OUT;
}

/**
 * The longest wait between two attempts, whatever the backoff or a receiver's Retry-After
 * says: with WEBHOOK_MAX_ATTEMPTS at 20 an uncapped doubling would stretch one delivery (and
 * the run it holds) over days.
 */
export const MAX_RETRY_DELAY_MS = 60_000;

/** Waits between delivery attempts: 250–500 ms before the first retry, doubling, capped. */
const RETRY_BACKOFF = { baseMs: 500, maxMs: MAX_RETRY_DELAY_MS, jitter: 'equal' } as const;

/** The wait before retry `n`: the backoff, or the receiver's Retry-After when longer (capped). */
export function webhookRetryDelay(n: number, error: AxiosError): number {
  return Math.max(backoff(n, RETRY_BACKOFF), Math.min(retryAfter(error), MAX_RETRY_DELAY_MS));
}

/** Builds the webhook sender on one axios instance (no redirects, DNS pinned by the guard). */
export function createWebhookSender(options: WebhookSenderOptions): WebhookSender {
  const { secret, guard, telemetry, logger, clock, timeoutMs } = options;
  // No axios `timeout`: past the response headers it only watches for an idle socket, so a
  // receiver that drips its body would hold an attempt for days. Each attempt has its own
  // deadline instead (below).
  const client: AxiosInstance = axios.create({
    maxRedirects: 0,
    maxContentLength: 64 * 1024,
    responseType: 'text',
    // Receivers answer with anything; the body is never read as JSON.
    transformResponse: [(data: unknown) => data],
    httpAgent: new http.Agent({ keepAlive: false, lookup: guard.lookup }),
    httpsAgent: new https.Agent({ keepAlive: false, lookup: guard.lookup }),
    headers: { 'content-type': 'application/json', 'user-agent': 'ollama-agent-gateway-webhooks' },
  });
  // Each attempt (the first and every retry: axios-retry sends a retry through the instance, so
  // through its interceptors) is signed with its own timestamp, so a receiver's replay window
  // applies to when the attempt was made, and gets its own deadline: an abort signal that
  // fires `timeoutMs` after the attempt starts, cutting the connection wherever it is.
  const deadlines = new WeakMap<InternalAxiosRequestConfig, { timer: TimerHandle; hit: boolean }>();
  client.interceptors.request.use((config) => {
    const id = String(config.headers['webhook-id']);
    const timestamp = Math.floor(clock.now() / 1000);
    config.headers['webhook-timestamp'] = String(timestamp);
    config.headers['webhook-signature'] = signWebhook(secret, id, timestamp, String(config.data));
    const controller = new AbortController();
    const deadline = {
      hit: false,
      timer: clock.after(timeoutMs, () => {
        deadline.hit = true;
        controller.abort();
      }),
    };
    deadlines.set(config, deadline);
    config.signal = controller.signal;
    return config;
  });
  // Ends an attempt's deadline; says whether it was what ended the attempt. The signal goes
  // too: axios-retry reads `config.signal` as the caller's cancel and would skip its backoff
  // (or cut it short) for an attempt's spent signal. Registered before axios-retry, so it runs
  // first.
  const endAttempt = (config: InternalAxiosRequestConfig | undefined): boolean => {
    const deadline = config && deadlines.get(config);
    if (!config || !deadline) return false;
    deadline.timer.cancel();
    deadlines.delete(config);
    delete config.signal;
    return deadline.hit;
  };
  client.interceptors.response.use(
    (res) => {
      endAttempt(res.config);
      return res;
    },
    (err: AxiosError) => {
      if (endAttempt(err.config)) {
        err.code = ATTEMPT_TIMED_OUT;
        err.message = `The attempt did not end within ${timeoutMs} ms.`;
      }
      return Promise.reject(err);
    },
  );
  axiosRetry(client, {
    retries: options.maxAttempts - 1,
    retryCondition: retryable,
    retryDelay: options.retryDelayMs ?? webhookRetryDelay,
  });

  return {
    async deliver(url, type, data) {
      const body = JSON.stringify({ type, timestamp: new Date(clock.now()).toISOString(), data });
      const headers = { 'webhook-id': `msg_${randomUUID().replace(/-/g, '')}` };
      let result: DeliveryResult;
      try {
        // The URL passed the guard when the run was created; check again (DNS may have changed).
        await guard.check(url);
        const res = await client.post(url, body, { headers });
        const state = res.config['axios-retry'] as { retryCount?: number } | undefined;
        result = {
          status: 'delivered',
          attempts: (state?.retryCount ?? 0) + 1,
          statusCode: res.status,
        };
      } catch (err) {
        const e = err as AxiosError;
        const state = e.config?.['axios-retry'] as { retryCount?: number } | undefined;
        result = {
          status: 'failed',
          attempts: e.config ? (state?.retryCount ?? 0) + 1 : 0,
          statusCode: e.response?.status ?? null,
        };
        logger.warn('webhook delivery failed', {
          attempts: result.attempts,
          status_code: result.statusCode,
          error: (err as Error).message,
        });
      }
      telemetry.webhook({ outcome: result.status, attempts: result.attempts });
      return result;
    },
  };
}
