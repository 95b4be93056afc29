import assert from 'node:assert/strict';
import { followAbort } from '../../src/abort';

describe('followAbort', () => {
  it("aborts the target with the source's reason", () => {
    const source = new AbortController();
    const target = new AbortController();
    followAbort(source.signal, target);
    const reason = new Error('gone');
    source.abort(reason);
    assert.equal(target.signal.reason, reason);
  });

  it('aborts the target at once when the source has aborted already', () => {
    const target = new AbortController();
    followAbort(AbortSignal.abort('early'), target);
    assert.equal(target.signal.reason, 'early');
  });

  it('stops following when told, and never aborts the source', () => {
    const source = new AbortController();
    const target = new AbortController();
    const unfollow = followAbort(source.signal, target);
    target.abort('target only');
    assert.equal(source.signal.aborted, false);
    const other = new AbortController();
    const stop = followAbort(source.signal, other);
    stop();
    unfollow();
    source.abort('late');
    assert.equal(other.signal.aborted, false);
  });

  it('does nothing without a source', () => {
    const target = new AbortController();
    followAbort(undefined, target)();
    assert.equal(target.signal.aborted, false);
  });
});
