import assert from 'node:assert/strict';
import { createRepeatDetector, DEFAULT_LIMITS, resolveLimits } from '../../services/agents/limits';

describe('loop limits', () => {
  it('layers request over agent over defaults, keeping zeros', () => {
    const limits = resolveLimits({ max_steps: 3, max_tool_calls: 5 }, { max_tool_calls: 0 });
    assert.equal(limits.max_steps, 3);
    assert.equal(limits.max_tool_calls, 0);
    assert.equal(limits.timeout_ms, DEFAULT_LIMITS.timeout_ms);
  });

  it('trips on the (max+1)th identical call, whatever the key order', () => {
    const detector = createRepeatDetector(2);
    assert.equal(detector.record('calc', { a: 1, b: 2 }), false);
    assert.equal(detector.record('calc', { a: 2, b: 2 }), false);
    assert.equal(detector.record('other', { a: 1, b: 2 }), false);
    assert.equal(detector.record('calc', { b: 2, a: 1 }), false);
    assert.equal(detector.record('calc', { b: 2, a: 1 }), true);
  });
});
