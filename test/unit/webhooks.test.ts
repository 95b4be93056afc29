import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AxiosError } from 'axios';
import { createNoopTelemetry } from '../../services/metrics/telemetry';
import { createSsrfGuard } from '../../services/net/ssrf-guard';
import { createLogger } from '../../src/logger';
import { createRequestContextStore } from '../../src/request-context';
import { createManualClock } from '../support/manual-clock';
import { until } from '../support/ollama-simulator/settle';
import {
  MAX_RETRY_DELAY_MS,
  createWebhookSender,
  decodeSecret,
  signWebhook,
  verifyWebhook,
  webhookRetryDelay,
} from '../../services/agents/webhooks';

describe('webhook signatures (Standard Webhooks)', () => {
  // The example from the Standard Webhooks reference libraries.
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const id = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
  const ts = 1614265330;
  const body = '{"test": 2432232314}';

  it('matches the reference signature', () => {
    assert.equal(
      signWebhook(secret, id, ts, body),
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    );
  });

  it('verifies, and refuses a changed body, a wrong secret or a stale timestamp', () => {
    const signature = signWebhook(secret, id, ts, body);
    const headers = { id, timestamp: String(ts), signature: `v1,bogus ${signature}` };
    assert.equal(verifyWebhook(secret, headers, body, { nowS: ts + 10 }), true);
    assert.equal(verifyWebhook(secret, headers, `${body} `, { nowS: ts }), false);
    assert.equal(verifyWebhook('whsec_AAAA', headers, body, { nowS: ts }), false);
    assert.equal(verifyWebhook(secret, headers, body, { nowS: ts + 301 }), false);
  });

  it('uses a plain secret as its bytes', () => {
    assert.deepEqual(decodeSecret('plain'), Buffer.from('plain'));
  });
});

describe('webhook retry delay', () => {
  const answered = (retryAfter?: string) =>
    ({
      isAxiosError: true,
      response: {
        status: 503,
        headers: retryAfter === undefined ? {} : { 'retry-after': retryAfter },
      },
    }) as unknown as AxiosError;

  it('waits the receiver’s Retry-After when it is longer than the backoff', () => {
    assert.equal(webhookRetryDelay(1, answered('30')), 30_000);
  });

  it('caps a Retry-After that would hold the delivery for a day', () => {
    assert.equal(webhookRetryDelay(1, answered('86400')), MAX_RETRY_DELAY_MS);
  });

  it('backs off on its own without one', () => {
    const delay = webhookRetryDelay(2, answered());
    assert.ok(delay > 0 && delay < MAX_RETRY_DELAY_MS, String(delay));
  });

  it('never waits longer than MAX_RETRY_DELAY_MS, however many attempts came before', () => {
    for (const n of [10, 19, 40]) {
      const delay = webhookRetryDelay(n, answered());
      assert.ok(delay >= MAX_RETRY_DELAY_MS / 2 && delay <= MAX_RETRY_DELAY_MS, String(delay));
    }
  });
});

describe('webhook delivery deadline', () => {
  /**
   * A receiver that answers 200 at once and then drips its body, a byte every 100 ms for 4 s:
   * never idle long enough for a socket timeout.
   */
  async function startDripper(): Promise<{ url: string; requests: () => number; server: Server }> {
    let requests = 0;
    const server = createServer((req, res) => {
      requests += 1;
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('x');
      let left = 40;
      const drip = setInterval(() => {
        left -= 1;
        if (left > 0) res.write('x');
        else res.end();
      }, 100);
      res.on('close', () => clearInterval(drip));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
      requests: () => requests,
      server,
    };
  }

  const senderOn = (
    clock: ReturnType<typeof createManualClock>,
    maxAttempts: number,
    retryDelayMs: (retry: number, error: AxiosError) => number = () => 0,
  ) =>
    createWebhookSender({
      secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      maxAttempts,
      timeoutMs: 1500,
      guard: createSsrfGuard({ allowHosts: null, trustedHosts: ['127.0.0.1'] }),
      telemetry: createNoopTelemetry(),
      logger: createLogger({
        level: 'silent',
        format: 'json',
        context: createRequestContextStore(),
      }),
      clock,
      retryDelayMs,
    });

  it('cuts off each attempt of a receiver that drips its body, at the attempt’s deadline', async () => {
    const receiver = await startDripper();
    try {
      const clock = createManualClock({ now: Date.now });
      const startedAt = Date.now();
      // What axios-retry sees before its backoff: a timed-out attempt, and no signal (a spent
      // one would make it skip the wait).
      const retried: Array<[string | undefined, AbortSignal | undefined]> = [];
      const sender = senderOn(clock, 2, (_n, error) => {
        retried.push([error.code, error.config?.signal as AbortSignal | undefined]);
        return 0;
      });
      const delivery = sender.deliver(receiver.url, 'run.completed', { id: 'run_x' });
      await until(() => receiver.requests() === 1);
      clock.advance(1500);
      await until(() => receiver.requests() === 2);
      clock.advance(1500);
      const result = await delivery;
      assert.deepEqual(result, { status: 'failed', attempts: 2, statusCode: null });
      assert.deepEqual(retried, [['ETIMEDOUT', undefined]]);
      assert.deepEqual(clock.pending(), [], 'no deadline left armed');
      assert.ok(Date.now() - startedAt < 3000, 'not held by the drip');
    } finally {
      receiver.server.closeAllConnections();
      await new Promise<void>((r) => receiver.server.close(() => r()));
    }
  });
});
