import assert from 'node:assert/strict';
import type { RunEvent } from '../../services/agents/events';
import { RunStop } from '../../services/agents/run-object';
import { createDrivenRun as handleOf } from '../support/run-handles';

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
