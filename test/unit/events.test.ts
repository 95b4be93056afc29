import assert from 'node:assert/strict';
import { createRunEvents, formatSse } from '../../services/agents/events';

describe('run events', () => {
  it('numbers events from 1, replays after a sequence number and feeds subscribers', () => {
    const events = createRunEvents('run_x');
    const seen: number[] = [];
    events.emit('run.created');
    const stop = events.subscribe((e) => seen.push(e.seq));
    events.emit('run.in_progress');
    events.emit('message.delta', { text: 'hi' });
    stop();
    events.emit('run.completed');
    assert.deepEqual(seen, [2, 3]);
    assert.deepEqual(
      events.since(1).map((e) => e.seq),
      [2, 3, 4],
    );
    assert.deepEqual(events.since(4), []);
    assert.deepEqual(events.since(2)[0]?.data, { run_id: 'run_x', seq: 3, text: 'hi' });
    assert.equal(
      formatSse(events.since(3)[0]!),
      'id: 4\nevent: run.completed\ndata: {"run_id":"run_x","seq":4}\n\n',
    );
  });

  it('stops storing deltas past the bound but keeps every other event', () => {
    const events = createRunEvents('run_y', { maxStored: 2 });
    let live = 0;
    events.subscribe(() => (live += 1));
    for (let i = 0; i < 5; i += 1) events.emit('message.delta', { text: String(i) });
    events.emit('run.completed');
    assert.equal(live, 6);
    assert.equal(events.dropped, 3);
    assert.deepEqual(
      events.since(0).map((e) => e.seq),
      [1, 2, 6],
    );
  });
});
