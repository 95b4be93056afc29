import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosError, type AxiosInstance } from 'axios';
import axiosRetry, { isNetworkError, retryAfter } from 'axios-retry';
import { backoff } from '../../src/clock';
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
   * and 429 with exponential backoff up to WEBHOOK_MAX_ATTEMPTS attempts. Never throws.
   */
  deliver(url: string, type: string, data: unknown): Promise<DeliveryResult>;
}

export interface WebhookSenderOptions {
  secret: string;
  maxAttempts: number;
  timeoutMs: number;
  /** The SSRF guard for webhooks (any host; WEBHOOK_ALLOWLIST hosts trusted); pins DNS at connect time. */
  guard: SsrfGuard;
  telemetry: Telemetry;
  logger: Logger;
  /** Clock for `webhook-timestamp` (ms). */
  now: () => number;
  /** Delay before retry `n` (1-based), ms; default exponential from 500 ms with jitter, or Retry-After. */
  retryDelayMs?: (retry: number, error: AxiosError) => number;
}

function retryable(error: AxiosError): boolean {
  const status = error.response?.status;
  if (status !== undefined) return status >= 500 || status === 429;
  return isNetworkError(error) || error.code === 'ECONNABORTED' || error.code === 'ETIMEDOUT';
}

/** Waits between delivery attempts: 250–500 ms before the first retry, doubling. */
const RETRY_BACKOFF = { baseMs: 500, jitter: 'equal' } as const;

/** The longest wait a receiver's Retry-After buys: a day-long one must not hold a delivery. */
export const MAX_RETRY_AFTER_MS = 60_000;

/** The wait before retry `n`: the backoff, or the receiver's Retry-After when longer (capped). */
export function webhookRetryDelay(n: number, error: AxiosError): number {
  return Math.max(backoff(n, RETRY_BACKOFF), Math.min(retryAfter(error), MAX_RETRY_AFTER_MS));
}

/** Builds the webhook sender on one axios instance (no redirects, DNS pinned by the guard). */
export function createWebhookSender(options: WebhookSenderOptions): WebhookSender {
  const { secret, guard, telemetry, logger, now } = options;
  const client: AxiosInstance = axios.create({
    timeout: options.timeoutMs,
    maxRedirects: 0,
    maxContentLength: 64 * 1024,
    responseType: 'text',
    // Receivers answer with anything; the body is never read as JSON.
    transformResponse: [(data: unknown) => data],
    httpAgent: new http.Agent({ keepAlive: false, lookup: guard.lookup }),
    httpsAgent: new https.Agent({ keepAlive: false, lookup: guard.lookup }),
    headers: { 'content-type': 'application/json', 'user-agent': 'ollama-agent-gateway-webhooks' },
  });
  // Each attempt (the first and every retry) is signed with its own timestamp, so a receiver's
  // replay window applies to when the attempt was made.
  client.interceptors.request.use((config) => {
    const id = String(config.headers['webhook-id']);
    const timestamp = Math.floor(now() / 1000);
    config.headers['webhook-timestamp'] = String(timestamp);
    config.headers['webhook-signature'] = signWebhook(secret, id, timestamp, String(config.data));
    return config;
  });
  axiosRetry(client, {
    retries: options.maxAttempts - 1,
    retryCondition: retryable,
    shouldResetTimeout: true,
    retryDelay: options.retryDelayMs ?? webhookRetryDelay,
  });

  return {
    async deliver(url, type, data) {
      const body = JSON.stringify({ type, timestamp: new Date(now()).toISOString(), data });
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
