export { createModelService } from './model-service';
export type { ModelService, SwitchRequest } from './model-service';
