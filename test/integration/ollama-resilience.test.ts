import assert from 'node:assert/strict';
import { createOllamaService, type OllamaClient } from '../../services/ollama/client';
import type { CircuitState } from '../../services/ollama/circuit';
import type { ChatStream } from '../../services/ollama/types';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { appError } from '../support/app-error';
import { createManualClock, type ManualClock } from '../support/manual-clock';
import { OLLAMA_HOST_VARIANTS } from '../support/ollama-hosts';
import {
  startOllamaSimulator,
  type OllamaSimulator,
  type SimGate,
} from '../support/ollama-simulator';
import { createRecordingTelemetry, type RecordingTelemetry } from '../support/recording-telemetry';

const USER = [{ role: 'user', content: 'hi' }];
const MODEL = 'llama3.2:3b';

for (const variant of OLLAMA_HOST_VARIANTS) {
  describe(`ollama resilience (${variant.name})`, () => {
    let sim: OllamaSimulator;
    let svc: OllamaClient;
    let telemetry: RecordingTelemetry;

    const build = (env: Record<string, string>, clock?: ManualClock): OllamaClient => {
      telemetry = createRecordingTelemetry();
      return createOllamaService({
        config: loadConfig({ OLLAMA_HOST: variant.host(sim), OLLAMA_RETRY_BASE_MS: '1', ...env }),
        telemetry,
        logger: createLogger({ level: 'silent', format: 'json' }),
        ...(clock ? { clock } : {}),
      });
    };
    const nextState = (want: CircuitState): Promise<void> =>
      new Promise((resolve) => {
        const off = svc.onCircuitChange((state) => {
          if (state !== want) return;
          off();
          resolve();
        });
      });

    beforeEach(async () => {
      sim = await startOllamaSimulator();
    });
    afterEach(async () => {
      await svc.close();
      await sim.close();
    });

    describe('circuit breaker', () => {
      beforeEach(() => {
        svc = build({
          CIRCUIT_FAILURE_THRESHOLD: '2',
          CIRCUIT_RESET_MS: '100',
          OLLAMA_RETRY_MAX: '0',
        });
      });

      it('opens after consecutive failures and then fails fast without calling Ollama', async () => {
        await sim.stop();
        await assert.rejects(svc.version(), appError('OLLAMA_UNAVAILABLE'));
        assert.equal(svc.circuitState(), 'closed');
        await assert.rejects(svc.version(), appError('OLLAMA_UNAVAILABLE'));
        assert.equal(svc.circuitState(), 'open');
        await sim.start();
        const before = sim.requests.length;
        await assert.rejects(
          svc.chat({ model: MODEL, messages: USER }),
          appError('OLLAMA_UNAVAILABLE', (e) => {
            assert.deepEqual(e.details, { circuit: 'open' });
            assert.ok((e.retryAfterS ?? 0) >= 1);
          }),
        );
        assert.equal(sim.requests.length, before);
        assert.equal(telemetry.inferences.at(-1)?.outcome, 'circuit_open');
      });

      it('goes half-open after CIRCUIT_RESET_MS and closes on a successful trial', async () => {
        await sim.stop();
        const opened = nextState('open');
        await assert.rejects(svc.version());
        await assert.rejects(svc.version());
        await opened;
        await sim.start();
        await nextState('half-open');
        assert.equal(await svc.version(), '0.12.6');
        assert.equal(svc.circuitState(), 'closed');
      });

      it('opens again when the half-open trial fails', async () => {
        await sim.stop();
        await assert.rejects(svc.version());
        await assert.rejects(svc.version());
        await nextState('half-open');
        const reopened = nextState('open');
        await assert.rejects(svc.version(), appError('OLLAMA_UNAVAILABLE'));
        await reopened;
        assert.equal(svc.circuitState(), 'open');
      });

      it("does not count a missing model or a model's own 500 as a failure", async () => {
        await assert.rejects(svc.show('nope'), appError('MODEL_NOT_FOUND'));
        await assert.rejects(svc.show('nope'), appError('MODEL_NOT_FOUND'));
        await svc.preload(MODEL);
        sim.failNext(2, 500);
        const failed = appError('OLLAMA_UPSTREAM_ERROR');
        await assert.rejects(svc.chat({ model: MODEL, messages: USER }), failed);
        await assert.rejects(svc.chat({ model: MODEL, messages: USER }), failed);
        assert.equal(svc.circuitState(), 'closed');
      });

      it('counts an Ollama that stays busy (503) as a failure', async () => {
        await svc.preload(MODEL);
        sim.failNext(2, 503);
        await assert.rejects(svc.chat({ model: MODEL, messages: USER }), appError('OLLAMA_BUSY'));
        await assert.rejects(svc.chat({ model: MODEL, messages: USER }), appError('OLLAMA_BUSY'));
        assert.equal(svc.circuitState(), 'open');
      });
    });

    describe('admission control', () => {
      let streams: ChatStream[];
      let gate: SimGate;
      /** Ends the held stream and opens the gate, so the calls queued behind it can finish. */
      const freeSlot = (): void => {
        streams[0]?.abort();
        gate.release();
      };
      const holdSlots = async (n: number): Promise<void> => {
        for (let i = 0; i < n; i += 1) {
          streams.push(await svc.chatStream({ model: MODEL, messages: USER }));
        }
      };
      beforeEach(() => {
        streams = [];
        // Every generation (a non-streamed one too) stops after its first chunk, keeping its slot.
        gate = sim.hold();
      });
      afterEach(() => {
        for (const s of streams) s.abort();
      });

      it('queues FIFO beyond OLLAMA_MAX_CONCURRENCY and answers QUEUE_FULL beyond QUEUE_MAX', async () => {
        svc = build({ OLLAMA_MAX_CONCURRENCY: '1', QUEUE_MAX: '2' });
        await holdSlots(1);
        const order: number[] = [];
        const first = svc.chat({ model: MODEL, messages: USER }).then(() => order.push(1));
        const second = svc.chat({ model: MODEL, messages: USER }).then(() => order.push(2));
        // One snapshot: oldestWaitMs moves with the real clock between two reads.
        const stats = svc.queueStats();
        assert.ok((stats.oldestWaitMs ?? -1) >= 0);
        assert.deepEqual(stats, {
          inFlight: 1,
          queued: 2,
          maxConcurrency: 1,
          maxQueue: 2,
          oldestWaitMs: stats.oldestWaitMs,
        });
        await assert.rejects(
          svc.chat({ model: MODEL, messages: USER }),
          appError('QUEUE_FULL', (e) => {
            assert.equal(e.status, 429);
            assert.ok((e.retryAfterS ?? 0) >= 1);
          }),
        );
        assert.equal(telemetry.inferences.at(-1)?.outcome, 'queue_full');
        freeSlot();
        await Promise.all([first, second]);
        assert.deepEqual(order, [1, 2]);
        assert.equal(svc.queueStats().inFlight, 0);
      });

      it('answers QUEUE_TIMEOUT (503) after QUEUE_TIMEOUT_MS', async () => {
        svc = build({ OLLAMA_MAX_CONCURRENCY: '1', QUEUE_TIMEOUT_MS: '100' });
        await holdSlots(1);
        await assert.rejects(
          svc.chat({ model: MODEL, messages: USER }),
          appError('QUEUE_TIMEOUT', (e) => {
            assert.equal(e.status, 503);
            assert.ok((e.retryAfterS ?? 0) >= 1);
          }),
        );
        assert.equal(svc.queueStats().queued, 0);
        const event = telemetry.inferences.at(-1);
        assert.equal(event?.outcome, 'queue_timeout');
      });

      it('drops a waiter whose caller went away', async () => {
        svc = build({ OLLAMA_MAX_CONCURRENCY: '1' });
        await holdSlots(1);
        const controller = new AbortController();
        const waiting = svc.chat({ model: MODEL, messages: USER }, { signal: controller.signal });
        assert.equal(svc.queueStats().queued, 1);
        controller.abort();
        await assert.rejects(waiting, (err: unknown) => (err as Error).name === 'AbortError');
        assert.equal(svc.queueStats().queued, 0);
        assert.equal(telemetry.inferences.at(-1)?.outcome, 'cancelled');
      });

      it('reports the time a call waited in the queue', async () => {
        const clock = createManualClock();
        svc = build({ OLLAMA_MAX_CONCURRENCY: '1' }, clock);
        await holdSlots(1);
        const waiting = svc.chat({ model: MODEL, messages: USER });
        assert.equal(svc.queueStats().queued, 1);
        clock.advance(1234);
        freeSlot();
        const { timings } = await waiting;
        assert.equal(timings.queueMs, 1234);
        assert.equal(telemetry.inferences.at(-1)?.queueWaitS, 1.234);
      });
    });
  });
}
