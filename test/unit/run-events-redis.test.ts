import assert from 'node:assert/strict';
import { eventsOf, storedData } from '../../services/agents/run-events-redis';

describe('run events in Redis streams (services/agents/run-events-redis)', () => {
  it('stores an event’s data without the run id and seq its entry carries, and reads it back whole', () => {
    const data = { run_id: 'run_1', seq: 7, text: 'Hel', nested: { a: [1, 2] } };
    const stored = storedData(data);
    assert.deepEqual(JSON.parse(stored), { text: 'Hel', nested: { a: [1, 2] } });
    assert.deepEqual(eventsOf('run_1', [['7-0', ['t', 'message.delta', 'd', stored]]]), [
      { seq: 7, type: 'message.delta', data },
    ]);
  });

  it('reads entries in order and skips what is not an entry', () => {
    const events = eventsOf('run_2', [
      ['1-0', ['t', 'run.created', 'd', '{"status":"queued"}']],
      'not an entry',
      [3, ['t', 'x']],
      ['2-0', ['d', '{}', 't', 'run.in_progress']],
    ]);
    assert.deepEqual(
      events.map((e) => [e.seq, e.type, e.data]),
      [
        [1, 'run.created', { run_id: 'run_2', seq: 1, status: 'queued' }],
        [2, 'run.in_progress', { run_id: 'run_2', seq: 2 }],
      ],
    );
    assert.deepEqual(eventsOf('run_2', null), []);
  });
});
