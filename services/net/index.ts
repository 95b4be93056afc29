export { SsrfError, createSsrfGuard } from './ssrf-guard';
export type { ResolveHost, SsrfGuard } from './ssrf-guard';
