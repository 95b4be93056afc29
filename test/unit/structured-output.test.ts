import assert from 'node:assert/strict';
import { checkAnswer } from '../../services/agents/structured-output';
import { createSchemaRegistry } from '../../src/validation';

describe('structured answers', () => {
  const schemas = createSchemaRegistry();
  const validate = schemas.compile({
    type: 'object',
    required: ['n'],
    properties: { n: { type: 'integer' } },
  });

  it('accepts JSON, also inside a Markdown fence', () => {
    assert.deepEqual(checkAnswer('{"n": 1}', validate), { ok: true, value: { n: 1 } });
    assert.deepEqual(checkAnswer('```json\n{"n": 2}\n```', validate), {
      ok: true,
      value: { n: 2 },
    });
  });

  it('reports invalid JSON and schema mismatches', () => {
    const bad = checkAnswer('n = 1', validate);
    assert.equal(bad.ok, false);
    assert.match(JSON.stringify(bad), /is not valid JSON/);
    assert.deepEqual(checkAnswer('{"n": 1.5}', validate), {
      ok: false,
      problems: [{ in: 'output', path: '/n', message: 'must be integer' }],
    });
  });
});
