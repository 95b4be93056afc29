import assert from 'node:assert/strict';
import { createCircuit, type Circuit } from '../../services/ollama/circuit';

const failure = (): Promise<never> =>
  Promise.reject(Object.assign(new Error('down'), { failure: true }));
const answer = (): Promise<string> => Promise.resolve('ok');

describe('the circuit breaker (services/ollama/circuit)', () => {
  let circuit: Circuit;
  let now = 0;
  afterEach(() => circuit.close());

  const build = (failureThreshold: number): Circuit =>
    createCircuit({
      failureThreshold,
      resetMs: 60_000,
      isFailure: (err) => (err as { failure?: boolean }).failure === true,
      now: () => now,
    });

  it('opens after the threshold of consecutive failures, then refuses at once with Retry-After', async () => {
    circuit = build(2);
    const states: string[] = [];
    circuit.onChange((s) => states.push(s));
    await assert.rejects(circuit.run(failure), /down/);
    assert.equal(circuit.state(), 'closed');
    await assert.rejects(circuit.run(failure), /down/);
    assert.equal(circuit.state(), 'open');
    assert.deepEqual(states, ['open']);
    now = 15_000;
    let ran = false;
    await assert.rejects(
      circuit.run(() => {
        ran = true;
        return answer();
      }),
      (err: { code?: string; retryAfterS?: number; details?: unknown }) =>
        err.code === 'OLLAMA_UNAVAILABLE' &&
        err.retryAfterS === 45 &&
        JSON.stringify(err.details) === '{"circuit":"open"}',
    );
    assert.equal(ran, false, 'no call reaches Ollama while open');
    assert.throws(
      () => circuit.assertAvailable(),
      (err: { code?: string }) => err.code === 'OLLAMA_UNAVAILABLE',
    );
  });

  it('counts only consecutive failures: an answer in between starts over', async () => {
    circuit = build(2);
    await assert.rejects(circuit.run(failure));
    assert.equal(await circuit.run(answer), 'ok');
    await assert.rejects(circuit.run(failure));
    assert.equal(circuit.state(), 'closed');
  });

  it('does not count errors that are answers (a 404, a bad request)', async () => {
    circuit = build(1);
    const notFound = (): Promise<never> => Promise.reject(new Error('model not found'));
    await assert.rejects(circuit.run(notFound), /model not found/);
    await assert.rejects(circuit.run(notFound), /model not found/);
    assert.equal(circuit.state(), 'closed');
    circuit.assertAvailable();
  });
});
