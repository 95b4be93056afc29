import assert from 'node:assert/strict';
import { ADHOC_LIMITS, createSchemaRegistry } from '../../src/validation';

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
    assert.throws(() => schemas.compile({ $ref: 'config' }), /names nothing in the schema/);
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

  it('runs a caller’s patterns on RE2: linear in the input, no lookaround', () => {
    const nested = schemas.compile({ type: 'string', pattern: '^(a+)+$' });
    // A backtracking engine takes about 2^n steps here; RE2 one pass.
    assert.equal(nested(`${'a'.repeat(22)}!`), false);
    assert.equal(nested('aaaa'), true);
    const keys = schemas.compile({
      type: 'object',
      properties: { aaaa: { type: 'number' } },
      patternProperties: { '^a+$': { type: 'number' } },
    });
    assert.equal(keys({ aaaa: 1, aa: 2 }), true);
    assert.equal(keys({ aa: 'x' }), false);
    assert.throws(() => schemas.compile({ type: 'string', pattern: '^(?=a)a$' }), /Perl syntax/);
    assert.throws(() => schemas.compile({ type: 'string', pattern: '(a)\\1' }), /escape/);
  });

  it('holds patterns to a size: matching costs the input times the compiled program', () => {
    const { patternLength, patternProgram, schemaProgram } = ADHOC_LIMITS;
    assert.throws(
      () => schemas.compile({ type: 'string', pattern: 'a'.repeat(patternLength + 1) }),
      /longer than/,
    );
    // `[a-z]{1000}` is short, and a thousand RE2 instructions.
    assert.throws(() => schemas.compile({ type: 'string', pattern: '[a-z]{1000}' }), /too complex/);
    const each = `[a-z]{${patternProgram - 10}}`;
    assert.doesNotThrow(() => schemas.compile({ type: 'string', pattern: each }));
    const many = Math.ceil(schemaProgram / (patternProgram - 10)) + 1;
    const properties = Object.fromEntries(
      Array.from({ length: many }, (_, i) => [`p${i}`, { type: 'string', pattern: `${i}${each}` }]),
    );
    assert.throws(() => schemas.compile({ type: 'object', properties }), /too complex together/);
    // The budget is per schema: the next one starts afresh.
    assert.doesNotThrow(() => schemas.compile({ type: 'string', pattern: `x${each}` }));
  });

  it('counts every $ref as the schema it names: references that double at each level are refused', () => {
    const doubling = (levels: number) => {
      const definitions: Record<string, unknown> = { d0: { type: 'string', minLength: 1 } };
      for (let i = 1; i <= levels; i += 1) {
        const ref = { $ref: `#/definitions/d${i - 1}` };
        definitions[`d${i}`] = { allOf: [ref, ref] };
      }
      return { definitions, $ref: `#/definitions/d${levels}` };
    };
    // 2^10 subschemas applied to one value: allowed; 2^16: refused before it can run.
    assert.equal(schemas.compile(doubling(10))('x'), true);
    assert.throws(() => schemas.compile(doubling(16)), /expands to more than/);
    // A pattern counts for more: a value checked against the same pattern many times.
    const patterns = { allOf: Array.from({ length: 64 }, () => ({ pattern: '^a' })) };
    assert.throws(() => schemas.compile(patterns), /expands to more than/);
    // A recursive schema goes as deep as the value, and is allowed.
    const tree = schemas.compile({
      definitions: {
        node: {
          type: 'object',
          properties: { children: { type: 'array', items: { $ref: '#/definitions/node' } } },
        },
      },
      $ref: '#/definitions/node',
    });
    assert.equal(tree({ children: [{ children: [] }] }), true);
    assert.throws(() => schemas.compile({ $ref: 'https://example.com/s' }), /names nothing/);
  });

  it('refuses a schema larger than its limit, whatever it holds', () => {
    const description = 'd'.repeat(ADHOC_LIMITS.schemaChars);
    assert.throws(() => schemas.compile({ type: 'string', description }), /characters as JSON/);
  });

  it('translates \\u escapes for RE2 and refuses the backreferences RE2 lacks', () => {
    const upper = schemas.compile({ type: 'string', pattern: '^[\\u0041-\\u005A]+$' });
    assert.equal(upper('ABC'), true);
    assert.equal(upper('abc'), false);
    // An escaped backslash before a `u` stays a backslash.
    const literal = schemas.compile({ type: 'string', pattern: '^\\\\u0041$' });
    assert.equal(literal('\\u0041'), true);
    assert.equal(literal('A'), false);
    for (const pattern of ['(a)\\1', '(?<x>a)\\k<x>']) {
      assert.throws(() => schemas.compile({ type: 'string', pattern }), /escape|syntax|invalid/i);
    }
  });

  it('refuses an $async schema, whose validator would answer with a promise', () => {
    assert.throws(() => schemas.compile({ $async: true, type: 'object' }), /\$async/);
    assert.throws(
      () =>
        schemas.compile({ type: 'object', properties: { a: { $async: true, type: 'string' } } }),
      /async schema in sync schema/,
    );
  });
});
