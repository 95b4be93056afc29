export { outcomeOf } from './errors';
export type { Forward, ForwardKind, ForwardRequest, ForwardResponse } from './forward';
export { createAdmissions } from './admissions';
export type { AdmissionFactory, Admissions } from './admissions';
export type { Admission, AdmissionStats, Slot } from './admission';
export { createOllamaStack } from './stack';
export type { OllamaStack } from './stack';
export type {
  CallOptions,
  CallTimings,
  ChatResponse,
  GatewayChatRequest,
  LoadedModel,
  Message,
  ModelManager,
  ModelSwitchRecord,
  OllamaHealth,
  OllamaHealthSnapshot,
  OllamaService,
  ProgressResponse,
  Tool,
} from './types';
