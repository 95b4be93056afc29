import assert from 'node:assert/strict';
import {
  createMemoryActiveModelStore,
  type AppliedChange,
} from '../../services/models/active-model-store';
import { appError } from '../support/app-error';

describe('in-memory active model store', () => {
  it('starts at the configured model, generation 0', async () => {
    const store = createMemoryActiveModelStore('llama3.2:3b');
    await store.start();
    assert.deepEqual(store.current(), { model: 'llama3.2:3b', generation: 0 });
    assert.equal(store.kind, 'memory');
  });

  it('holds one lock at a time and names the target to the refused caller', async () => {
    const store = createMemoryActiveModelStore('llama3.2:3b');
    assert.equal(store.switching(), null);
    const lock = await store.lock('qwen3:8b');
    assert.equal(store.switching(), 'qwen3:8b');
    await assert.rejects(
      store.lock('smollm2:135m'),
      appError('SWITCH_IN_PROGRESS', (e) =>
        assert.deepEqual(e.details, { switching_to: 'qwen3:8b' }),
      ),
    );
    await lock.release();
    await lock.release();
    assert.equal(store.switching(), null);
    const next = await store.lock('smollm2:135m');
    await assert.rejects(lock.commit('qwen3:8b'), appError('SWITCH_IN_PROGRESS'));
    await next.release();
  });

  it('applies a commit at once, tells every listener (even after one throws), and settles at once', async () => {
    const store = createMemoryActiveModelStore('llama3.2:3b');
    const seen: AppliedChange[] = [];
    store.onApplied(() => {
      throw new Error('a broken listener');
    });
    const unsubscribe = store.onApplied((c) => seen.push(c));
    const lock = await store.lock('qwen3:8b');
    const record = await lock.commit('qwen3:8b');
    assert.deepEqual(record, { model: 'qwen3:8b', generation: 1 });
    assert.deepEqual(store.current(), record);
    assert.deepEqual(seen, [{ previous: 'llama3.2:3b', model: 'qwen3:8b', remote: false }]);
    assert.deepEqual(await lock.applied(record.generation), { settled: true, pending: [] });
    assert.equal(lock.signal.aborted, false);
    await lock.release();
    unsubscribe();
    const again = await store.lock('llama3.2:3b');
    await again.commit('llama3.2:3b');
    assert.equal(seen.length, 1);
    assert.equal(store.current().generation, 2);
  });
});
