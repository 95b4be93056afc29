/**
 * Which models each backend holds in memory, as far as this replica knows, for routing: the
 * backend's last `/api/ps`, the loads under way there, and what the gateway sent there since
 * (a load in progress is not listed by `/api/ps`, ollama-api.md §1.5). Sending a model where it
 * is not held may evict what is: those models, when another backend holds them too, are
 * routed elsewhere from then on, so two models never take turns reloading on one backend while
 * one of them has another home.
 */
import type { Clock } from '../../src/clock';
import { modelKey } from '../../src/model-name';
import type { OllamaClient } from './client';
import type { OllamaHealth } from './types';

/** What placement keeps on each backend. */
export interface PlacedBackend {
  id: string;
  health: Pick<OllamaHealth, 'snapshot'>;
  client: Pick<OllamaClient, 'loading'>;
  /**
   * What the gateway last sent here, by model key: when, and how many of those generations
   * still run. A model sent here is taken as loaded until a later `/api/ps` says otherwise.
   */
  sent: Map<string, { at: number; running: number }>;
  /** Models (keys) the gateway made this backend evict, each also held elsewhere, and when. */
  leaving: Map<string, number>;
}

export interface Placement {
  /**
   * The model keys `b` holds. A model sent before a fresh `/api/ps` that does not list it was
   * evicted, and is forgotten; so is one sent longer than the keep-alive ago.
   */
  held(b: PlacedBackend): Set<string>;
  /** How many backends hold each model key, from each backend's `held` (default: every serving one). */
  holderCounts(held?: Iterable<ReadonlySet<string>>): Map<string, number>;
  /**
   * Records a generation of `model` sent to `b`, which holds `held`. The returned function
   * records its end; when it failed before its first byte (`reached` false), a model that was
   * new there is taken back as not loaded, and what it displaced as still there. A model new
   * there counts as a load (`onLoad`) when `countLoad`.
   */
  sending(
    b: PlacedBackend,
    held: ReadonlySet<string>,
    model: string | undefined,
    countLoad: boolean,
  ): (reached: boolean) => void;
}

export interface PlacementDeps {
  clock: Pick<Clock, 'now'>;
  /** OLLAMA_KEEP_ALIVE in ms: how long a model sent and not listed since is taken as held. */
  keepAliveMs: number;
  /** OLLAMA_HEALTH_TIMEOUT_MS: an `/api/ps` answer may describe the backend this long before its check. */
  healthTimeoutMs: number;
  serving: () => readonly PlacedBackend[];
  onLoad: (b: PlacedBackend) => void;
}

export function createPlacement(deps: PlacementDeps): Placement {
  const { clock, keepAliveMs } = deps;

  function held(b: PlacedBackend): Set<string> {
    const snap = b.health.snapshot();
    const listed = new Set(snap.loadedModels.map((m) => modelKey(m.name)));
    const keys = new Set(listed);
    for (const m of b.client.loading()) keys.add(modelKey(m));
    const now = clock.now();
    const answeredAfter =
      snap.checkedAt !== null && !snap.loadedModelsStale
        ? snap.checkedAt - deps.healthTimeoutMs
        : -Infinity;
    for (const [key, entry] of b.sent) {
      if (entry.running > 0 || keys.has(key)) {
        keys.add(key);
      } else if (entry.at < answeredAfter || now - entry.at > keepAliveMs) {
        b.sent.delete(key);
      } else {
        keys.add(key);
      }
    }
    for (const [key, at] of b.leaving) {
      // Still listed by an /api/ps asked after the eviction was expected: it had room after all.
      if (now - at > keepAliveMs || (at < answeredAfter && listed.has(key))) b.leaving.delete(key);
      else keys.delete(key);
    }
    return keys;
  }

  function holderCounts(
    heldBy: Iterable<ReadonlySet<string>> = deps.serving().map(held),
  ): Map<string, number> {
    const counts = new Map<string, number>();
    for (const keys of heldBy) for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
    return counts;
  }

  /**
   * `model` goes to `b`, which does not hold it: it will load there, and may evict what `b`
   * holds. The models it holds that another backend holds too are routed elsewhere from now on.
   */
  function displacing(b: PlacedBackend, model: string): string[] {
    const holders = holderCounts();
    const now = clock.now();
    const displaced: string[] = [];
    for (const key of held(b)) {
      if (key !== modelKey(model) && (holders.get(key) ?? 0) > 1 && !b.leaving.has(key)) {
        b.leaving.set(key, now);
        displaced.push(key);
      }
    }
    return displaced;
  }

  return {
    held,
    holderCounts,
    sending(b, heldThere, model, countLoad) {
      if (model === undefined) return () => undefined;
      const key = modelKey(model);
      const fresh = !heldThere.has(key);
      if (fresh && countLoad) deps.onLoad(b);
      const displaced = fresh ? displacing(b, model) : [];
      b.leaving.delete(key);
      const entry = b.sent.get(key) ?? { at: 0, running: 0 };
      entry.at = clock.now();
      entry.running += 1;
      b.sent.set(key, entry);
      return (reached) => {
        entry.running -= 1;
        entry.at = clock.now();
        if (reached || !fresh) return;
        if (entry.running === 0) b.sent.delete(key);
        for (const k of displaced) b.leaving.delete(k);
      };
    },
  };
}
