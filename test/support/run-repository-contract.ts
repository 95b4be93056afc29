import assert from 'node:assert/strict';
import type { RunEvent } from '../../services/agents/events';
import type { RunRepository } from '../../services/agents/run-repository';
import { DEFAULT_LIMITS } from '../../services/agents/limits';
import type { PauseState } from '../../services/agents/pause';
import { queuedRun } from './run-handles';

/** A pause as the service stores one: every field plain JSON. */
export function pauseState(token: string): PauseState {
  return {
    token,
    expiresAt: 1_000_000,
    calls: [{ id: 'call_1', name: 'lookup', arguments: { id: 'x' } }],
    results: {},
    awaiting: [{ id: 'call_1', name: 'lookup', arguments: { id: 'x' }, type: 'client' }],
    repeats: [['lookup\u0000{"id":"x"}', 1]],
    activeMs: 12,
    plan: {
      agentLabel: 'inline',
      model: 'llama3.2:3b',
      toolNames: [],
      approvalTools: [],
      clientTools: [
        {
          type: 'client',
          name: 'lookup',
          description: 'Looks up.',
          parameters: { type: 'object' },
        },
      ],
      options: {},
      limits: { ...DEFAULT_LIMITS },
      streamTokens: false,
      toolChoice: 'auto',
      actionTtlMs: 600_000,
    },
  };
}

/** What a contract run gets: a new, empty repository on a clock the test moves. */
export interface RunRepositoryFixture {
  runs: RunRepository;
  /** Moves the repository's clock forward. */
  advance(ms: number): void;
}

/**
 * The behaviour every RunRepository implementation must have. Each implementation runs it
 * with its own factory, which builds a repository for `max` runs kept `ttlMs` after they finish.
 */
export function runRepositoryContract(
  name: string,
  create: (options: { max: number; ttlMs: number }) => Promise<RunRepositoryFixture>,
): void {
  describe(`RunRepository contract: ${name}`, () => {
    const codeOf = (code: string) => (err: { code?: string }) => err.code === code;

    it('stores a run with its owner, unknown ids read as undefined', async () => {
      const { runs } = await create({ max: 10, ttlMs: 1000 });
      await runs.create(queuedRun('run_a'), 'key_a');
      const stored = await runs.get('run_a');
      assert.equal(stored?.run.id, 'run_a');
      assert.equal(stored?.owner, 'key_a');
      assert.equal(stored?.finishedAt, null);
      assert.equal(await runs.get('run_none'), undefined);
    });

    it('records status changes; a terminal status starts the TTL', async () => {
      const { runs, advance } = await create({ max: 10, ttlMs: 500 });
      await runs.create(queuedRun('run_done'), 'o');
      await runs.create(queuedRun('run_busy'), 'o');
      await runs.updateStatus('run_done', 'in_progress');
      assert.equal((await runs.get('run_done'))?.finishedAt, null);
      await runs.updateStatus('run_done', 'completed');
      assert.equal((await runs.get('run_done'))?.run.status, 'completed');
      assert.notEqual((await runs.get('run_done'))?.finishedAt, null);
      advance(499);
      assert.ok(await runs.get('run_done'));
      advance(1);
      assert.equal(await runs.get('run_done'), undefined);
      assert.ok(await runs.get('run_busy'), 'running runs never expire');
    });

    it('expire() drops the finished runs past their TTL and says how many', async () => {
      const { runs, advance } = await create({ max: 10, ttlMs: 100 });
      await runs.create(queuedRun('run_1'), 'o');
      await runs.create(queuedRun('run_2'), 'o');
      await runs.updateStatus('run_1', 'failed');
      advance(100);
      assert.equal(await runs.expire(), 1);
      assert.deepEqual(
        (await runs.list()).map((r) => r.run.id),
        ['run_2'],
      );
    });

    it('evicts the oldest finished run when full, and refuses TOO_MANY_RUNS when all run', async () => {
      const { runs } = await create({ max: 2, ttlMs: 60_000 });
      await runs.create(queuedRun('run_a'), 'o');
      await runs.updateStatus('run_a', 'cancelled');
      await runs.create(queuedRun('run_b'), 'o');
      await runs.create(queuedRun('run_c'), 'o');
      assert.equal(await runs.get('run_a'), undefined);
      assert.deepEqual(
        (await runs.list({ running: true })).map((r) => r.run.id),
        ['run_b', 'run_c'],
      );
      await assert.rejects(runs.create(queuedRun('run_d'), 'o'), codeOf('TOO_MANY_RUNS'));
    });

    it('evicts the oldest finished runs behind more running ones than one read of the set takes', async () => {
      const { runs } = await create({ max: 20, ttlMs: 60_000 });
      for (let i = 0; i < 18; i += 1) await runs.create(queuedRun(`run_live${i}`), 'o');
      for (const id of ['run_done0', 'run_done1']) {
        await runs.create(queuedRun(id), 'o');
        await runs.updateStatus(id, 'completed');
      }
      await runs.create(queuedRun('run_new0'), 'o');
      assert.equal(await runs.get('run_done0'), undefined);
      assert.notEqual(await runs.get('run_done1'), undefined);
      await runs.create(queuedRun('run_new1'), 'o');
      assert.equal(await runs.get('run_done1'), undefined);
      assert.equal((await runs.list({ running: true })).length, 20);
      await assert.rejects(runs.create(queuedRun('run_new2'), 'o'), codeOf('TOO_MANY_RUNS'));
    });

    it('numbers events from 1 and reads them after a sequence number', async () => {
      const { runs } = await create({ max: 10, ttlMs: 1000 });
      await runs.create(queuedRun('run_e'), 'o');
      const first = await runs.append('run_e', 'run.created', { status: 'queued' });
      await runs.append('run_e', 'run.in_progress');
      await runs.append('run_e', 'message.delta', { text: 'hi' });
      assert.equal(first.seq, 1);
      assert.deepEqual(first.data, { run_id: 'run_e', seq: 1, status: 'queued' });
      const after = await runs.readAfter('run_e', 1);
      assert.deepEqual(
        after.map((e) => [e.seq, e.type]),
        [
          [2, 'run.in_progress'],
          [3, 'message.delta'],
        ],
      );
      assert.deepEqual(await runs.readAfter('run_e', 3), []);
    });

    it('follows a run: the stored events after a sequence number, then each new one, until stopped', async () => {
      const { runs } = await create({ max: 10, ttlMs: 1000 });
      await runs.create(queuedRun('run_f'), 'o');
      await runs.append('run_f', 'run.created');
      await runs.append('run_f', 'run.in_progress');
      const seen: RunEvent[] = [];
      const stop = await runs.follow('run_f', 1, (e) => seen.push(e));
      assert.deepEqual(
        seen.map((e) => e.seq),
        [2],
      );
      await runs.append('run_f', 'message.delta', { text: 'a' });
      await runs.append('run_f', 'run.completed');
      stop();
      await runs.append('run_f', 'message.delta', { text: 'late' });
      assert.deepEqual(
        seen.map((e) => e.type),
        ['run.in_progress', 'message.delta', 'run.completed'],
      );
    });

    it('keeps the events of runs apart', async () => {
      const { runs } = await create({ max: 10, ttlMs: 1000 });
      await runs.create(queuedRun('run_x'), 'o');
      await runs.create(queuedRun('run_y'), 'o');
      await runs.append('run_x', 'run.created');
      const y = await runs.append('run_y', 'run.created');
      assert.equal(y.seq, 1);
      assert.equal((await runs.readAfter('run_x', 0)).length, 1);
    });

    it('saves the run object as it is now, and holds its runs until released', async () => {
      const { runs } = await create({ max: 10, ttlMs: 1000 });
      runs.start();
      try {
        const run = queuedRun('run_s');
        await runs.create(run, 'o', { durable: true });
        const heard: string[] = [];
        const off = runs.onControl((id, control) => heard.push(`${control} ${id}`));
        await runs.updateStatus('run_s', 'completed');
        await runs.save({ ...run, status: 'completed', output: { text: 'saved', messages: [] } });
        assert.equal((await runs.get('run_s'))?.run.output.text, 'saved');
        // A run held by a live repository is nobody's orphan, before and after its release.
        assert.deepEqual(await runs.claimOrphans(), []);
        await runs.release('run_s');
        assert.deepEqual(await runs.claimOrphans(), []);
        // Letting go of a run this replica executes (not a claim) changes nothing.
        await runs.unclaim('run_s');
        // A cancel for a run that is not executing here reaches no listener.
        await runs.requestCancel('run_none');
        off();
        assert.deepEqual(heard, []);
      } finally {
        await runs.stop();
      }
    });

    it('keeps a pause as JSON; one claim by its token wins, a wrong token or a second claim gets nothing', async () => {
      const { runs } = await create({ max: 10, ttlMs: 1000 });
      const run = queuedRun('run_p');
      await runs.create(run, 'o');
      assert.equal(await runs.getPause('run_p'), undefined);
      const state = pauseState('tok_1');
      await runs.pause('run_p', run, state);
      assert.equal((await runs.get('run_p'))?.run.status, 'requires_action');
      assert.equal((await runs.get('run_p'))?.finishedAt, null, 'a paused run is not finished');
      assert.deepEqual(await runs.getPause('run_p'), state);
      assert.equal(await runs.claimPause('run_p', 'tok_other'), undefined);
      const claims = await Promise.all([
        runs.claimPause('run_p', 'tok_1'),
        runs.claimPause('run_p', 'tok_1'),
      ]);
      const won = claims.filter((c) => c !== undefined);
      assert.equal(won.length, 1, 'exactly one claim wins');
      assert.deepEqual(won[0]?.pause, state);
      assert.equal(won[0]?.run.id, 'run_p');
      assert.equal(await runs.getPause('run_p'), undefined);
      assert.equal(await runs.claimPause('run_none', 'tok_1'), undefined);
    });

    it('drops a pause when the run reaches a terminal status', async () => {
      const { runs } = await create({ max: 10, ttlMs: 1000 });
      const run = queuedRun('run_q');
      await runs.create(run, 'o');
      await runs.pause('run_q', run, pauseState('tok_q'));
      await runs.updateStatus('run_q', 'cancelled');
      assert.equal(await runs.getPause('run_q'), undefined);
      assert.equal(await runs.claimPause('run_q', 'tok_q'), undefined);
      await assert.rejects(runs.pause('run_none', run, pauseState('t')), codeOf('RUN_NOT_FOUND'));
    });

    it('lists the pauses due at a time, by run id and token, until they are claimed', async () => {
      const { runs } = await create({ max: 10, ttlMs: 1000 });
      const run = queuedRun('run_d');
      await runs.create(run, 'o');
      const state = pauseState('tok_d');
      await runs.pause('run_d', run, state);
      assert.deepEqual(await runs.duePauses(state.expiresAt - 1), []);
      assert.deepEqual(await runs.duePauses(state.expiresAt), [{ id: 'run_d', token: 'tok_d' }]);
      assert.ok(await runs.claimPause('run_d', 'tok_d'));
      assert.deepEqual(await runs.duePauses(state.expiresAt), []);
    });

    it('refuses events and status changes of an unknown run with RUN_NOT_FOUND', async () => {
      const { runs } = await create({ max: 10, ttlMs: 1000 });
      await assert.rejects(runs.append('run_none', 'run.created'), codeOf('RUN_NOT_FOUND'));
      await assert.rejects(runs.updateStatus('run_none', 'failed'), codeOf('RUN_NOT_FOUND'));
      await assert.rejects(runs.readAfter('run_none', 0), codeOf('RUN_NOT_FOUND'));
    });
  });
}
