import assert from 'node:assert/strict';
import type { IdempotencyRepository } from '../../services/agents/idempotency';

/** What a contract run gets: a new, empty repository on a clock the test moves. */
export interface IdempotencyFixture {
  keys: IdempotencyRepository;
  advance(ms: number): void;
}

/** The behaviour every IdempotencyRepository implementation must have. */
export function idempotencyContract(
  name: string,
  create: (options: { ttlMs: number }) => Promise<IdempotencyFixture>,
): void {
  describe(`IdempotencyRepository contract: ${name}`, () => {
    it('returns the run for the same body, 409 for another, nothing after the TTL or for another owner', async () => {
      const { keys, advance } = await create({ ttlMs: 100 });
      await keys.remember('alice', 'k', 'h1', 'run_1');
      assert.equal(await keys.lookup('alice', 'k', 'h1'), 'run_1');
      assert.equal(await keys.lookup('bob', 'k', 'h1'), undefined);
      await assert.rejects(
        keys.lookup('alice', 'k', 'h2'),
        (e: { code?: string }) => e.code === 'IDEMPOTENCY_CONFLICT',
      );
      advance(100);
      assert.equal(await keys.lookup('alice', 'k', 'h2'), undefined);
    });

    it('keeps owner and key apart, whatever characters they hold', async () => {
      const { keys } = await create({ ttlMs: 1000 });
      await keys.remember('a', 'b:c', 'h', 'run_1');
      assert.equal(await keys.lookup('a:b', 'c', 'h'), undefined);
    });

    it('lets a key be remembered again for a new run', async () => {
      const { keys } = await create({ ttlMs: 1000 });
      await keys.remember('alice', 'k', 'h1', 'run_1');
      await keys.remember('alice', 'k', 'h2', 'run_2');
      assert.equal(await keys.lookup('alice', 'k', 'h2'), 'run_2');
    });

    it('claims a key once: a second claim is told to wait, then gets the run; release frees it', async () => {
      const { keys, advance } = await create({ ttlMs: 100_000 });
      const conflict = (e: { code?: string }) => e.code === 'IDEMPOTENCY_CONFLICT';
      assert.equal(await keys.claim('alice', 'k', 'h1'), undefined);
      await assert.rejects(keys.claim('alice', 'k', 'h1'), conflict);
      await assert.rejects(keys.claim('alice', 'k', 'h2'), conflict);
      await keys.remember('alice', 'k', 'h1', 'run_1');
      assert.equal(await keys.claim('alice', 'k', 'h1'), 'run_1');
      assert.equal(await keys.claim('bob', 'k', 'h1'), undefined);
      await keys.release('bob', 'k');
      assert.equal(await keys.claim('bob', 'k', 'h2'), undefined);
      // A claim whose request never created its run lapses after a minute.
      assert.equal(await keys.claim('carol', 'k', 'h1'), undefined);
      advance(60_000);
      assert.equal(await keys.claim('carol', 'k', 'h2'), undefined);
      assert.equal(typeof (await keys.expire()), 'number');
    });
  });
}
