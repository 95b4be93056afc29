import assert from 'node:assert/strict';
import {
  firstAnswer,
  firstFailure,
  firstFound,
  pullEverywhere,
  union,
  type Target,
} from '../../services/ollama/fan-out';
import type { ProgressResponse } from '../../services/ollama/types';
import { AppError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { createRequestContextStore } from '../../src/request-context';

const logger = createLogger({
  level: 'silent',
  format: 'json',
  context: createRequestContextStore(),
});
const missing = () => new AppError('MODEL_NOT_FOUND', 'not here');
const down = () => new AppError('OLLAMA_UNAVAILABLE', 'refused');
const noneError = new Error('no backend');
const none = () => noneError;

/** A backend whose pull yields `lines` statuses, then ends or fails with `end`. */
function puller(id: string, lines: string[], end?: () => Error): Target {
  return {
    id,
    client: {
      pull: async function* (): AsyncGenerator<ProgressResponse> {
        for (const status of lines) yield { status } as ProgressResponse;
        if (end) throw end();
      },
    } as unknown as Target['client'],
  };
}

async function collect(it: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('fan-out over backends (services/ollama/fan-out)', () => {
  it('firstAnswer: the first backend that answers, else the last failure, else `none`', async () => {
    const calls: string[] = [];
    const fn = (b: string) => {
      calls.push(b);
      return b === 'ok' ? Promise.resolve(b) : Promise.reject(new Error(b));
    };
    assert.equal(await firstAnswer(['a', 'ok', 'c'], fn, none), 'ok');
    assert.deepEqual(calls, ['a', 'ok']);
    await assert.rejects(firstAnswer(['a', 'b'], fn, none), /^Error: b$/);
    await assert.rejects(firstAnswer([], fn, none), (err) => err === noneError);
  });

  it('firstFound: asks on past a "not installed here"; when nothing answers, "not installed" comes before other failures', async () => {
    const failing = (errors: Record<string, () => Error>) => (b: string) =>
      Promise.reject(errors[b]!());
    const answering = (b: string) => (b === 'ok' ? Promise.resolve(b) : Promise.reject(missing()));
    assert.equal(await firstFound(['a', 'ok'], answering, none), 'ok');
    await assert.rejects(
      firstFound(['a', 'b'], failing({ a: missing, b: down }), none),
      (err) => err instanceof AppError && err.code === 'MODEL_NOT_FOUND',
    );
    await assert.rejects(
      firstFound(['a', 'b'], failing({ a: down, b: down }), none),
      (err) => err instanceof AppError && err.code === 'OLLAMA_UNAVAILABLE',
    );
  });

  it('firstFailure prefers a real failure to a "not installed here"', () => {
    const results: Array<PromiseSettledResult<unknown>> = [
      { status: 'rejected', reason: missing() },
      { status: 'rejected', reason: down() },
    ];
    assert.equal((firstFailure(results, none) as AppError).code, 'OLLAMA_UNAVAILABLE');
    assert.equal(firstFailure([], none), noneError);
  });

  it('union lists each model once, from the backends that answered', async () => {
    const lists: Record<string, () => Promise<{ models: Array<{ name: string; at: string }> }>> = {
      a: () => Promise.resolve({ models: [{ name: 'llama3.2:3b', at: 'a' }] }),
      b: () => Promise.reject(down()),
      c: () =>
        Promise.resolve({
          models: [
            { name: 'llama3.2:3b', at: 'c' },
            { name: 'qwen3', at: 'c' },
          ],
        }),
    };
    const merged = await union(['a', 'b', 'c'], (b) => lists[b]!(), none);
    assert.deepEqual(merged.models, [
      { name: 'llama3.2:3b', at: 'a' },
      { name: 'qwen3', at: 'c' },
    ]);
    await assert.rejects(
      union(['b'], (b) => lists[b]!(), none),
      (err) => err instanceof AppError && err.code === 'OLLAMA_UNAVAILABLE',
    );
  });

  describe('pullEverywhere', () => {
    it('passes every backend’s progress, labelled with its backend when asked', async () => {
      const lines = await collect(
        pullEverywhere(
          [puller('0', ['pulling', 'success']), puller('1', ['success'])],
          'm',
          undefined,
          {
            label: true,
            logger,
          },
        ),
      );
      assert.deepEqual(
        (lines as Array<{ status: string; backend: string }>)
          .map((l) => `${l.backend}:${l.status}`)
          .sort(),
        ['0:pulling', '0:success', '1:success'],
      );
    });

    it('succeeds when the model exists somewhere and fails when a backend failed otherwise', async () => {
      const somewhere = [puller('0', ['success']), puller('1', [], missing)];
      assert.equal(
        (await collect(pullEverywhere(somewhere, 'm', undefined, { label: false, logger }))).length,
        1,
      );
      const broken = [puller('0', ['success']), puller('1', ['pulling'], down)];
      await assert.rejects(
        collect(pullEverywhere(broken, 'm', undefined, { label: false, logger })),
        (err) => err instanceof AppError && err.code === 'OLLAMA_UNAVAILABLE',
      );
      await assert.rejects(
        collect(
          pullEverywhere([puller('0', [], missing)], 'm', undefined, { label: false, logger }),
        ),
        (err) => err instanceof AppError && err.code === 'MODEL_NOT_FOUND',
      );
    });
  });
});
