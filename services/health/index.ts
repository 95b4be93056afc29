export { createLifecycle } from './lifecycle';
export type { DrainResult, Lifecycle } from './lifecycle';
export { createOllamaHealth } from './ollama-poller';
export { createHealthService } from './probes';
export type { BuildInfo, HealthService, ProbeReport } from './probes';
export { createStartupSequence } from './startup';
export type { StartupSequence } from './startup';
export { ollamaHealthDetails, ollamaHealthSummary } from './ollama-view';
