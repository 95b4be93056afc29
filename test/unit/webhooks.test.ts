import assert from 'node:assert/strict';
import { decodeSecret, signWebhook, verifyWebhook } from '../../services/agents/webhooks';

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
