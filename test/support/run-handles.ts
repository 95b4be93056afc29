import { createRunEvents, type RunEvents } from '../../services/agents/events';
import { createRunHandle, type RunHandle } from '../../services/agents/run-handle';
import { newRun } from '../../services/agents/run-object';
import type { AgentRun } from '../../services/agents/types';

export interface DrivenRun {
  handle: RunHandle;
  run: AgentRun;
  /** Emit here what the runner would. */
  events: RunEvents;
  controller: AbortController;
  /** Settles the run, as the runner does after its terminal event. */
  finish(run: AgentRun): void;
}

/** A queued run and its handle, driven by the test instead of a runner. */
export function createDrivenRun(id = 'run_driven'): DrivenRun {
  const run = newRun({
    id,
    agent: { name: 'default', inline: false, config_hash: 'x' },
    model: 'llama3.2:3b',
    createdAt: new Date(0).toISOString(),
    metadata: {},
    webhook: null,
  });
  const events = createRunEvents(run.id);
  const controller = new AbortController();
  let finish!: (finished: AgentRun) => void;
  const done = new Promise<AgentRun>((resolve) => (finish = resolve));
  const handle = createRunHandle({
    run,
    owner: 'anonymous',
    events,
    controller,
    done,
    settled: done.then(() => undefined),
  });
  return { handle, run, events, controller, finish };
}
