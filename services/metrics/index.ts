export { createMetrics } from './metrics';
export type { HttpLabel, Metrics } from './metrics';
export type { InferenceEvent, InferenceOperation, InferenceOutcome, Telemetry } from './telemetry';
