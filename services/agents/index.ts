export { formatSse, isTerminalEvent } from './events';
export type { RunEvent } from './events';
export { AgentsFileError } from './registry';
export { refusalOf } from './refusal';
export type { CancelReason, RunHandle } from './run-handle';
export { createAgentsRuntime } from './runtime';
export type { AgentsRuntime, AgentsRuntimeOptions } from './runtime';
export type { AgentsService, RunRequest } from './service';
export { RUN_STATUSES, STOP_REASONS } from './types';
