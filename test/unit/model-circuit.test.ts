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
      assert.equal(circuits.assertAvailable('llama3.2:3b'), false, 'not paused: no trial');
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

    it('lets no second trial through while the first runs, whatever other calls report', () => {
      const circuits = build();
      for (let i = 0; i < 3; i += 1) circuits.record('qwen3:8b', modelFailure());
      time = 30_000;
      assert.equal(circuits.assertAvailable('qwen3:8b'), true, 'the first call is the trial');
      let refused: unknown;
      try {
        circuits.assertAvailable('qwen3:8b');
      } catch (err) {
        refused = err;
      }
      // The refused call and a call admitted before the pause both end with other errors.
      circuits.record('qwen3:8b', refused);
      circuits.record('qwen3:8b', timeoutError('first_byte', 100));
      assert.throws(() => circuits.assertAvailable('qwen3:8b'), appError('MODEL_FAILING'));
    });

    it('hands the trial on when the trial ends without a word about the model', () => {
      const circuits = build();
      for (let i = 0; i < 3; i += 1) circuits.record('qwen3:8b', modelFailure());
      time = 30_000;
      assert.equal(circuits.assertAvailable('qwen3:8b'), true);
      circuits.releaseTrial('qwen3:8b'); // its caller left
      assert.equal(circuits.assertAvailable('qwen3:8b'), true, 'the next call is the trial');
      circuits.record('qwen3:8b', timeoutError('first_byte', 100), true);
      assert.equal(circuits.assertAvailable('qwen3:8b'), true, 'and the one after a timeout');
      assert.throws(() => circuits.assertAvailable('qwen3:8b'), appError('MODEL_FAILING'));
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
