import assert from 'node:assert/strict';
import {
  bodyHash,
  canonicalJson,
  createMemoryIdempotencyRepository,
} from '../../services/agents/idempotency';
import { idempotencyContract } from '../support/idempotency-contract';

describe('idempotency keys', () => {
  it('canonical hashing ignores key order', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] }), '{"a":[{"c":2,"d":1}],"b":1}');
    assert.equal(bodyHash({ x: 1, y: 2 }), bodyHash({ y: 2, x: 1 }));
  });
});

idempotencyContract('in memory', async ({ ttlMs }) => {
  let now = 0;
  return {
    keys: createMemoryIdempotencyRepository({ ttlMs, max: 100, now: () => now }),
    advance: (ms) => void (now += ms),
  };
});

describe('the in-memory idempotency repository', () => {
  it('keeps at most `max` keys, dropping the oldest first', async () => {
    const keys = createMemoryIdempotencyRepository({ ttlMs: 1000, max: 2, now: () => 0 });
    await keys.remember('o', 'k1', 'h', 'run_1');
    await keys.remember('o', 'k2', 'h', 'run_2');
    await keys.remember('o', 'k3', 'h', 'run_3');
    assert.equal(await keys.lookup('o', 'k1', 'h'), undefined);
    assert.equal(await keys.lookup('o', 'k3', 'h'), 'run_3');
  });

  it('drops expired keys in expire() (the runtime’s sweep), without a lookup', async () => {
    let now = 0;
    const keys = createMemoryIdempotencyRepository({ ttlMs: 100, max: 10, now: () => now });
    await keys.remember('o', 'k1', 'h', 'run_1');
    now = 50;
    await keys.remember('o', 'k2', 'h', 'run_2');
    now = 100;
    assert.equal(await keys.expire(), 1);
    now = 150;
    assert.equal(await keys.expire(), 1);
    assert.equal(await keys.expire(), 0);
  });
});
