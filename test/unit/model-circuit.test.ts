import assert from 'node:assert/strict';
import { errorFromStatus, timeoutError } from '../../services/ollama/errors';
import { createModelCircuits } from '../../services/ollama/model-circuit';
import { appError } from '../support/app-error';

describe('model circuits', () => {
  let time = 0;
  const now = (): number => time;
  const modelFailure = () =>
    errorFromStatus(500, '{"error":"llama-server process has terminated"}', null, true);
  const build = () => createModelCircuits({ threshold: 3, cooldownMs: 30_000, now });

  beforeEach(() => {
    time = 0;
  });

  describe('when one model fails on its own', () => {
    it('pauses that model after the threshold, with MODEL_FAILING and Retry-After', () => {
      const circuits = build();
      for (let i = 0; i < 3; i += 1) circuits.record('qwen3:8b', modelFailure());
      assert.throws(
        () => circuits.assertAvailable('Qwen3:8B'),
        appError('MODEL_FAILING', (e) => assert.equal(e.retryAfterS, 30)),
      );
      assert.doesNotThrow(() => circuits.assertAvailable('llama3.2:3b'));
      assert.deepEqual(circuits.failing(), ['qwen3:8b']);
    });

    it('lets one trial through after the cooldown; its success closes the breaker', () => {
      const circuits = build();
      for (let i = 0; i < 3; i += 1) circuits.record('qwen3:8b', modelFailure());
      time = 30_000;
      circuits.assertAvailable('qwen3:8b');
      assert.throws(() => circuits.assertAvailable('qwen3:8b'), appError('MODEL_FAILING'));
      circuits.record('qwen3:8b');
      assert.doesNotThrow(() => circuits.assertAvailable('qwen3:8b'));
      assert.deepEqual(circuits.failing(), []);
    });

    it('reopens when the trial fails', () => {
      const circuits = build();
      for (let i = 0; i < 3; i += 1) circuits.record('qwen3:8b', modelFailure());
      time = 30_000;
      circuits.assertAvailable('qwen3:8b');
      circuits.record('qwen3:8b', modelFailure());
      assert.throws(() => circuits.assertAvailable('qwen3:8b'), appError('MODEL_FAILING'));
    });
  });

  describe('when the failures are not the model’s', () => {
    it('counts neither timeouts, 400s nor 404s', () => {
      const circuits = build();
      for (let i = 0; i < 5; i += 1) {
        circuits.record('qwen3:8b', timeoutError('first_byte', 100));
        circuits.record('qwen3:8b', errorFromStatus(400, '{"error":"bad"}', null, true));
        circuits.record('qwen3:8b', errorFromStatus(404, '{"error":"not found"}', null, true));
      }
      assert.doesNotThrow(() => circuits.assertAvailable('qwen3:8b'));
    });

    it('keeps at most maxModels entries', () => {
      const circuits = createModelCircuits({ threshold: 1, cooldownMs: 30_000, now, maxModels: 2 });
      for (const m of ['a:1', 'b:1', 'c:1']) circuits.record(m, modelFailure());
      assert.equal(circuits.failing().length, 2);
    });
  });
});
