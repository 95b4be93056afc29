import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  displayModelName,
  isCloudModel,
  MODEL_NAME_PATTERN,
  modelKey,
  parseModelName,
  sameModel,
} from '../../src/model-name';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const schema = (file: string) =>
  JSON.parse(readFileSync(path.join(ROOT, 'schemas', file), 'utf8')) as Record<
    string,
    Record<string, { pattern?: string }>
  >;

describe('model names (src/model-name)', () => {
  describe('parseModelName', () => {
    for (const [text, parts] of [
      ['llama3.2', ['registry.ollama.ai', 'library', 'llama3.2', 'latest']],
      ['library/llama3.2:3b', ['registry.ollama.ai', 'library', 'llama3.2', '3b']],
      [
        'hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M',
        ['hf.co', 'bartowski', 'Llama-3.2-1B-Instruct-GGUF', 'Q4_K_M'],
      ],
      [
        'registry.example.com:5000/team/model:v1',
        ['registry.example.com:5000', 'team', 'model', 'v1'],
      ],
      [
        'registry.example.com:5000/team/model',
        ['registry.example.com:5000', 'team', 'model', 'latest'],
      ],
      ['https://hf.co/user/repo:q8', ['hf.co', 'user', 'repo', 'q8']],
      ['gpt-oss:20b-cloud', ['registry.ollama.ai', 'library', 'gpt-oss', '20b-cloud']],
    ] as const) {
      it(`reads ${text} as Ollama does`, () => {
        const n = parseModelName(text);
        assert.deepEqual(n && [n.host, n.namespace, n.model, n.tag], parts);
      });
    }

    for (const text of [
      'hf.co/model', // two parts: hf.co is a namespace, and a namespace has no dot
      'user.name/model',
      'a/b/c/d',
      '',
      ':tag',
      'model:',
      'model:a:b',
      '-model',
      'model/../x',
      'mo del',
      `${'m'.repeat(81)}`,
    ]) {
      it(`refuses ${JSON.stringify(text)}, as Ollama answers "invalid model name"`, () => {
        assert.equal(parseModelName(text), undefined);
        assert.equal(new RegExp(MODEL_NAME_PATTERN).test(text), false, 'the schema pattern agrees');
      });
    }
  });

  it('prints and compares names as /api/tags does: defaults dropped, tag kept, case folded', () => {
    assert.equal(displayModelName('llama3.2'), 'llama3.2:latest');
    assert.equal(displayModelName('library/qwen3'), 'qwen3:latest');
    assert.equal(displayModelName('registry.ollama.ai/library/qwen3:8b'), 'qwen3:8b');
    assert.equal(displayModelName('hf.co/u/r:Q4_K_M'), 'hf.co/u/r:Q4_K_M');
    assert.equal(modelKey('Llama3.2:3B'), 'llama3.2:3b');
    assert.ok(sameModel('llama3.2', 'Library/Llama3.2:latest'));
    assert.ok(sameModel('HF.co/Bartowski/X:q4_k_m', 'hf.co/bartowski/x:Q4_K_M'));
    assert.ok(!sameModel('llama3.2:3b', 'llama3.2:1b'));
    assert.ok(!sameModel('team/model', 'other/model'));
  });

  it('tells cloud models by their tag', () => {
    assert.ok(isCloudModel('gpt-oss:120b-cloud'));
    assert.ok(isCloudModel('deepseek-v3.1:cloud'));
    assert.ok(!isCloudModel('llama3.2:3b'));
    assert.ok(!isCloudModel('cloud'));
  });

  it('is the one pattern of every schema that takes a model name', () => {
    assert.equal(
      schema('ollama-common.schema.json').definitions?.modelName?.pattern,
      MODEL_NAME_PATTERN,
    );
    assert.equal(
      schema('config.schema.json').properties?.OLLAMA_MODEL?.pattern,
      MODEL_NAME_PATTERN,
    );
    for (const valid of [
      'llama3.2',
      'hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M',
      'registry.example.com:5000/team/model:v1',
    ]) {
      assert.ok(new RegExp(MODEL_NAME_PATTERN).test(valid), valid);
      assert.ok(parseModelName(valid), valid);
    }
  });
});
