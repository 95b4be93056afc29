import assert from 'node:assert/strict';
import { createSchemaRegistry } from '../../src/validation';
import { createBuiltinTools, createToolRegistry } from '../../services/tools/registry';

describe('tool registry', () => {
  const schemas = createSchemaRegistry();
  const registry = createToolRegistry({
    tools: createBuiltinTools({ now: Date.now, httpAllowlist: [] }),
    schemas,
  });

  it('leaves http_get out when no host is allowlisted', () => {
    assert.deepEqual(registry.names(), ['calculator', 'current_time']);
    const withHttp = createBuiltinTools({ now: Date.now, httpAllowlist: ['example.com'] });
    assert.ok(withHttp.some((t) => t.name === 'http_get'));
  });

  it('describes tools in Ollama form', () => {
    const [tool] = registry.forOllama(['calculator', 'nope']);
    assert.equal(tool?.type, 'function');
    assert.equal(tool?.function.name, 'calculator');
    assert.deepEqual(tool?.function.parameters?.required, ['expression']);
  });

  it('explains bad arguments precisely', () => {
    assert.equal(registry.checkArguments('calculator', { expression: '1+1' }), null);
    assert.equal(registry.checkArguments('calculator', {}), 'arguments.expression is required');
    assert.match(
      registry.checkArguments('calculator', { expression: 5 }) ?? '',
      /expression must be string/,
    );
    assert.match(
      registry.checkArguments('calculator', { expression: '1', x: 1 }) ?? '',
      /arguments.x is not an allowed property/,
    );
    assert.equal(registry.checkArguments('shell', {}), 'Unknown tool "shell".');
  });
});
