import assert from 'node:assert/strict';
import { tokenCounts, TokenTail, withoutUsageEvent } from '../../services/passthrough/usage';

describe('token counts from the end of an answer', () => {
  const rows: Array<[string, string, { promptTokens?: number; completionTokens?: number }]> = [
    [
      'OpenAI chat, usage chunk then [DONE]',
      'data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}\n\ndata: [DONE]\n\n',
      { promptTokens: 12, completionTokens: 3 },
    ],
    [
      'Responses API',
      '{"object":"response","usage":{"input_tokens":4,"output_tokens":9,"total_tokens":13}}',
      { promptTokens: 4, completionTokens: 9 },
    ],
    [
      "Ollama's final line",
      '{"done":true,"prompt_eval_count":30,"prompt_eval_duration":1,"eval_count":25,"eval_duration":2}\n',
      { promptTokens: 30, completionTokens: 25 },
    ],
    [
      'embeddings (prompt only)',
      '{"usage":{"prompt_tokens":8,"total_tokens":8}}',
      { promptTokens: 8 },
    ],
    ['a stream without usage', 'data: {"choices":[{"delta":{}}]}\n\ndata: [DONE]\n\n', {}],
  ];
  for (const [name, tail, expected] of rows) {
    it(name, () => assert.deepEqual(tokenCounts(tail), expected));
  }

  it('takes the last count when a message quotes an earlier one', () => {
    const text = '{"message":{"content":"\\"eval_count\\":99"}}\n{"done":true,"eval_count":2}\n';
    assert.equal(tokenCounts(text).completionTokens, 2);
  });

  it('keeps the end of a long answer and drops the start', () => {
    const tail = new TokenTail();
    tail.push(Buffer.from(`{"eval_count":1}${'x'.repeat(10_000)}`));
    for (let i = 0; i < 100; i += 1) tail.push(Buffer.from('y'.repeat(100)));
    tail.push(Buffer.from('{"eval_count":7}'));
    const text = tail.text();
    assert.ok(text.length <= 4096);
    assert.equal(tokenCounts(text).completionTokens, 7);
  });
});

describe('withoutUsageEvent', () => {
  const delta =
    'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n';
  const usage =
    'data: {"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1}}\n\n';
  const done = 'data: [DONE]\n\n';
  const strip = (text: string) => Buffer.from(withoutUsageEvent(Buffer.from(text))).toString();

  it('takes the usage event out wherever it is in the chunk', () => {
    assert.equal(strip(usage), '');
    assert.equal(strip(delta + usage + done), delta + done);
    assert.equal(strip(usage + done), done);
  });

  it('returns a chunk without one as it is', () => {
    const chunk = Buffer.from(delta + done);
    assert.equal(withoutUsageEvent(chunk), chunk);
  });
});
