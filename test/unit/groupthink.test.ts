import assert from 'node:assert/strict';
import { tally, voteKey } from '../../services/agents/groupthink';
import type { Candidate } from '../../services/agents/types';

const candidate = (index: number, text: string, json?: unknown, ok = true): Candidate => ({
  index,
  status: ok ? 'completed' : 'failed',
  stop_reason: ok ? 'end_turn' : 'model_error',
  seed: index,
  output: { text, ...(json !== undefined ? { json } : {}) },
  usage: {
    input_tokens: 0,
    output_tokens: 0,
    total_tokens: 0,
    model_calls: 1,
    tool_calls: 0,
    wall_ms: 0,
  },
});

describe('groupthink votes (services/agents/groupthink)', () => {
  it('counts answers equal after trimming, case, spaces and a final period', () => {
    assert.equal(voteKey({ text: '  The  Answer is 42.\n' }), 'the answer is 42');
    assert.equal(voteKey({ text: 'x', json: { b: 1, a: [2] } }), '{"a":[2],"b":1}');
  });

  it('orders by votes, breaks ties by the lowest candidate index, and leaves failed candidates out', () => {
    const votes = tally([
      candidate(0, 'Lyon'),
      candidate(1, 'Paris'),
      candidate(2, 'paris.'),
      candidate(3, 'lyon'),
      candidate(4, 'Paris', undefined, false),
      candidate(5, 'Nice'),
    ]);
    assert.deepEqual(votes, [
      { answer: 'lyon', count: 2, candidates: [0, 3] },
      { answer: 'paris', count: 2, candidates: [1, 2] },
      { answer: 'nice', count: 1, candidates: [5] },
    ]);
  });

  it('votes on the JSON value when the run asked for one, whatever the text', () => {
    const votes = tally([
      candidate(0, '{"a":1,"b":2}', { a: 1, b: 2 }),
      candidate(1, '```json\n{"b":2,"a":1}\n```', { b: 2, a: 1 }),
      candidate(2, '{"a":3}', { a: 3 }),
    ]);
    assert.equal(votes[0]?.count, 2);
  });
});
