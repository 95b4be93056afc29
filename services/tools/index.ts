export { createBuiltinTools, createToolRegistry } from './registry';
export type { ToolRegistry } from './registry';
export { ToolError } from './types';
export type { ToolDefinition } from './types';
export { createMcpSource, exposedName } from './mcp';
export type { McpServerConfig, McpServerStatus, McpSource } from './mcp';
