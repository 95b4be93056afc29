export { outcomeOf } from './errors';
export { loadOfRequest } from './loads';
export type { Forward, ForwardKind, ForwardRequest, ForwardResponse } from './forward';
export { createAdmissions } from './admissions';
export type { AdmissionFactory, Admissions } from './admissions';
export type { Admission, AdmissionStats, Slot } from './admission';
export { createOllamaStack } from './stack';
export { dnsResolver } from './discovery';
export type { Resolver } from './discovery';
export type { BackendSet } from './backends';
export type { RouteReason } from './routing';
export type { OllamaStack } from './stack';
export type {
  BackendStatus,
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
  RouteHint,
  Tool,
} from './types';
