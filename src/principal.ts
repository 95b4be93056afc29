import type { KeyBudgets, KeyLimits, Role } from './config';

/** Who is calling: set on every request by the auth middleware before any router runs. */
export interface Principal {
  /**
   * A stable, non-secret id of the credential (a short digest of the API key), or
   * `anonymous` when authentication is disabled. Runs record it as their owner.
   */
  id: string;
  role: Role;
  /** The key's fair-sharing settings; unset: the service's defaults. */
  limits?: KeyLimits;
  /** The key's token budgets per UTC day and month; unset: unlimited. */
  budgets?: KeyBudgets;
}

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

/** The principal used when authentication is disabled: full rights, one shared identity. */
export const ANONYMOUS: Readonly<Principal> = Object.freeze({ id: 'anonymous', role: 'admin' });

/** A resource owned by `ownerId` may be read or changed by its owner or by any admin. */
export function canAccess(principal: Principal | undefined, ownerId: string): boolean {
  const p = principal ?? ANONYMOUS;
  return p.role === 'admin' || p.id === ownerId;
}

/**
 * Who a generation is admitted for, and how it shares the Ollama slots with the others: the
 * caller's key (an API key's id, or `ip:<address>` for an anonymous caller, one group per
 * client), its concurrency cap and its fair-queueing weight and priority (see `KeyLimits`).
 */
export interface AdmissionTicket {
  key: string;
  maxConcurrency?: number;
  weight?: number;
  priority?: 'interactive' | 'batch';
}

/**
 * The admission ticket of a caller: its key's id and limits, or one group per client IP when
 * the caller is anonymous (authentication off).
 */
export function admissionTicket(
  principal: Principal | undefined,
  clientIp: string | undefined,
): AdmissionTicket {
  const p = principal ?? ANONYMOUS;
  const key = p.id === ANONYMOUS.id ? `ip:${clientIp ?? 'unknown'}` : p.id;
  const limits = p.limits;
  return {
    key,
    ...(limits?.maxConcurrency !== undefined ? { maxConcurrency: limits.maxConcurrency } : {}),
    ...(limits?.weight !== undefined ? { weight: limits.weight } : {}),
    ...(limits?.priority !== undefined ? { priority: limits.priority } : {}),
  };
}
