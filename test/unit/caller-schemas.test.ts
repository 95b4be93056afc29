import assert from 'node:assert/strict';
import { createCallerSchemas } from '../../services/agents/caller-schemas';
import { AppError } from '../../src/errors';
import { createSchemaRegistry } from '../../src/validation';

const objectWith = (property: string) => ({
  type: 'object',
  properties: { [property]: { type: 'string' } },
  required: [property],
});

/** A registry whose compile calls are counted. */
function countingRegistry() {
  const registry = createSchemaRegistry();
  const counted = { compiles: 0 };
  const compile = registry.compile.bind(registry);
  registry.compile = (schema) => {
    counted.compiles += 1;
    return compile(schema);
  };
  return { registry, counted };
}

const refusedAt = (path: string) => (err: unknown) =>
  err instanceof AppError &&
  err.code === 'VALIDATION_FAILED' &&
  JSON.stringify(err.details).includes(`"path":"${path}"`);

describe('caller schemas (services/agents/caller-schemas)', () => {
  describe('compileFormat', () => {
    it('compiles a schema once, whatever the order of its keys', () => {
      const { registry, counted } = countingRegistry();
      const schemas = createCallerSchemas(registry);
      const first = schemas.compileFormat(objectWith('a'));
      const again = schemas.compileFormat({
        required: ['a'],
        properties: { a: { type: 'string' } },
        type: 'object',
      });
      assert.equal(again, first);
      assert.equal(counted.compiles, 1);
      assert.equal(first({ a: 'x' }), true);
      assert.equal(first({}), false);
    });

    it('keeps the schemas in use when more than 100 others come after them', () => {
      const { registry, counted } = countingRegistry();
      const schemas = createCallerSchemas(registry);
      const hot = objectWith('hot');
      schemas.compileFormat(hot);
      for (let i = 0; i < 150; i += 1) {
        schemas.compileFormat(objectWith(`p${i}`));
        schemas.compileFormat(hot);
      }
      assert.equal(counted.compiles, 151);
      // The oldest of the others is gone: it compiles again.
      schemas.compileFormat(objectWith('p0'));
      assert.equal(counted.compiles, 152);
    });

    it('refuses a schema that does not compile as the request’s 400 at /response_format/schema', () => {
      const schemas = createCallerSchemas(createSchemaRegistry());
      assert.throws(
        () => schemas.compileFormat({ type: 'no-such-type' }),
        refusedAt('/response_format/schema'),
      );
    });
  });

  describe('clientChecker', () => {
    const tools = [
      {
        type: 'client' as const,
        name: 'lookup',
        description: 'Looks a city up.',
        parameters: objectWith('city'),
      },
    ];

    it('passes valid arguments and says in words what is wrong with the others', () => {
      const check = createCallerSchemas(createSchemaRegistry()).clientChecker(tools);
      assert.equal(check('lookup', { city: 'Oslo' }), null);
      assert.equal(check('lookup', {}), 'arguments.city is required');
      assert.match(check('lookup', { city: 3 }) ?? '', /^arguments\.city must be string/);
      assert.equal(check('other', {}), 'Unknown tool "other".');
    });

    it('refuses parameters that do not compile as the request’s 400 at /tools, naming the tool', () => {
      const schemas = createCallerSchemas(createSchemaRegistry());
      const bad = {
        type: 'client' as const,
        name: 'broken',
        description: '',
        parameters: { type: 'nope' },
      };
      assert.throws(
        () => schemas.compileToolSchema(bad),
        (err: unknown) =>
          refusedAt('/tools')(err) && JSON.stringify((err as AppError).details).includes('broken'),
      );
    });
  });

  describe('configHash', () => {
    it('hashes the canonical configuration, once per key', () => {
      const schemas = createCallerSchemas(createSchemaRegistry());
      const a = schemas.configHash({ model: 'm', options: { x: 1, y: 2 } }, undefined);
      const b = schemas.configHash({ options: { y: 2, x: 1 }, model: 'm' }, undefined);
      assert.equal(a, b);
      assert.match(a, /^[0-9a-f]{16}$/);
      assert.notEqual(schemas.configHash({ model: 'n' }, undefined), a);
      // A key's hash is the first one computed for it.
      const keyed = schemas.configHash({ model: 'm' }, 'agent:m');
      assert.equal(schemas.configHash({ model: 'changed' }, 'agent:m'), keyed);
    });
  });
});
