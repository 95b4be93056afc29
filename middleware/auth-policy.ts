import type { Request, RequestHandler } from 'express';
import type { Role } from '../src/config';
import { AppError } from '../src/errors';
import type { Logger } from '../src/logger';

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
}

/**
 * THE table of who may call what; first match wins. Routers never check roles: this runs
 * before them. `/ollama/*` and `/agents/*` end in an admin catch-all, so a route added
 * under them later is admin-only until a row here says otherwise (fail closed). A path
 * outside every row is "unknown": authenticated callers go on to the JSON 404, anonymous
 * callers get 401 (so the API's shape is not revealed to someone without a key).
 */
export const AUTH_POLICY: readonly PolicyRule[] = Object.freeze([
  // Probes and metrics: orchestrators and Prometheus carry no API key. Any method, so a
  // wrong method gets its 405 rather than a 401. /metrics has its own optional token.
  { method: '*', pattern: '/health', access: 'open' },
  { method: '*', pattern: '/health/live', access: 'open' },
  { method: '*', pattern: '/health/ready', access: 'open' },
  { method: '*', pattern: '/health/startup', access: 'open' },
  { method: '*', pattern: '/metrics', access: 'open' },
  { method: 'GET', pattern: '/health/detailed', access: 'admin' },

  // Agent keys: run agents, follow and cancel their own runs (ownership is checked by the
  // runs service with canAccess), list agents and models.
  { method: 'POST', pattern: '/agents/run', access: 'agent' },
  { method: 'GET', pattern: '/agents', access: 'agent' },
  { method: 'GET', pattern: '/agents/runs', access: 'agent' },
  { method: 'GET', pattern: '/agents/runs/:id', access: 'agent' },
  { method: 'GET', pattern: '/agents/runs/:id/events', access: 'agent' },
  { method: 'POST', pattern: '/agents/runs/:id/cancel', access: 'agent' },
  { method: 'POST', pattern: '/agents/runs/:id/resume', access: 'agent' },
  // One agent's definition: the list above already shows every agent to an agent key.
  { method: 'GET', pattern: '/agents/:name', access: 'agent' },
  { method: 'GET', pattern: '/ollama/models', access: 'agent' },
  { method: 'GET', pattern: '/ollama/model-info', access: 'agent' },
  { method: 'GET', pattern: '/ollama/health', access: 'agent' },

  // The drop-in APIs (OpenAI's /v1, Ollama's /api and /): model management is admin-only;
  // everything else is open to agent keys, and a path the routers do not serve is their 404.
  { method: '*', pattern: '/api/pull', access: 'admin' },
  { method: '*', pattern: '/api/push', access: 'admin' },
  { method: '*', pattern: '/api/create', access: 'admin' },
  { method: '*', pattern: '/api/copy', access: 'admin' },
  { method: '*', pattern: '/api/delete', access: 'admin' },
  { method: '*', pattern: '/api', access: 'agent' },
  { method: '*', pattern: '/api/*rest', access: 'agent' },
  { method: '*', pattern: '/v1', access: 'agent' },
  { method: '*', pattern: '/v1/*rest', access: 'agent' },
  { method: '*', pattern: '/', access: 'agent' },
  // The API description: public, like the API's documentation.
  { method: '*', pattern: '/openapi.json', access: 'open' },

  // Admin keys: everything else under the API, named here for the reader and the role
  // matrix test; the catch-alls keep new routes closed by default.
  { method: 'POST', pattern: '/ollama/model/switch', access: 'admin' },
  { method: 'POST', pattern: '/ollama/models/pull', access: 'admin' },
  { method: 'DELETE', pattern: '/ollama/models/*name', access: 'admin' },
  { method: 'GET', pattern: '/ollama/health/detailed', access: 'admin' },
  { method: '*', pattern: '/ollama', access: 'admin' },
  { method: '*', pattern: '/ollama/*rest', access: 'admin' },
  { method: '*', pattern: '/agents', access: 'admin' },
  { method: '*', pattern: '/agents/*rest', access: 'admin' },
]);

interface CompiledRule extends PolicyRule {
  regexp: RegExp;
  /** What a match answers: one object per rule, not one per request. */
  result: PolicyMatch;
}

/** The row a request matched, or undefined for a path no row covers. */
export interface PolicyMatch {
  access: Access;
  /** The rule's pattern: a bounded label for logs and metrics. */
  pattern: string;
}

export interface AuthPolicy {
  match(method: string, path: string): PolicyMatch | undefined;
  /** `match` for a request at the app's level, computed once per request. */
  matchRequest(req: Request): PolicyMatch | undefined;
  /** True for probes and /metrics: no key needed, never rate-limited. */
  isOpen(req: Request): boolean;
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
    result: Object.freeze({ access: r.access, pattern: r.pattern }),
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
  const isOpen = (req: Request): boolean => matchRequest(req)?.access === 'open';

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
    // Unknown path: any authenticated caller goes on to the 404.
    if (rule === undefined) return next();
    if (rule.access === 'admin' && principal.role !== 'admin') {
      logger?.debug('request forbidden', { principal: principal.id, route: rule.pattern });
      throw new AppError('FORBIDDEN', undefined, { details: { required_role: 'admin' } });
    }
    next();
  };
  return { match, matchRequest, isOpen, middleware };
}
