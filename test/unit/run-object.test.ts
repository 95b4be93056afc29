import assert from 'node:assert/strict';
import { createRunIds } from '../../services/agents/run-object';

describe('run ids', () => {
  it('are run_ and 22 base62 characters, distinct across refills of the random pool', () => {
    const next = createRunIds();
    const ids = Array.from({ length: 1000 }, next);
    for (const id of ids) assert.match(id, /^run_[A-Za-z0-9]{22}$/);
    assert.equal(new Set(ids).size, ids.length);
    assert.notEqual(createRunIds()(), createRunIds()());
  });
});
