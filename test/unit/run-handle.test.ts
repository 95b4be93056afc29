import assert from 'node:assert/strict';
import type { RunEvent } from '../../services/agents/events';
import { RunStop } from '../../services/agents/run-object';
import { createRemoteRunHandle } from '../../services/agents/run-handle';
import { createMemoryRunRepository } from '../../services/agents/run-repository';
import { createManualClock } from '../support/manual-clock';
import { createDrivenRun as handleOf, queuedRun } from '../support/run-handles';

describe('run handle', () => {
  describe('follow', () => {
    it('replays the stored events after a sequence number, then each new one, up to the terminal event', async () => {
      const { handle, emit, run } = await handleOf();
      emit('run.created');
      emit('run.in_progress');
      const seen: RunEvent[] = [];
      const stop = await handle.follow(1, (e) => seen.push(e));
      assert.deepEqual(
        seen.map((e) => e.seq),
        [2],
        'replayed synchronously, after seq 1 only',
      );
      emit('message.delta', { text: 'hi' });
      emit('run.completed', { run });
      emit('message.delta', { text: 'late' });
      assert.deepEqual(
        seen.map((e) => e.type),
        ['run.in_progress', 'message.delta', 'run.completed'],
      );
      stop();
    });

    it('delivers nothing after the follower stops', async () => {
      const { handle, emit } = await handleOf();
      const seen: RunEvent[] = [];
      (await handle.follow(0, (e) => seen.push(e)))();
      emit('run.created');
      assert.deepEqual(seen, []);
    });

    it('replays a finished run to its terminal event and does not subscribe', async () => {
      const { handle, emit, run } = await handleOf();
      emit('run.created');
      emit('run.failed', { run });
      const seen: string[] = [];
      await handle.follow(0, (e) => seen.push(e.type));
      emit('message.delta');
      assert.deepEqual(seen, ['run.created', 'run.failed']);
    });
  });

  describe('wait', () => {
    it('resolves with the finished run', async () => {
      const { handle, run, finish } = await handleOf();
      finish(run);
      assert.equal(await handle.wait(), run);
    });

    it('rejects with the reason when the waiter stops waiting; the run goes on', async () => {
      const { handle, controller } = await handleOf();
      const waiter = new AbortController();
      const waiting = handle.wait({ signal: waiter.signal });
      waiter.abort(new Error('client left'));
      await assert.rejects(waiting, /client left/);
      assert.equal(controller.signal.aborted, false);
    });
  });

  describe('cancel', () => {
    it('aborts the run with a cancel, and resolves with the finished run', async () => {
      const { handle, controller, run, finish } = await handleOf();
      const cancelled = handle.cancel();
      const reason = controller.signal.reason as RunStop;
      assert.ok(reason instanceof RunStop);
      assert.equal(reason.reason, 'cancelled');
      finish(run);
      assert.equal(await cancelled, run);
    });

    it('stops a run for a shutdown with SHUTTING_DOWN, retryable', async () => {
      const { handle, controller } = await handleOf();
      void handle.cancel('shutdown');
      const reason = controller.signal.reason as RunStop;
      assert.deepEqual(reason.details, { code: 'SHUTTING_DOWN' });
      assert.equal(reason.retryable, true);
    });

    it('leaves the first reason in place when called again', async () => {
      const { handle, controller } = await handleOf();
      void handle.cancel('shutdown');
      void handle.cancel();
      assert.deepEqual((controller.signal.reason as RunStop).details, { code: 'SHUTTING_DOWN' });
    });
  });
});

describe('run handle of a run executing on another replica', () => {
  async function remote() {
    const runs = createMemoryRunRepository({ max: 10, ttlMs: 60_000, now: Date.now });
    const run = queuedRun('run_remote');
    await runs.create(run, 'alice');
    await runs.append(run.id, 'run.created');
    const cancels: string[] = [];
    const clock = createManualClock();
    const stored = await runs.get(run.id);
    assert.ok(stored);
    const handle = createRemoteRunHandle({
      stored,
      runs: { ...runs, requestCancel: async (id) => void cancels.push(id) },
      clock,
      cancelWaitMs: 1000,
    });
    const finish = (status: 'completed' | 'cancelled') =>
      runs.append(run.id, `run.${status}`, { run: { ...run, status } });
    return { handle, runs, cancels, clock, finish };
  }

  it('waits by following to the terminal event, whose run it resolves with', async () => {
    const { handle, finish } = await remote();
    assert.equal(handle.owner, 'alice');
    const waited = handle.wait();
    await finish('completed');
    assert.equal((await waited).status, 'completed');
  });

  it('waits to a pause too, as a local handle does: live, or as the latest replayed event', async () => {
    const { handle, runs } = await remote();
    const pause = () =>
      runs.append('run_remote', 'run.requires_action', {
        run: { ...queuedRun('run_remote'), status: 'requires_action' },
      });
    const waited = handle.wait();
    await pause();
    assert.equal((await waited).status, 'requires_action');
    // Resumed since: the old pause in the history is not where the run is.
    await runs.append('run_remote', 'run.in_progress');
    let settled = false;
    const again = handle.wait().then((run) => ((settled = true), run));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false);
    await pause();
    assert.equal((await again).status, 'requires_action');
    // A new waiter finds the run paused in the history it replays.
    assert.equal((await handle.wait()).status, 'requires_action');
  });

  it('stops waiting, and following, when the caller’s signal aborts', async () => {
    const { handle } = await remote();
    const gone = new AbortController();
    const waited = handle.wait({ signal: gone.signal });
    gone.abort(new Error('client left'));
    await assert.rejects(waited, /client left/);
  });

  it('cancels by asking the executing replica, and answers with the cancelled run', async () => {
    const { handle, cancels, finish } = await remote();
    const cancelled = handle.cancel();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(cancels, ['run_remote']);
    await finish('cancelled');
    assert.equal((await cancelled).status, 'cancelled');
  });

  it('answers a cancel with the run as stored when no terminal event comes in time', async () => {
    const { handle, clock } = await remote();
    const cancelled = handle.cancel();
    await new Promise((resolve) => setImmediate(resolve));
    clock.advance(1000);
    assert.equal((await cancelled).status, 'queued');
  });

  it('stops only its own following at shutdown: no cancel is sent', async () => {
    const { handle, cancels } = await remote();
    assert.equal((await handle.cancel('shutdown')).status, 'queued');
    assert.deepEqual(cancels, []);
  });
});
