import type { RunEventType } from '../../services/agents/events';
import { createRunHandle, type RunHandle } from '../../services/agents/run-handle';
import { createMemoryRunRepository } from '../../services/agents/run-repository';
import { newRun } from '../../services/agents/run-object';
import type { AgentRun } from '../../services/agents/types';

/** A run with its id, as newRun makes it when a run is created. */
export function queuedRun(id: string): AgentRun {
  return newRun({
    id,
    agent: { name: 'default', inline: false, config_hash: 'x' },
    model: 'llama3.2:3b',
    createdAt: new Date(0).toISOString(),
    metadata: {},
    webhook: null,
  });
}

export interface DrivenRun {
  handle: RunHandle;
  run: AgentRun;
  /** Appends an event (synchronously, as the in-memory repository does), as the runner would. */
  emit(type: RunEventType, data?: Record<string, unknown>): void;
  controller: AbortController;
  /** Settles the run, as the runner does after its terminal event. */
  finish(run: AgentRun): void;
}

/** A queued run in an in-memory repository and its handle, driven by the test, not a runner. */
export async function createDrivenRun(id = 'run_driven'): Promise<DrivenRun> {
  const run = queuedRun(id);
  const runs = createMemoryRunRepository({ max: 10, ttlMs: 60_000, now: Date.now });
  await runs.create(run, 'anonymous');
  const controller = new AbortController();
  let finish!: (finished: AgentRun) => void;
  const done = new Promise<AgentRun>((resolve) => (finish = resolve));
  const handle = createRunHandle({
    run,
    owner: 'anonymous',
    runs,
    controller,
    done,
    settled: done.then(() => undefined),
  });
  const emit = (type: RunEventType, data?: Record<string, unknown>): void => {
    void runs.append(id, type, data);
  };
  return { handle, run, emit, controller, finish };
}
