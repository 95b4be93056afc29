import assert from 'node:assert/strict';
import type { SwitchProgress } from '../../services/models/model-service';
import { appError } from '../support/app-error';
import { buildTestApp, type TestApp } from '../support/build-app';
import { OLLAMA_HOST_VARIANTS } from '../support/ollama-hosts';
import { startOllamaSimulator, type OllamaSimulator } from '../support/ollama-simulator';
import { createRecordingTelemetry, type RecordingTelemetry } from '../support/recording-telemetry';

for (const variant of OLLAMA_HOST_VARIANTS) {
  describe(`ollama health and models (${variant.name})`, () => {
    let sim: OllamaSimulator;
    let t: TestApp;
    let telemetry: RecordingTelemetry;
    let clock: number;

    const build = async (env: Record<string, string> = {}): Promise<TestApp> => {
      telemetry = createRecordingTelemetry();
      return buildTestApp({
        simulator: sim,
        env: { OLLAMA_HOST: variant.host(sim), OLLAMA_RETRY_BASE_MS: '1', ...env },
        telemetry,
        now: () => clock,
      });
    };

    beforeEach(async () => {
      clock = Date.parse('2026-01-05T10:00:00Z');
      sim = await startOllamaSimulator();
      t = await build();
    });
    afterEach(async () => {
      await t.close();
      await sim.close();
    });

    describe('health cache', () => {
      it('is unknown before the first check, then up with version, latency and models', async () => {
        assert.equal(t.ollamaHealth.snapshot().status, 'unknown');
        await t.ollama.preload('llama3.2:3b');
        const s = await t.ollamaHealth.refresh();
        assert.equal(s.status, 'up');
        assert.equal(s.version, '0.12.6');
        assert.equal(s.checkedAt, clock);
        assert.equal(s.latencyMs, 0);
        assert.equal(s.activeModelInstalled, true);
        assert.deepEqual(
          s.loadedModels.map((m) => m.name),
          ['llama3.2:3b'],
        );
        assert.ok(s.installedModels?.includes('qwen3:8b'));
        assert.deepEqual(telemetry.healthChecks, [{ up: true, durationS: 0 }]);
        assert.equal(t.ollamaHealth.snapshot(), s);
      });

      it('shares one in-flight check between concurrent refreshes', async () => {
        const [a, b] = await Promise.all([t.ollamaHealth.refresh(), t.ollamaHealth.refresh()]);
        assert.equal(a, b);
        assert.equal(sim.requests.filter((r) => r.path === '/api/version').length, 1);
      });

      it('reports down with the last error when Ollama is stopped, and keeps that error', async () => {
        await sim.stop();
        const down = await t.ollamaHealth.refresh();
        assert.equal(down.status, 'down');
        assert.equal(down.lastError?.code, 'OLLAMA_UNAVAILABLE');
        await sim.start();
        clock += 1000;
        const up = await t.ollamaHealth.refresh();
        assert.equal(up.status, 'up');
        assert.equal(up.lastError?.at, clock - 1000);
      });

      it('reports a hung Ollama as down after OLLAMA_HEALTH_TIMEOUT_MS', async () => {
        await t.close();
        t = await build({ OLLAMA_HEALTH_TIMEOUT_MS: '100' });
        sim.hang(true);
        const checked = t.ollamaHealth.refresh();
        await sim.waitFor('request');
        t.clock.advance(100); // the deadline runs on the service's clock
        const s = await checked;
        assert.equal(s.status, 'down');
        assert.equal(s.lastError?.code, 'OLLAMA_TIMEOUT');
      });

      it('says when the active model is not installed', async () => {
        await t.close();
        t = await build({ OLLAMA_MODEL: 'missing:1b' });
        const s = await t.ollamaHealth.refresh();
        assert.equal(s.status, 'up');
        assert.equal(s.activeModelInstalled, false);
      });

      it('refreshes on its timer, re-armed only after a check finished, until stopped', async () => {
        const ttl = t.config.OLLAMA_HEALTH_TTL_MS;
        t.ollamaHealth.start();
        assert.ok(!t.clock.pending().includes(ttl)); // the first check is still running
        await sim.waitFor('request', (e) => e.path === '/api/tags');
        while (!t.clock.pending().includes(ttl)) {
          await new Promise((resolve) => setImmediate(resolve));
        }
        const checks = telemetry.healthChecks.length;
        t.clock.advance(ttl);
        while (telemetry.healthChecks.length === checks) {
          await new Promise((resolve) => setImmediate(resolve));
        }
        t.ollamaHealth.stop();
        assert.equal(t.clock.pending().length, 0);
      });
    });

    describe('model switch', () => {
      it('pulls when asked, preloads, flips and unloads the previous model', async () => {
        await t.ollama.preload('llama3.2:3b');
        const progress: SwitchProgress[] = [];
        const result = await t.models.switchModel(
          { model: 'smollm2:135m', pull: true, keep_alive: '10m' },
          { onProgress: (p) => progress.push(p) },
        );
        assert.equal(result.previous, 'llama3.2:3b');
        assert.equal(result.active, 'smollm2:135m');
        assert.equal(result.pulled, true);
        assert.equal(t.models.active(), 'smollm2:135m');
        assert.deepEqual(
          sim.loaded().map((m) => [m.name, m.keepAliveMs]),
          [['smollm2:135m', 600_000]],
        );
        assert.ok(progress.some((p) => p.phase === 'pull' && p.status === 'success'));
        assert.deepEqual(
          progress.filter((p) => p.phase === 'load').map((p) => p.status),
          ['loading', 'loaded'],
        );
        const [record] = t.models.recentSwitches();
        assert.equal(record?.from, 'llama3.2:3b');
        assert.equal(record?.to, 'smollm2:135m');
        assert.equal(record?.outcome, 'success');
        assert.deepEqual(telemetry.modelSwitches, [{ outcome: 'success', durationS: 0 }]);
      });

      it('keeps the previous model loaded with unload_previous false', async () => {
        await t.ollama.preload('llama3.2:3b');
        await t.models.switchModel({ model: 'qwen3:8b', unload_previous: false });
        assert.deepEqual(
          sim
            .loaded()
            .map((m) => m.name)
            .sort(),
          ['llama3.2:3b', 'qwen3:8b'],
        );
      });

      it('refuses an unknown model with 404 unless pull is true', async () => {
        await assert.rejects(
          t.models.switchModel({ model: 'smollm2:135m' }),
          appError('MODEL_NOT_FOUND'),
        );
        assert.equal(t.models.active(), 'llama3.2:3b');
        assert.equal(t.models.recentSwitches()[0]?.outcome, 'error');
      });

      it('keeps the previous model active when the preload fails', async () => {
        sim.failNext(1, 500, 'llama runner process has terminated');
        await assert.rejects(
          t.models.switchModel({ model: 'qwen3:8b' }),
          appError('OLLAMA_UPSTREAM_ERROR'),
        );
        assert.equal(t.models.active(), 'llama3.2:3b');
        const [record] = t.models.recentSwitches();
        assert.equal(record?.outcome, 'error');
        assert.equal(record?.error, 'OLLAMA_UPSTREAM_ERROR');
      });

      it('runs one switch at a time: a concurrent one gets SWITCH_IN_PROGRESS', async () => {
        sim.setLoadDelay(50);
        const first = t.models.switchModel({ model: 'qwen3:8b' });
        await assert.rejects(
          t.models.switchModel({ model: 'llama3.2:3b' }),
          appError('SWITCH_IN_PROGRESS', (e) => assert.equal(e.status, 409)),
        );
        assert.equal(t.models.switching(), 'qwen3:8b');
        await first;
        assert.equal(t.models.active(), 'qwen3:8b');
        assert.equal(t.models.switching(), null);
        assert.deepEqual(
          telemetry.modelSwitches.map((e) => e.outcome),
          ['conflict', 'success'],
        );
      });

      it('refuses to delete the active model', async () => {
        await assert.rejects(t.models.remove('llama3.2:3b'), appError('MODEL_IN_USE'));
        await assert.rejects(t.models.remove('Llama3.2:3B'), appError('MODEL_IN_USE'));
        await t.models.remove('qwen3:8b');
        await assert.rejects(t.ollama.show('qwen3:8b'), appError('MODEL_NOT_FOUND'));
      });
    });

    describe('model catalog', () => {
      it('lists installed models with active and loaded flags, from a short cache', async () => {
        await t.ollama.preload('qwen3:8b');
        const list = await t.models.catalog.list();
        const qwen = list.find((m) => m.name === 'qwen3:8b');
        assert.equal(qwen?.loaded, true);
        assert.equal(qwen?.active, false);
        assert.equal(list.find((m) => m.name === 'llama3.2:3b')?.active, true);
        const tagsCalls = () => sim.requests.filter((r) => r.path === '/api/tags').length;
        await t.models.catalog.list();
        assert.equal(tagsCalls(), 1);
        clock += t.config.MODELS_CACHE_TTL_MS;
        await t.models.catalog.list();
        assert.equal(tagsCalls(), 2);
      });

      it('gives model facts with the context length and capabilities', async () => {
        const info = await t.models.catalog.info('qwen3:8b');
        assert.equal(info.context_length, 40960);
        assert.deepEqual(info.capabilities, ['completion', 'tools', 'thinking']);
        assert.equal(info.loaded, false);
        await t.models.catalog.info('qwen3:8b');
        assert.equal(sim.requests.filter((r) => r.path === '/api/show').length, 1);
      });
    });
  });
}
