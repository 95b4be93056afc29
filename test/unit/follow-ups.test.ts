import assert from 'node:assert/strict';
import { createFollowUps } from '../../services/agents/follow-ups';
import type { DeliveryResult } from '../../services/agents/webhooks';
import type { AgentRun } from '../../services/agents/types';
import { createLogger } from '../../src/logger';
import { createRequestContextStore } from '../../src/request-context';
import { createManualClock } from '../support/manual-clock';
import { queuedRun } from '../support/run-handles';

const logger = createLogger({
  level: 'silent',
  format: 'json',
  context: createRequestContextStore(),
});

function hooked(id: string, events: string[]): AgentRun {
  const run = queuedRun(id);
  run.webhook = {
    url: 'https://hooks.example/h',
    events,
    last_delivery_status: 'pending',
    last_status_code: null,
    attempts: 0,
  };
  return run;
}

/** A webhook sender whose deliveries the test answers, one at a time, in the order they came. */
function heldWebhooks() {
  const sent: string[] = [];
  const answers: Array<(result: DeliveryResult) => void> = [];
  return {
    sent,
    answerNext: (result: DeliveryResult) => answers.shift()?.(result),
    sender: {
      deliver: (_url: string, type: string) => {
        sent.push(type);
        return new Promise<DeliveryResult>((resolve) => answers.push(resolve));
      },
    },
  };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('run follow-ups (services/agents/follow-ups)', () => {
  it('delivers what follows a pause only after the pause’s delivery, and records each outcome', async () => {
    const hooks = heldWebhooks();
    const released: string[] = [];
    const saved: AgentRun[] = [];
    const followUps = createFollowUps({
      webhooks: hooks.sender,
      runs: {
        save: (run) => (saved.push(structuredClone(run)), Promise.resolve()),
        release: (id) => (released.push(id), Promise.resolve()),
      },
      logger,
      clock: createManualClock(),
    });
    const run = hooked('run_1', ['run.requires_action', 'run.completed']);
    const paused = followUps.deliverPause(run, run);
    followUps.deliverLater(run, 'run.completed', run);
    await flush();
    assert.deepEqual(hooks.sent, ['run.requires_action']);
    hooks.answerNext({ status: 'failed', attempts: 3, statusCode: 500 });
    await paused;
    await flush();
    assert.deepEqual(hooks.sent, ['run.requires_action', 'run.completed']);
    assert.ok(followUps.pending('run_1'), 'the run is held until its delivery is recorded');
    hooks.answerNext({ status: 'delivered', attempts: 1, statusCode: 204 });
    await followUps.pending('run_1');
    assert.equal(followUps.pending('run_1'), undefined);
    assert.deepEqual(released, ['run_1']);
    assert.deepEqual(
      saved.map((r) => r.webhook),
      [
        {
          url: 'https://hooks.example/h',
          events: ['run.requires_action', 'run.completed'],
          last_delivery_status: 'delivered',
          last_status_code: 204,
          attempts: 1,
        },
      ],
    );
  });

  it('marks an event the webhook did not ask for as skipped, without sending it', async () => {
    const hooks = heldWebhooks();
    const followUps = createFollowUps({
      webhooks: hooks.sender,
      runs: { save: () => Promise.resolve(), release: () => Promise.resolve() },
      logger,
      clock: createManualClock(),
    });
    const run = hooked('run_2', ['run.failed']);
    await followUps.deliverInOrder(run, 'run.completed', run);
    assert.deepEqual(hooks.sent, []);
    assert.equal(run.webhook?.last_delivery_status, 'skipped');
  });

  it('lets a run go even when its record fails: the release is still sent, and nothing is thrown', async () => {
    const calls: string[] = [];
    const followUps = createFollowUps({
      webhooks: null,
      runs: {
        save: (run) => (calls.push(`save ${run.id}`), Promise.reject(new Error('redis down'))),
        release: (id) => (calls.push(`release ${id}`), Promise.reject(new Error('redis down'))),
      },
      logger,
      clock: createManualClock(),
    });
    await followUps.letGo(queuedRun('run_3'), true);
    await followUps.letGo(queuedRun('run_4'), false);
    assert.deepEqual(calls, ['save run_3', 'release run_3', 'release run_4']);
  });

  it('settles when the tracked work is done, or after its bound when it is not', async () => {
    const clock = createManualClock();
    const followUps = createFollowUps({
      webhooks: null,
      runs: { save: () => Promise.resolve(), release: () => Promise.resolve() },
      logger,
      clock,
    });
    // Work that ends before the bound: settle resolves then, without the clock moving.
    let finishFirst = (): void => undefined;
    followUps.track(new Promise<void>((resolve) => (finishFirst = resolve)));
    let early = false;
    const settlingEarly = followUps.settle(500).then(() => (early = true));
    await flush();
    assert.equal(early, false);
    finishFirst();
    await settlingEarly;
    assert.deepEqual(clock.pending(), []);
    // Work that outlasts it: settle resolves at the bound.
    let finish = (): void => undefined;
    followUps.track(new Promise<void>((resolve) => (finish = resolve)));
    let settled = false;
    const settling = followUps.settle(500).then(() => (settled = true));
    await flush();
    assert.equal(settled, false);
    clock.advance(499);
    await flush();
    assert.equal(settled, false);
    clock.advance(1);
    await settling;
    finish();
    await flush();
    // Nothing left: the next settle does not wait for its bound, and leaves no timer armed.
    await followUps.settle(500);
    assert.deepEqual(clock.pending(), []);
  });
});
