export { formatSse } from './events';
export type { RunEvent } from './events';
export { AgentsFileError } from './registry';
export { firstModelTimings, modelCallTimings, shutdownStop } from './run-object';
export type { RunRecord } from './run-store';
export { createAgentsRuntime } from './runtime';
export type { AgentsRuntime, AgentsRuntimeOptions } from './runtime';
export type { AgentsService, RunRequest } from './service';
