import type { RequestHandler } from 'express';
import { AppError } from '../src/errors';
import { coerceStrings, type FieldError, type SchemaRegistry } from '../src/validation';

export interface ValidateSpec {
  /** Schema `$id` for the JSON body. */
  body?: string;
  /** Schema `$id` for the query string; numeric and boolean values are converted first. */
  query?: string;
  /** Schema `$id` for the route parameters. */
  params?: string;
}

export type Validate = (spec: ValidateSpec) => RequestHandler;

/**
 * `validate({ body: 'agent-run.request' })` — the only validation in a route. The schemas
 * were compiled once at start; a failure answers 400 VALIDATION_FAILED with each bad field's
 * location, JSON pointer and reason. Schema defaults are applied to what passes.
 */
export function createValidate(options: { schemas: SchemaRegistry }): Validate {
  const { schemas } = options;
  return (spec) => {
    // Resolve the validators now, so a typo in a schema id fails at start, not on a request.
    for (const id of [spec.body, spec.query, spec.params]) if (id) schemas.get(id);
    return (req, _res, next) => {
      const problems: FieldError[] = [];
      if (spec.params) problems.push(...schemas.check(spec.params, req.params, 'params'));
      if (spec.query) {
        const query = coerceStrings(
          req.query as Record<string, unknown>,
          schemas.schema(spec.query),
        );
        problems.push(...schemas.check(spec.query, query, 'query'));
        // Express 5 exposes req.query as a getter; shadow it with the checked, typed values.
        Object.defineProperty(req, 'query', { value: query, writable: true, configurable: true });
      }
      if (spec.body) problems.push(...schemas.check(spec.body, req.body, 'body'));
      if (problems.length > 0) {
        throw new AppError('VALIDATION_FAILED', undefined, { details: problems });
      }
      next();
    };
  };
}
