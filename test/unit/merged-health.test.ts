import assert from 'node:assert/strict';
import { bestCircuit, mergeSnapshots } from '../../services/ollama/merged-health';
import type { OllamaHealthSnapshot } from '../../services/ollama/types';

const loaded = (name: string) => ({ name, sizeBytes: 1, vramBytes: 1, expiresAt: '' });

function snapshot(overrides: Partial<OllamaHealthSnapshot>): OllamaHealthSnapshot {
  return {
    status: 'up',
    checkedAt: 1000,
    latencyMs: 5,
    version: '0.12.0',
    loadedModels: [],
    loadedModelsStale: false,
    installedModels: [],
    activeModelInstalled: true,
    lastError: null,
    ...overrides,
  };
}

describe('merged backend health (services/ollama/merged-health)', () => {
  it('gives one backend’s snapshot as it is', () => {
    const only = snapshot({});
    assert.equal(mergeSnapshots([only]), only);
  });

  it('merges several: up when one is up, its facts before those of backends down', () => {
    const merged = mergeSnapshots([
      snapshot({
        status: 'down',
        checkedAt: 3000,
        latencyMs: null,
        version: null,
        installedModels: null,
        activeModelInstalled: false,
        loadedModelsStale: true,
        lastError: { code: 'OLLAMA_UNAVAILABLE', message: 'refused', at: 2900 },
      }),
      snapshot({
        latencyMs: 9,
        version: '0.12.1',
        loadedModels: [loaded('llama3.2:3b')],
        installedModels: ['llama3.2:3b', 'qwen3:8b'],
      }),
      snapshot({
        checkedAt: 2000,
        latencyMs: 4,
        loadedModels: [loaded('llama3.2:3b'), loaded('qwen3:8b')],
        installedModels: ['qwen3:8b', 'gemma3:4b'],
        activeModelInstalled: false,
        lastError: { code: 'OLLAMA_TIMEOUT', message: 'slow', at: 1500 },
      }),
    ]);
    assert.deepEqual(merged, {
      status: 'up',
      checkedAt: 3000,
      latencyMs: 4,
      version: '0.12.1',
      loadedModels: [loaded('llama3.2:3b'), loaded('qwen3:8b')],
      loadedModelsStale: false,
      installedModels: ['llama3.2:3b', 'qwen3:8b', 'gemma3:4b'],
      activeModelInstalled: true,
      lastError: { code: 'OLLAMA_UNAVAILABLE', message: 'refused', at: 2900 },
    });
  });

  it('is unknown while a backend has not been checked and none is up, down when all are down', () => {
    const down = snapshot({ status: 'down' });
    assert.equal(
      mergeSnapshots([down, snapshot({ status: 'unknown', checkedAt: null })]).status,
      'unknown',
    );
    assert.equal(mergeSnapshots([down, down]).status, 'down');
    assert.equal(mergeSnapshots([]).status, 'down');
  });

  it('reads the best circuit, and open when there is none', () => {
    assert.equal(bestCircuit(['open', 'half-open']), 'half-open');
    assert.equal(bestCircuit(['open', 'closed', 'half-open']), 'closed');
    assert.equal(bestCircuit([]), 'open');
  });
});
