import assert from 'node:assert/strict';
import { isAppError } from '../../src/errors';
import { joinChat, parseChatLines } from '../../services/ollama/stream';
import type { BodyChunk } from '../../services/ollama/transport';

const line = (o: unknown) => `${JSON.stringify(o)}\n`;
const part = (content: string) => ({
  model: 'm',
  message: { role: 'assistant', content },
  done: false,
});
const final = {
  model: 'm',
  message: { role: 'assistant', content: '' },
  done: true,
  eval_count: 3,
};
const chunks = (...pieces: Array<[string | Buffer, number]>): BodyChunk[] =>
  pieces.map(([data, at]) => ({ data: Buffer.isBuffer(data) ? data : Buffer.from(data), at }));

const upstreamError = (err: unknown): boolean => {
  assert.ok(isAppError(err));
  assert.equal(err.code, 'OLLAMA_UPSTREAM_ERROR');
  return true;
};

describe('parseChatLines and joinChat (services/ollama/stream)', () => {
  it('splits lines that straddle chunks, multi-byte characters included, and joins the answer', () => {
    const text = line(part('héllo ')) + line(part('wörld 🙂')) + line(final);
    const bytes = Buffer.from(text);
    // Cut inside the é, inside the emoji, and between lines.
    const cuts = [text.indexOf('é') + 1, bytes.indexOf(Buffer.from('🙂')) + 2, bytes.length - 5];
    const pieces: Array<[Buffer, number]> = [];
    let from = 0;
    cuts.forEach((cut, i) => {
      pieces.push([bytes.subarray(from, cut), 10 + i]);
      from = cut;
    });
    pieces.push([bytes.subarray(from), 20]);
    const { parts, contentAt } = parseChatLines(chunks(...pieces));
    assert.equal(parts.length, 3);
    assert.equal(contentAt, 11, 'the first line with content ended in the second chunk');
    const answer = joinChat(parts);
    assert.equal(answer.message.content, 'héllo wörld 🙂');
    assert.equal(answer.done, true);
    assert.equal(answer.eval_count, 3);
  });

  it('takes the first line with content for the first token, not an empty first line', () => {
    const { contentAt } = parseChatLines(
      chunks([line(part('')), 5], [line(part('a')), 7], [line(final), 9]),
    );
    assert.equal(contentAt, 7);
  });

  it('counts a final line carrying only tool calls as content', () => {
    const tool = {
      ...final,
      message: {
        role: 'assistant',
        content: '',
        tool_calls: [{ function: { name: 'f', arguments: {} } }],
      },
    };
    const { parts, contentAt } = parseChatLines(chunks([line(tool), 4]));
    assert.equal(contentAt, 4);
    assert.equal(joinChat(parts).message.tool_calls?.length, 1);
  });

  it('throws OLLAMA_UPSTREAM_ERROR for an error line, a line that is not JSON, or no final object', () => {
    assert.throws(
      () => parseChatLines(chunks([line(part('a')) + line({ error: 'runner crashed' }), 1])),
      (err) => upstreamError(err) && /runner crashed/.test(String((err as Error).cause)),
    );
    assert.throws(() => parseChatLines(chunks([`${line(part('a'))}{"trunc\n`, 1])), upstreamError);
    assert.throws(() => parseChatLines(chunks([line(part('a')), 1])), upstreamError);
    assert.throws(() => parseChatLines([]), upstreamError);
  });

  it('reads a final line that has no newline after it', () => {
    const { parts } = parseChatLines(chunks([line(part('a')) + JSON.stringify(final), 1]));
    assert.equal(parts.length, 2);
    assert.equal(joinChat(parts).message.content, 'a');
  });
});
