import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestHandler } from 'express';
import { keySourceOf, type ApiKeySource } from '../src/api-keys';
import type { ApiKeyEntry } from '../src/config';
import type { Logger } from '../src/logger';
import { ANONYMOUS, type Principal } from '../src/principal';

declare module 'express-serve-static-core' {
  interface Request {
    /** Why no principal was set: no credential sent, or one that matches no key. */
    authFailure?: 'missing' | 'invalid';
  }
}

export interface AuthOptions {
  /** The keys, or where to read the keys in force on each request (they may be reloaded). */
  keys: readonly ApiKeyEntry[] | ApiKeySource;
  logger: Logger;
  /** AUTH_DISABLED=true: run without keys on purpose (every caller is ANONYMOUS). */
  disabled?: boolean;
}

/** Longer credentials are refused unhashed (configured keys are far shorter). */
const MAX_CREDENTIAL_LENGTH = 1024;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** The public id of a key: a short prefix of its SHA-256, safe to log and store as an owner. */
export function keyId(key: string): string {
  return `key_${sha256(key).toString('hex').slice(0, 16)}`;
}

/** The credential of a request: `Authorization: Bearer <key>`, else `X-API-Key`. */
export function readCredential(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth);
    if (m) return m[1];
  }
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.trim() !== '') return apiKey.trim();
  // An Authorization header that is not a Bearer token still counts as a (bad) credential.
  return typeof auth === 'string' ? auth : undefined;
}

interface KeyRow {
  digest: Buffer;
  principal: Principal;
}

/** The lookup table of one version of the keys: each key's digest and the principal it makes. */
function keyTable(keys: readonly ApiKeyEntry[]): KeyRow[] {
  return keys.map((k) => ({
    digest: sha256(k.key),
    principal: Object.freeze<Principal>({
      id: k.id ?? keyId(k.key),
      role: k.role,
      ...(k.limits ? { limits: k.limits } : {}),
      ...(k.budgets ? { budgets: k.budgets } : {}),
    }),
  }));
}

/**
 * Identifies the caller from its API key and sets `req.principal` ({ id, role, limits,
 * budgets }; the id is the key's configured id, else a digest of the key).
 * It never rejects: a missing or unknown key leaves `req.principal` unset and records
 * `req.authFailure`, so the rate limiter can count the attempt against the client's IP and
 * the policy (auth-policy.ts) answers 401/403 afterwards. Keys are compared as SHA-256
 * digests with `timingSafeEqual` against every configured key (no early exit), so timing
 * tells nothing about which key or how much of it matched. Keys are never logged.
 *
 * The keys come from a source that may change (a reloaded API_KEYS_FILE): the table is rebuilt
 * when the source hands out a new version, so the next request sees the new keys.
 *
 * With no keys configured every caller is {@link ANONYMOUS} (full rights); the warning
 * about that is logged once, here, when the middleware is built.
 */
export function createAuth(options: AuthOptions): RequestHandler {
  const { logger } = options;
  const source = keySourceOf(options.keys);
  let version = source.current();
  let table = keyTable(version);
  if (table.length === 0) {
    logger.warn(
      options.disabled
        ? 'AUTHENTICATION DISABLED (AUTH_DISABLED=true): anyone who reaches this port can run agents and pull, switch and delete models'
        : 'AUTHENTICATION OFF: no API keys configured (API_KEYS / API_KEYS_FILE); anyone who reaches this port can run agents and pull, switch and delete models',
    );
  } else {
    logger.info('authentication on', {
      keys: table.length,
      admin_keys: table.filter((k) => k.principal.role === 'admin').length,
    });
  }
  return (req, _res, next) => {
    const keys = source.current();
    if (keys !== version) {
      version = keys;
      table = keyTable(keys);
    }
    if (table.length === 0) {
      req.principal = ANONYMOUS;
      return next();
    }
    const credential = readCredential(req.headers);
    if (credential === undefined) {
      req.authFailure = 'missing';
      return next();
    }
    if (credential.length > MAX_CREDENTIAL_LENGTH) {
      req.authFailure = 'invalid';
      return next();
    }
    const digest = sha256(credential);
    let found: Principal | undefined;
    for (const entry of table) {
      if (timingSafeEqual(entry.digest, digest) && found === undefined) found = entry.principal;
    }
    if (found) req.principal = found;
    else req.authFailure = 'invalid';
    next();
  };
}
