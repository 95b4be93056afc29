import assert from 'node:assert/strict';
import { byAffinity, chooseBackend, type RouteCandidate } from '../../services/ollama/routing';

const backend = (id: string, over: Partial<RouteCandidate> = {}): RouteCandidate => ({
  id,
  status: 'up',
  circuit: 'closed',
  installed: true,
  loaded: false,
  loadedCount: 0,
  load: 0,
  capacity: 4,
  ...over,
});

describe('chooseBackend', () => {
  it('prefers the backend with the model loaded over a less loaded one', () => {
    const choice = chooseBackend(
      [
        backend('0', { load: 0, loadedCount: 1 }),
        backend('1', { loaded: true, load: 3, loadedCount: 1 }),
      ],
      { affinity: 'a' },
    );
    assert.deepEqual(choice, { id: '1', reason: 'loaded' });
  });

  it('leaves out backends that are down, have an open circuit or lack the model', () => {
    const choice = chooseBackend(
      [
        backend('0', { status: 'down', loaded: true }),
        backend('1', { circuit: 'open', loaded: true }),
        backend('2', { installed: false }),
        backend('3'),
      ],
      { affinity: 'a' },
    );
    assert.deepEqual(choice, { id: '3', reason: 'installed' });
    assert.equal(
      chooseBackend([backend('0', { status: 'down' }), backend('1', { circuit: 'open' })], {
        affinity: 'a',
      }),
      undefined,
    );
  });

  it('sends the model to a backend with room rather than one that would evict', () => {
    const choice = chooseBackend(
      [backend('0', { loadedCount: 1 }), backend('1', { loadedCount: 0, load: 2 })],
      { affinity: 'a' },
    );
    assert.deepEqual(choice, { id: '1', reason: 'installed' });
  });

  it('spills over to an empty backend only when every loaded one is saturated', () => {
    const busy = backend('0', { loaded: true, loadedCount: 1, load: 4 });
    const empty = backend('1');
    const other = backend('2', { loadedCount: 1 });
    assert.deepEqual(chooseBackend([busy, empty, other], { affinity: 'a' }), {
      id: '1',
      reason: 'installed',
    });
    const notFull = { ...busy, load: 3 };
    assert.deepEqual(chooseBackend([notFull, empty, other], { affinity: 'a' }), {
      id: '0',
      reason: 'loaded',
    });
  });

  it('picks the least loaded among equals, then the affinity hash', () => {
    const a = backend('0', { loaded: true, load: 2 });
    const b = backend('1', { loaded: true, load: 1 });
    assert.deepEqual(chooseBackend([a, b], { affinity: 'x' }), { id: '1', reason: 'least_loaded' });
    const tie = [
      backend('0', { loaded: true }),
      backend('1', { loaded: true }),
      backend('2', { loaded: true }),
    ];
    const first = chooseBackend(tie, { affinity: 'conversation-1' });
    assert.equal(first?.reason, 'affinity');
    for (let i = 0; i < 5; i += 1) {
      assert.deepEqual(chooseBackend(tie, { affinity: 'conversation-1' }), first);
    }
    const spread = new Set(
      Array.from({ length: 40 }, (_, i) => chooseBackend(tie, { affinity: `c${i}` })?.id),
    );
    assert.equal(spread.size, 3, 'different conversations land on different backends');
  });

  it('keeps a run on its backend even when another is less loaded, while it can serve', () => {
    const runs = [backend('0', { loaded: true, load: 3 }), backend('1', { loaded: true, load: 0 })];
    assert.deepEqual(chooseBackend(runs, { affinity: 'a', sticky: '0' }), {
      id: '0',
      reason: 'affinity',
    });
    const gone = [{ ...runs[0]!, circuit: 'open' as const }, runs[1]!];
    assert.deepEqual(chooseBackend(gone, { affinity: 'a', sticky: '0' }), {
      id: '1',
      reason: 'installed',
    });
  });

  it('moves only the keys of a backend that leaves (rendezvous hashing)', () => {
    const three = [{ id: '0' }, { id: '1' }, { id: '2' }];
    const two = [{ id: '0' }, { id: '2' }];
    for (let i = 0; i < 50; i += 1) {
      const before = byAffinity(three, `k${i}`).id;
      if (before !== '1') assert.equal(byAffinity(two, `k${i}`).id, before);
    }
  });
});
