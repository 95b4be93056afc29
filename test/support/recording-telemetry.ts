import type {
  HealthCheckEvent,
  InferenceEvent,
  ModelSwitchEvent,
  Telemetry,
} from '../../services/metrics/telemetry';
import { createNoopTelemetry } from '../../services/metrics/telemetry';

/** Telemetry that keeps the Ollama events it is given, for assertions. */
export interface RecordingTelemetry extends Telemetry {
  inferences: InferenceEvent[];
  healthChecks: HealthCheckEvent[];
  modelSwitches: ModelSwitchEvent[];
}

export function createRecordingTelemetry(): RecordingTelemetry {
  const inferences: InferenceEvent[] = [];
  const healthChecks: HealthCheckEvent[] = [];
  const modelSwitches: ModelSwitchEvent[] = [];
  return {
    ...createNoopTelemetry(),
    inferences,
    healthChecks,
    modelSwitches,
    inference: (e) => void inferences.push(e),
    healthCheck: (e) => void healthChecks.push(e),
    modelSwitch: (e) => void modelSwitches.push(e),
  };
}
