export { createBuiltinTools, createToolRegistry } from './registry';
export type { ToolRegistry } from './registry';
export { ToolError } from './types';
export type { ToolDefinition } from './types';
