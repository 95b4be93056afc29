import assert from 'node:assert/strict';
import { createSchemaRegistry } from '../../src/validation';

describe('the schema registry', () => {
  it('compiles every schema in schemas/ and each has an $id', () => {
    const schemas = createSchemaRegistry();
    assert.ok(schemas.ids.includes('config'));
    for (const id of schemas.ids) assert.equal(typeof schemas.get(id), 'function');
  });
});
