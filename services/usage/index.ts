export { createMemoryUsageStore } from './store';
export type { TokenCounts, UsageRow, UsageStore } from './store';
export { createRedisUsageStore } from './redis-store';
export type { RedisUsageStoreOptions } from './redis-store';
export { createUsageService, BUDGET_WARNING_HEADER } from './service';
export type {
  BudgetVerdict,
  UsageQuery,
  UsageReport,
  UsageReportRow,
  UsageService,
  UsageServiceOptions,
} from './service';
export { parsePeriod, periodsAt } from './periods';
export type { Period, PeriodKind } from './periods';
