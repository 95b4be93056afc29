export { SsrfError, createSsrfGuard } from './ssrf-guard';
export type { ResolveHost, SsrfGuard } from './ssrf-guard';
export { createGuardedFetch } from './guarded-fetch';
export type { GuardedFetch } from './guarded-fetch';
