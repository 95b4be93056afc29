import type { Request, RequestHandler } from 'express';
import type { Role } from '../src/config';
import { AppError } from '../src/errors';
import type { Logger } from '../src/logger';
import type { RateLimitBudget } from './rate-limit';

/** Who may call a route: anyone (`open`), or a key with at least this role. */
export type Access = 'open' | Role;

export interface PolicyRule {
  /** An HTTP method, or `*` for every method. HEAD is checked as GET. */
  method: string;
  /**
   * A path pattern: literal segments, `:param` (one segment) and a final `*rest` (one or
   * more segments). Matched the way Express routes match: case-insensitively, with an
   * optional trailing slash.
   */
  pattern: string;
  access: Access;
  /** The rate-limit budget a request counts against, or `unlimited` (probes, /metrics). */
  budget: RateLimitBudget | 'unlimited';
}

/**
 * THE table of who may call what, and which rate-limit budget it counts against; first match
 * wins. Routers never check roles: this runs before them. It fails closed: a path no row
 * covers needs the admin role, so a new route is admin-only until its row is added here.
 * Without a key such a path answers 401, so the API's shape is not revealed to someone
 * without one.
 */
export const AUTH_POLICY: readonly PolicyRule[] = Object.freeze([
  // Probes and metrics: orchestrators and Prometheus carry no API key. Any method, so a
  // wrong method gets its 405 rather than a 401. /metrics has its own optional token.
  { method: '*', pattern: '/health', access: 'open', budget: 'unlimited' },
  { method: '*', pattern: '/health/live', access: 'open', budget: 'unlimited' },
  { method: '*', pattern: '/health/ready', access: 'open', budget: 'unlimited' },
  { method: '*', pattern: '/health/startup', access: 'open', budget: 'unlimited' },
  { method: '*', pattern: '/metrics', access: 'open', budget: 'unlimited' },
  { method: 'GET', pattern: '/health/detailed', access: 'admin', budget: 'api' },

  // Agent keys: run agents, follow and cancel their own runs (ownership is checked by the
  // runs service with canAccess), list agents and models.
  { method: 'POST', pattern: '/agents/run', access: 'agent', budget: 'runs' },
  { method: 'POST', pattern: '/agents/run-agent', access: 'agent', budget: 'runs' },
  { method: 'GET', pattern: '/agents', access: 'agent', budget: 'api' },
  { method: 'GET', pattern: '/agents/runs/:id', access: 'agent', budget: 'api' },
  { method: 'GET', pattern: '/agents/runs/:id/events', access: 'agent', budget: 'api' },
  { method: 'POST', pattern: '/agents/runs/:id/cancel', access: 'agent', budget: 'api' },
  { method: 'POST', pattern: '/agents/runs/:id/resume', access: 'agent', budget: 'runs' },
  // One agent's definition: the list above already shows every agent to an agent key.
  { method: 'GET', pattern: '/agents/:name', access: 'agent', budget: 'api' },
  { method: 'GET', pattern: '/ollama/models', access: 'agent', budget: 'api' },
  { method: 'GET', pattern: '/ollama/model-info', access: 'agent', budget: 'api' },
  { method: 'GET', pattern: '/ollama/health', access: 'agent', budget: 'api' },
  // Token usage: an agent key reads its own (the usage service checks `key_id`), admin all.
  { method: 'GET', pattern: '/usage', access: 'agent', budget: 'api' },

  // The drop-in APIs (OpenAI's /v1, Ollama's /api and /), on their own budget: model
  // management is admin-only; everything else is open to agent keys, and a path the routers do
  // not serve is their 404.
  { method: '*', pattern: '/api/pull', access: 'admin', budget: 'compat' },
  { method: '*', pattern: '/api/push', access: 'admin', budget: 'compat' },
  { method: '*', pattern: '/api/create', access: 'admin', budget: 'compat' },
  { method: '*', pattern: '/api/copy', access: 'admin', budget: 'compat' },
  { method: '*', pattern: '/api/delete', access: 'admin', budget: 'compat' },
  { method: '*', pattern: '/api', access: 'agent', budget: 'compat' },
  { method: '*', pattern: '/api/*rest', access: 'agent', budget: 'compat' },
  { method: '*', pattern: '/v1', access: 'agent', budget: 'compat' },
  { method: '*', pattern: '/v1/*rest', access: 'agent', budget: 'compat' },
  { method: '*', pattern: '/', access: 'agent', budget: 'compat' },
  // The API description: public, like the API's documentation.
  { method: '*', pattern: '/openapi.json', access: 'open', budget: 'unlimited' },

  // Admin keys.
  { method: 'POST', pattern: '/ollama/model/switch', access: 'admin', budget: 'api' },
  { method: 'POST', pattern: '/ollama/models/pull', access: 'admin', budget: 'api' },
  { method: 'DELETE', pattern: '/ollama/models/*name', access: 'admin', budget: 'api' },
  { method: 'GET', pattern: '/ollama/health/detailed', access: 'admin', budget: 'api' },
]);

interface CompiledRule extends PolicyRule {
  regexp: RegExp;
  /** What a match answers: one object per rule, not one per request. */
  result: PolicyMatch;
}

/** The row a request matched, or undefined for a path no row covers (admin only). */
export interface PolicyMatch {
  access: Access;
  budget: PolicyRule['budget'];
  /** The rule's pattern: a bounded label for logs and metrics. */
  pattern: string;
}

export interface AuthPolicy {
  match(method: string, path: string): PolicyMatch | undefined;
  /** `match` for a request at the app's level, computed once per request. */
  matchRequest(req: Request): PolicyMatch | undefined;
  /** 401/403 enforcement, mounted after the auth middleware and before the routers. */
  middleware: RequestHandler;
}

function compile(pattern: string): RegExp {
  const parts = pattern
    .split('/')
    .filter((s) => s !== '')
    .map((seg) => {
      if (seg.startsWith(':')) return '/[^/]+';
      if (seg.startsWith('*')) return '(?:/[^/]+)+';
      return `/${seg.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')}`;
    });
  return new RegExp(`^${parts.join('') || ''}/?$`, 'i');
}

/**
 * Compiles the policy table (AUTH_POLICY unless a test passes its own) into a matcher and
 * the enforcement middleware: an open route passes; a route that needs a role answers 401
 * UNAUTHENTICATED without a valid key and 403 FORBIDDEN with a key whose role is too low.
 */
export function createAuthPolicy(
  options: { rules?: readonly PolicyRule[]; logger?: Logger } = {},
): AuthPolicy {
  const rules: CompiledRule[] = (options.rules ?? AUTH_POLICY).map((r) => ({
    ...r,
    method: r.method.toUpperCase(),
    regexp: compile(r.pattern),
    result: Object.freeze({ access: r.access, budget: r.budget, pattern: r.pattern }),
  }));
  const { logger } = options;
  const match = (method: string, path: string): PolicyMatch | undefined => {
    const m = method === 'HEAD' ? 'GET' : method.toUpperCase();
    for (const rule of rules) {
      if ((rule.method === '*' || rule.method === m) && rule.regexp.test(path)) return rule.result;
    }
    return undefined;
  };
  // The rate limiter and the enforcement both ask for every request: the table is walked once.
  const matched = Symbol('policyMatch');
  const matchRequest = (req: Request): PolicyMatch | undefined => {
    const memo = req as Request & { [matched]?: PolicyMatch | null };
    const known = memo[matched];
    if (known !== undefined) return known ?? undefined;
    const found = match(req.method, req.path);
    memo[matched] = found ?? null;
    return found;
  };

  const middleware: RequestHandler = (req, _res, next) => {
    const rule = matchRequest(req);
    if (rule?.access === 'open') return next();
    const principal = req.principal;
    if (!principal) {
      logger?.debug('request not authenticated', {
        method: req.method,
        route: rule?.pattern ?? null,
        reason: req.authFailure ?? 'missing',
      });
      throw new AppError(
        'UNAUTHENTICATED',
        req.authFailure === 'invalid' ? 'The API key is not valid.' : undefined,
        { headers: { 'WWW-Authenticate': 'Bearer' } },
      );
    }
    // A path without a row needs the admin role (fail closed).
    if ((rule?.access ?? 'admin') === 'admin' && principal.role !== 'admin') {
      logger?.debug('request forbidden', { principal: principal.id, route: rule?.pattern ?? null });
      throw new AppError('FORBIDDEN', undefined, { details: { required_role: 'admin' } });
    }
    next();
  };
  return { match, matchRequest, middleware };
}
