import type { RequestHandler } from 'express';
import type { Principal } from '../src/principal';
import { clientSignal } from './client-signal';

export interface TokenBudgetOptions {
  /**
   * The budget check of the caller (services/usage `check`): resolves with the warning to send
   * when a budget is nearly used, rejects with TOKEN_BUDGET_EXCEEDED when one is used up.
   */
  check: (principal: Principal | undefined, signal?: AbortSignal) => Promise<{ warning?: string }>;
  /** The warning's header name (Token-Budget-Warning). */
  header: string;
}

/**
 * Guards a route that starts a generation (agent runs, the drop-in chat, completion and
 * embedding routes) with the caller's token budgets: a key whose daily or monthly budget is
 * used up gets 429 TOKEN_BUDGET_EXCEEDED with Retry-After at the next reset; a key near a
 * budget gets the warning header on its answer.
 */
export function createTokenBudget(options: TokenBudgetOptions): RequestHandler {
  return async (req, res, next) => {
    // The store's reads end with the request when its client goes away.
    const { warning } = await options.check(req.principal, clientSignal(res));
    if (warning !== undefined) res.setHeader(options.header, warning);
    next();
  };
}
