import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  AgentsFileError,
  createAgentRegistry,
  loadAgentsFile,
} from '../../services/agents/registry';
import { createSchemaRegistry } from '../../src/validation';

describe('AGENTS_FILE', () => {
  const schemas = createSchemaRegistry();
  const dir = mkdtempSync(path.join(tmpdir(), 'agents-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string): string => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const deps = {
    toolNames: ['calculator', 'current_time'],
    schemas,
    numCtx: { for: () => undefined, defaultModel: () => 'llama3.2:3b' },
  };

  it('loads YAML agents and keeps the built-in default', () => {
    const agents = loadAgentsFile(
      file(
        'ok.yaml',
        [
          'agents:',
          '  - name: math',
          '    description: Does sums',
          '    model: qwen3:8b',
          '    system: You compute.',
          '    tools: [calculator]',
          '    options: { temperature: 0.1 }',
          '    limits: { max_steps: 4 }',
        ].join('\n'),
      ),
      deps,
    );
    const registry = createAgentRegistry({ agents });
    assert.deepEqual(
      registry.list().map((a) => a.name),
      ['default', 'math'],
    );
    assert.equal(registry.get('math')?.limits?.max_steps, 4);
  });

  it('hands out one frozen copy of each agent: readers cannot change it, the file cannot either', () => {
    const agents = [{ name: 'math', system: 'You compute.', tools: ['calculator'] }];
    const registry = createAgentRegistry({ agents });
    const math = registry.get('math');
    assert.equal(registry.get('math'), math, 'no copy per read');
    assert.ok(math && Object.isFrozen(math) && Object.isFrozen(math.tools));
    assert.throws(() => (math.tools as string[]).push('current_time'), TypeError);
    agents[0]!.tools.push('current_time');
    assert.deepEqual(registry.get('math')?.tools, ['calculator'], 'copied when registered');
    assert.ok(Object.isFrozen(registry.get('default')?.tools));
    assert.equal(registry.list(), registry.list());
  });

  it('loads JSON too', () => {
    const agents = loadAgentsFile(file('ok.json', '{"agents":[{"name":"j","system":"x"}]}'), deps);
    assert.equal(agents[0]?.name, 'j');
  });

  it('stops with every problem named', () => {
    const bad = file(
      'bad.yaml',
      [
        'agents:',
        '  - name: Bad Name',
        '    limits: { max_steps: 999 }',
        '  - name: twice',
        '  - name: twice',
        '    tools: [shell]',
      ].join('\n'),
    );
    assert.throws(
      () => loadAgentsFile(bad, deps),
      (err: unknown) => {
        assert.ok(err instanceof AgentsFileError);
        assert.match(err.message, /\/agents\/0\/name must match pattern/);
        assert.match(err.message, /\/agents\/0\/limits\/max_steps must be <= 50/);
        return true;
      },
    );
    const semantic = file(
      'sem.yaml',
      'agents:\n  - name: twice\n  - name: twice\n    tools: [shell]\n',
    );
    assert.throws(
      () => loadAgentsFile(semantic, deps),
      /defined twice[\s\S]*tool "shell" is not available/,
    );
    assert.throws(() => loadAgentsFile(file('syntax.yaml', 'agents: [\n'), deps), AgentsFileError);
    assert.throws(() => loadAgentsFile(path.join(dir, 'missing.yaml'), deps), /ENOENT/);
  });
});
