export { createModelService } from './model-service';
export type { ModelService, SwitchRequest } from './model-service';
export { createMemoryActiveModelStore } from './active-model-store';
export type {
  ActiveModelRecord,
  ActiveModelStore,
  AppliedChange,
  AppliedResult,
  SwitchLock,
} from './active-model-store';
export { createRedisActiveModelStore } from './active-model-redis';
export type { RedisActiveModelStoreOptions } from './active-model-redis';
