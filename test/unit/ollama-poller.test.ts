import assert from 'node:assert/strict';
import type { ListResponse } from 'ollama';
import { createOllamaHealth } from '../../services/health/ollama-poller';
import type { OllamaService } from '../../services/ollama/types';
import { AppError } from '../../src/errors';
import { createCaptureLogger } from '../support/capture-logger';
import { createManualClock } from '../support/manual-clock';
import { createRecordingTelemetry } from '../support/recording-telemetry';

type Probe = Pick<OllamaService, 'version' | 'ps' | 'list'>;

const listOf = (...names: string[]) =>
  ({
    models: names.map((name) => ({
      name,
      size: 100,
      size_vram: 50,
      expires_at: '2026-01-01T00:05:00Z',
    })),
  }) as unknown as ListResponse;

/** An Ollama whose answers the test sets, counting version calls. */
function fakeOllama() {
  const state = { up: true, versionCalls: 0, gate: null as Promise<void> | null };
  const ollama: Probe = {
    async version() {
      state.versionCalls += 1;
      if (state.gate) await state.gate;
      if (!state.up) throw new AppError('OLLAMA_UNAVAILABLE', 'Ollama is not reachable.');
      return '0.33.0';
    },
    ps: async () => listOf('llama3.2:3b'),
    list: async () => listOf('llama3.2:3b', 'qwen3:0.6b'),
  };
  return { ollama, state };
}

describe('the Ollama health poller (services/health/ollama-poller)', () => {
  const build = (ollama: Probe) => {
    const clock = createManualClock();
    const telemetry = createRecordingTelemetry();
    const health = createOllamaHealth({
      ollama,
      activeModel: () => 'llama3.2',
      ttlMs: 30_000,
      timeoutMs: 2000,
      psTimeoutMs: 10_000,
      telemetry,
      logger: createCaptureLogger().logger,
      clock,
    });
    return { health, clock, telemetry };
  };

  it('is unknown before the first check, then up with the version, the models and the active one', async () => {
    const { ollama } = fakeOllama();
    const { health, telemetry } = build(ollama);
    assert.equal(health.snapshot().status, 'unknown');
    const snap = await health.refresh();
    assert.equal(snap.status, 'up');
    assert.equal(snap.version, '0.33.0');
    assert.deepEqual(snap.installedModels, ['llama3.2:3b', 'qwen3:0.6b']);
    assert.equal(snap.loadedModels[0]?.name, 'llama3.2:3b');
    assert.equal(snap.activeModelInstalled, false, 'llama3.2 is llama3.2:latest, not :3b');
    assert.equal(telemetry.healthChecks.length, 1);
  });

  it('reports down with the error code when Ollama does not answer', async () => {
    const { ollama, state } = fakeOllama();
    state.up = false;
    const { health } = build(ollama);
    const snap = await health.refresh();
    assert.equal(snap.status, 'down');
    assert.equal(snap.lastError?.code, 'OLLAMA_UNAVAILABLE');
  });

  it('shares one check among concurrent refreshes', async () => {
    const { ollama, state } = fakeOllama();
    let open!: () => void;
    state.gate = new Promise((resolve) => (open = resolve));
    const { health } = build(ollama);
    const both = Promise.all([health.refresh(), health.refresh()]);
    open();
    await both;
    assert.equal(state.versionCalls, 1);
  });

  it('re-arms its timer only after a check finished, until stopped', async () => {
    const { ollama, state } = fakeOllama();
    const { health, clock } = build(ollama);
    health.start();
    assert.deepEqual(clock.pending(), [], 'the first check is still running');
    while (clock.pending().length === 0) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(clock.pending(), [30_000]);
    clock.fireNext();
    assert.equal(state.versionCalls, 2);
    while (clock.pending().length === 0) await new Promise((resolve) => setImmediate(resolve));
    health.stop();
    assert.deepEqual(clock.pending(), []);
  });
});
