import assert from 'node:assert/strict';
import {
  canonicalModelName,
  createCappedLabeler,
  createModelLabeler,
} from '../../services/metrics/labels';

describe('metric labels', () => {
  describe('canonicalModelName', () => {
    for (const [input, expected] of [
      ['llama3.2', 'llama3.2:latest'],
      ['Llama3.2:3B', 'llama3.2:3b'],
      ['library/qwen3', 'qwen3:latest'],
      ['hf.co/Bartowski/X:Q4_K_M', 'hf.co/bartowski/x:q4_k_m'],
      ['registry.local:5000/team/model', 'registry.local:5000/team/model:latest'],
      ['registry.local:5000/team/model:q4', 'registry.local:5000/team/model:q4'],
    ] as const) {
      it(`reads ${input} as ${expected}`, () => assert.equal(canonicalModelName(input), expected));
    }
  });

  describe('createModelLabeler', () => {
    it('answers the listed name for any spelling Ollama accepts, else other', () => {
      let installed: readonly string[] = ['llama3.2:latest', 'Qwen3:8b'];
      const label = createModelLabeler(() => installed);
      assert.equal(label('LLAMA3.2'), 'llama3.2:latest');
      assert.equal(label('qwen3:8B'), 'Qwen3:8b');
      assert.equal(label('qwen3'), 'other');
      installed = [...installed, 'qwen3:latest'];
      assert.equal(label('qwen3'), 'qwen3:latest', 'follows a new list');
    });
  });

  describe('createCappedLabeler', () => {
    it('passes the first values through and labels new ones past the cap `other`', () => {
      const label = createCappedLabeler(2);
      assert.deepEqual(['/a', '/b', '/c', '/a', '/b', '/d'].map(label), [
        '/a',
        '/b',
        'other',
        '/a',
        '/b',
        'other',
      ]);
    });
  });
});
