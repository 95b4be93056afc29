import assert from 'node:assert/strict';
import type { ForwardResponse } from '../../services/ollama';
import { createPassthroughService, type PassthroughRoute } from '../../services/passthrough';
import { AppError } from '../../src/errors';
import { createRecordingTelemetry } from '../support/recording-telemetry';

const MODEL = 'llama3.2:3b';
const CHAT: PassthroughRoute = {
  api: 'openai',
  method: 'POST',
  path: '/v1/chat/completions',
  kind: 'generation',
  operation: 'chat',
  modelScoped: true,
  streamsByDefault: false,
};
const USAGE = '"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}';

/** An upstream answer of `parts`, which throws `failAt`'s error there, and says how it ended. */
function upstream(parts: string[], failAt?: { index: number; error: Error }) {
  const seen = { returned: 0, aborted: 0 };
  const answer: ForwardResponse = {
    status: 200,
    contentType: 'application/json',
    timings: { queueMs: 0 },
    abort: () => void (seen.aborted += 1),
    [Symbol.asyncIterator]() {
      let i = 0;
      return {
        next: () => {
          if (failAt && i === failAt.index) return Promise.reject(failAt.error);
          const part = parts[i++];
          return Promise.resolve(
            part === undefined
              ? { done: true as const, value: undefined }
              : { done: false as const, value: Buffer.from(part) },
          );
        },
        return: () => {
          seen.returned += 1;
          return Promise.resolve({ done: true as const, value: undefined });
        },
      };
    },
  };
  return { answer, seen };
}

function service(answer: ForwardResponse, now: () => number = () => 0, route = CHAT) {
  const telemetry = createRecordingTelemetry();
  const records: Array<{ keyId: string; tokens: object }> = [];
  const passthrough = createPassthroughService({
    backends: { pick: () => ({ forward: () => Promise.resolve(answer) }) },
    telemetry,
    activeModel: () => MODEL,
    allowAnyInstalledModel: true,
    now,
    usage: { record: (keyId, _model, tokens) => void records.push({ keyId, tokens }) },
  });
  const forward = () =>
    passthrough.forward(
      route,
      { model: MODEL, messages: [] },
      new AbortController().signal,
      undefined,
      'k1',
    );
  return { forward, telemetry, records };
}

// The metering iterator of the passthrough service: one report and one usage record, however
// the answer ends.
describe('passthrough service (services/passthrough)', () => {
  it('reports a whole answer once, with its tokens, and then stays done', async () => {
    const { answer } = upstream(['{"choices":[],', USAGE]);
    const { forward, telemetry, records } = service(answer);
    const got = await forward();
    const parts: string[] = [];
    for await (const chunk of got.chunks) parts.push(Buffer.from(chunk).toString());
    assert.equal(parts.join(''), `{"choices":[],${USAGE}`);
    const iterator = got.chunks[Symbol.asyncIterator]();
    assert.deepEqual(
      telemetry.inferences.map((e) => e.outcome),
      ['success'],
    );
    assert.equal(telemetry.inferences[0]?.promptTokens, 7);
    assert.equal(telemetry.inferences[0]?.completionTokens, 2);
    assert.deepEqual(records, [{ keyId: 'k1', tokens: { promptTokens: 7, completionTokens: 2 } }]);
    // Read again, the same answer is over: nothing more, and no second report.
    assert.deepEqual(await iterator.next(), { done: true, value: undefined });
    await iterator.return?.();
    assert.equal(telemetry.inferences.length, 1);
  });

  it('closes the upstream answer and reports it cancelled when its reader stops early', async () => {
    const { answer, seen } = upstream(['a', 'b', 'c']);
    const { forward, telemetry, records } = service(answer);
    const got = await forward();
    for await (const chunk of got.chunks) {
      assert.equal(Buffer.from(chunk).toString(), 'a');
      break;
    }
    assert.equal(seen.returned, 1);
    assert.deepEqual(
      telemetry.inferences.map((e) => e.outcome),
      ['cancelled'],
    );
    assert.deepEqual(records, [{ keyId: 'k1', tokens: {} }]);
  });

  it('asks nothing of an answer nobody read, and reports nothing for it', async () => {
    const { answer, seen } = upstream(['a']);
    const { forward, telemetry } = service(answer);
    const got = await forward();
    await got.chunks[Symbol.asyncIterator]().return?.();
    assert.equal(seen.returned, 0);
    assert.equal(telemetry.inferences.length, 0);
  });

  it('closes the upstream answer when its own work on a chunk fails, and reports that failure', async () => {
    const { answer, seen } = upstream(['a', 'b']);
    let calls = 0;
    const failing = () => {
      calls += 1;
      // The second reading is the time to first token; the report reads it again, and works.
      if (calls === 2) throw new Error('clock broke');
      return 0;
    };
    // Streamed: the first chunk reads the clock for the time to first token.
    const { forward, telemetry } = service(answer, failing, { ...CHAT, streamsByDefault: true });
    const got = await forward();
    const iterator = got.chunks[Symbol.asyncIterator]();
    await assert.rejects(iterator.next(), /clock broke/);
    assert.equal(seen.returned, 1);
    assert.deepEqual(
      telemetry.inferences.map((e) => e.outcome),
      ['error'],
    );
  });

  it('closes the upstream answer and reports the error a reader hands in with throw()', async () => {
    const { answer, seen } = upstream(['a', 'b']);
    const { forward, telemetry } = service(answer);
    const got = await forward();
    const iterator = got.chunks[Symbol.asyncIterator]();
    await iterator.next();
    const error = new Error('the reader gave up');
    await assert.rejects(iterator.throw!(error), (err) => err === error);
    assert.equal(seen.returned, 1);
    assert.deepEqual(
      telemetry.inferences.map((e) => e.outcome),
      ['error'],
    );
  });

  it('passes a failure on, reported once with its outcome', async () => {
    const error = new AppError('OLLAMA_TIMEOUT', 'no chunk in time');
    const { answer, seen } = upstream(['a', 'b'], { index: 1, error });
    const { forward, telemetry } = service(answer);
    const got = await forward();
    const iterator = got.chunks[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).done, false);
    await assert.rejects(iterator.next(), (err) => err === error);
    assert.deepEqual(await iterator.next(), { done: true, value: undefined });
    await iterator.return?.();
    assert.equal(seen.returned, 0);
    assert.deepEqual(
      telemetry.inferences.map((e) => e.outcome),
      ['timeout'],
    );
  });
});
