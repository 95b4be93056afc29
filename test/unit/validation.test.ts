import assert from 'node:assert/strict';
import { createSchemaRegistry } from '../../src/validation';

describe('the schema registry', () => {
  it('compiles every schema in schemas/ and each has an $id', () => {
    const schemas = createSchemaRegistry();
    assert.ok(schemas.ids.includes('config'));
    for (const id of schemas.ids) assert.equal(typeof schemas.get(id), 'function');
  });
});

describe('ad-hoc schemas (a caller’s response_format, a client tool’s parameters)', () => {
  const schemas = createSchemaRegistry();
  const withId = (id: string, type: string) => ({
    $id: id,
    type: 'object',
    properties: { x: { type } },
    required: ['x'],
  });

  it('compiles two callers’ schemas that claim one $id, each with its own meaning', () => {
    const numbers = schemas.compile(withId('x-1', 'number'));
    const strings = schemas.compile(withId('x-1', 'string'));
    assert.equal(numbers({ x: 1 }), true);
    assert.equal(strings({ x: 1 }), false);
    assert.equal(strings({ x: 'a' }), true);
  });

  it('never reaches the registry’s own schemas by $id or $ref', () => {
    schemas.compile(withId('config', 'string'));
    assert.equal(typeof schemas.get('config'), 'function');
    assert.throws(() => schemas.compile({ $ref: 'config' }), /can't resolve reference config/);
  });

  it('keeps compiling across many distinct schemas (a fresh Ajv every so often)', () => {
    for (let i = 0; i < 250; i += 1) {
      const fn = schemas.compile({
        $id: `s-${i % 3}`,
        type: 'object',
        properties: { [`k${i}`]: { type: 'number' } },
        required: [`k${i}`],
      });
      assert.equal(fn({ [`k${i}`]: 1 }), true);
    }
  });
});
