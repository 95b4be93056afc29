/**
 * The JSON Schemas a run brings with it (its `response_format`, its client tools' parameters),
 * compiled through the service's schema registry (which holds callers' schemas to its limits:
 * src/validation.ts) and kept compiled for the runs that send the same schema again, and the
 * hashes of agents' stored configurations.
 */
import { createHash } from 'node:crypto';
import type { ValidateFunction } from 'ajv';
import { LRUCache } from 'lru-cache';
import { toFieldErrors, type SchemaRegistry } from '../../src/validation';
import { canonicalJson } from './idempotency';
import { invalidBody } from './plan';
import type { ClientToolSpec } from './types';

/** Entries each cache keeps (the least recently used goes first). */
const CACHE_MAX = 100;

export interface CallerSchemas {
  /** @throws AppError VALIDATION_FAILED (`/response_format/schema`) when it does not compile */
  compileFormat(schema: Record<string, unknown>): ValidateFunction;
  /** @throws AppError VALIDATION_FAILED (`/tools`) when the parameters do not compile */
  compileToolSchema(tool: ClientToolSpec): ValidateFunction;
  /**
   * Checks the model's calls of client tools against their schemas: null when valid, else what
   * is wrong in words the model can act on. The tools' schemas compile here.
   */
  clientChecker(tools: readonly ClientToolSpec[]): (name: string, args: unknown) => string | null;
  /**
   * A short hash of an agent's effective configuration; with a `key` (a stored agent and its
   * resolved model) it is computed once per key. Inline agents pass none.
   */
  configHash(effective: Record<string, unknown>, key: string | undefined): string;
}

/** Compiles `schema` once per canonical text; `fail` says what a schema that does not compile is. */
function compiler(
  schemas: SchemaRegistry,
): (schema: Record<string, unknown>, fail: (err: Error) => Error) => ValidateFunction {
  const compiled = new LRUCache<string, ValidateFunction>({ max: CACHE_MAX });
  return (schema, fail) => {
    const key = canonicalJson(schema);
    const cached = compiled.get(key);
    if (cached) return cached;
    let fn: ValidateFunction;
    try {
      fn = schemas.compile(schema);
    } catch (err) {
      throw fail(err as Error);
    }
    compiled.set(key, fn);
    return fn;
  };
}

export function createCallerSchemas(schemas: SchemaRegistry): CallerSchemas {
  const formats = compiler(schemas);
  const toolSchemas = compiler(schemas);
  const hashes = new LRUCache<string, string>({ max: CACHE_MAX });

  const compileToolSchema = (tool: ClientToolSpec): ValidateFunction =>
    toolSchemas(tool.parameters, (err) =>
      invalidBody('/tools', `client tool "${tool.name}" parameters do not compile: ${err.message}`),
    );

  return {
    compileFormat: (schema) =>
      formats(schema, (err) =>
        invalidBody('/response_format/schema', `does not compile: ${err.message}`),
      ),

    compileToolSchema,

    clientChecker(tools) {
      const validators = new Map(tools.map((t) => [t.name, compileToolSchema(t)]));
      return (name, args) => {
        const validate = validators.get(name);
        if (!validate) return `Unknown tool "${name}".`;
        if (validate(args)) return null;
        return toFieldErrors(validate.errors ?? [], 'arguments')
          .map((e) => `arguments${e.path.replace(/\//g, '.')} ${e.message}`)
          .join('; ');
      };
    },

    configHash(effective, key) {
      const cached = key !== undefined ? hashes.get(key) : undefined;
      if (cached !== undefined) return cached;
      const hash = createHash('sha256').update(canonicalJson(effective)).digest('hex').slice(0, 16);
      if (key !== undefined) hashes.set(key, hash);
      return hash;
    },
  };
}
