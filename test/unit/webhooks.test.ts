import assert from 'node:assert/strict';
import type { AxiosError } from 'axios';
import {
  MAX_RETRY_AFTER_MS,
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
    assert.equal(webhookRetryDelay(1, answered('86400')), MAX_RETRY_AFTER_MS);
  });

  it('backs off on its own without one', () => {
    const delay = webhookRetryDelay(2, answered());
    assert.ok(delay > 0 && delay < MAX_RETRY_AFTER_MS, String(delay));
  });
});
