export { createMetrics } from './metrics';
export type { HttpLabel, Metrics } from './metrics';
export type {
  InferenceApi,
  InferenceEvent,
  InferenceOperation,
  InferenceOutcome,
  Telemetry,
} from './telemetry';
