import assert from 'node:assert/strict';
import type { SchemaRegistry } from '../../src/validation';

/** Asserts `value` matches the schema `$id`, listing every problem when it does not. */
export function assertMatchesSchema(schemas: SchemaRegistry, id: string, value: unknown): void {
  const problems = schemas.check(id, structuredClone(value), 'value');
  assert.deepEqual(problems, [], `${id}: ${JSON.stringify(problems)}`);
}
