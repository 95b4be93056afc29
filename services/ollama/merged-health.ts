/**
 * Several backends seen as one Ollama by the probes: their health snapshots merged, and the
 * circuit the probes read.
 */
import { modelKey } from '../../src/model-name';
import type { CircuitState } from './circuit';
import type { OllamaHealthSnapshot } from './types';

const CIRCUIT_ORDER: readonly CircuitState[] = ['closed', 'half-open', 'open'];

/** The best of the circuits (closed before half-open before open); open when there are none. */
export function bestCircuit(states: readonly CircuitState[]): CircuitState {
  return CIRCUIT_ORDER.find((s) => states.includes(s)) ?? 'open';
}

/**
 * One snapshot for several backends: up when one is up; the latest check and error; the
 * fastest latency of those up; every model loaded or installed anywhere, once per name; the
 * active model installed when one backend up has it. One backend: its own snapshot, the same
 * object while it is unchanged.
 */
export function mergeSnapshots(snaps: readonly OllamaHealthSnapshot[]): OllamaHealthSnapshot {
  if (snaps.length === 1) return snaps[0]!;
  const up = snaps.filter((s) => s.status === 'up');
  const status =
    up.length > 0 ? 'up' : snaps.some((s) => s.status === 'unknown') ? 'unknown' : 'down';
  const checked = snaps.flatMap((s) => (s.checkedAt === null ? [] : [s.checkedAt]));
  const latencies = up.flatMap((s) => (s.latencyMs === null ? [] : [s.latencyMs]));
  const loaded = new Map<string, OllamaHealthSnapshot['loadedModels'][number]>();
  for (const s of snaps)
    for (const m of s.loadedModels)
      if (!loaded.has(modelKey(m.name))) loaded.set(modelKey(m.name), m);
  const lists = snaps.flatMap((s) => (s.installedModels === null ? [] : [s.installedModels]));
  const installed = new Map<string, string>();
  for (const names of lists)
    for (const n of names) if (!installed.has(modelKey(n))) installed.set(modelKey(n), n);
  const facts = (up.length > 0 ? up : snaps).map((s) => s.activeModelInstalled);
  const errors = snaps.flatMap((s) => (s.lastError ? [s.lastError] : []));
  return {
    status,
    checkedAt: checked.length > 0 ? Math.max(...checked) : null,
    latencyMs: latencies.length > 0 ? Math.min(...latencies) : null,
    version: up[0]?.version ?? snaps[0]?.version ?? null,
    loadedModels: [...loaded.values()],
    loadedModelsStale: (up.length > 0 ? up : snaps).some((s) => s.loadedModelsStale),
    installedModels: lists.length > 0 ? [...installed.values()] : null,
    activeModelInstalled: facts.includes(true) ? true : facts.includes(false) ? false : null,
    lastError: errors.reduce<OllamaHealthSnapshot['lastError']>(
      (a, e) => (a === null || e.at > a.at ? e : a),
      null,
    ),
  };
}
