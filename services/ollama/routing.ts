/**
 * The choice of an Ollama backend for one generation, as a pure function of what the gateway
 * knows about each backend (cached health, its own load table, its admission counts). Loading a
 * model costs seconds to minutes and may evict another one, so the rules put "where is it
 * loaded" before "who is least busy".
 */

/** Why a backend was chosen: the rule that left it alone, or a retry after a failure. */
export type RouteReason = 'loaded' | 'installed' | 'least_loaded' | 'affinity' | 'failover';

/** One backend as the router sees it. */
export interface RouteCandidate {
  id: string;
  status: 'up' | 'down' | 'unknown';
  circuit: 'closed' | 'half-open' | 'open';
  /** Has the model installed: from the cached `/api/tags`, null when unknown. */
  installed: boolean | null;
  /** Has the model loaded (cached `/api/ps`, or loaded or used by the gateway since). */
  loaded: boolean;
  /** How many models it holds now (same sources): 0 means it has room without evicting. */
  loadedCount: number;
  /** Every model it holds is held by another backend too: evicting here loses no model's only copy. */
  redundant?: boolean;
  /** Generations routed there and not finished (in flight plus waiting). */
  load: number;
  /** Generations it runs at once (its admission limit). */
  capacity: number;
}

export interface RouteChoice {
  id: string;
  reason: RouteReason;
}

/** FNV-1a, 32 bits: a cheap, stable hash for rendezvous hashing (not for security). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The rendezvous score of backend `id` for `key`: the same in every replica. */
export function affinityScore(key: string, id: string): number {
  return fnv1a(`${key}\u0000${id}`);
}

/**
 * The candidate `key` hashes to (rendezvous hashing: the highest hash of key and id wins, so
 * a backend coming or going moves only the keys that hashed to it).
 */
export function byAffinity<T extends { id: string }>(set: readonly T[], key: string): T {
  let best = set[0]!;
  let bestScore = -1;
  for (const c of set) {
    const score = affinityScore(key, c.id);
    if (score > bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

/**
 * Picks the backend of a generation, or undefined when none may take it:
 * 1. only backends not known to be down and whose circuit is not open (closed ones first);
 * 2. of those, the ones with the model installed (all of them when none is known to have it,
 *    so Ollama answers the 404 itself);
 * 3. the run's earlier backend (`sticky`) while it is among them;
 * 4. the ones with the model loaded — unless every one of them is saturated and another has
 *    nothing loaded (room without evicting anything); without a loaded one, those holding the
 *    fewest models, so no backend evicts a model while another has room, and of those the
 *    ones whose models all have a copy elsewhere;
 * 5. the least loaded; 6. ties by the hash of `affinity`.
 */
export function chooseBackend(
  candidates: readonly RouteCandidate[],
  opts: { affinity: string; sticky?: string },
): RouteChoice | undefined {
  const usable = candidates.filter((c) => c.status !== 'down' && c.circuit !== 'open');
  if (usable.length === 0) return undefined;
  const closed = usable.filter((c) => c.circuit === 'closed');
  const healthy = closed.length > 0 ? closed : usable;
  const known = healthy.filter((c) => c.installed === true);
  const maybe = healthy.filter((c) => c.installed === null);
  let set = known.length > 0 ? known : maybe.length > 0 ? maybe : healthy;
  if (opts.sticky !== undefined) {
    const kept = set.find((c) => c.id === opts.sticky);
    if (kept) return { id: kept.id, reason: 'affinity' };
  }
  if (set.length === 1) return { id: set[0]!.id, reason: 'installed' };

  const loaded = set.filter((c) => c.loaded);
  if (loaded.length > 0) {
    const saturated = loaded.every((c) => c.load >= c.capacity);
    const empty = set.filter((c) => !c.loaded && c.loadedCount === 0);
    if (saturated && empty.length > 0) {
      set = empty;
      if (set.length === 1) return { id: set[0]!.id, reason: 'installed' };
    } else {
      set = loaded;
      if (set.length === 1) return { id: set[0]!.id, reason: 'loaded' };
    }
  } else {
    const fewest = Math.min(...set.map((c) => c.loadedCount));
    set = set.filter((c) => c.loadedCount === fewest);
    // Something will be evicted: rather a second copy than some model's only one.
    const spare = set.filter((c) => c.redundant === true);
    if (fewest > 0 && spare.length > 0) set = spare;
    if (set.length === 1) return { id: set[0]!.id, reason: 'installed' };
  }

  const least = Math.min(...set.map((c) => c.load));
  set = set.filter((c) => c.load === least);
  if (set.length === 1) return { id: set[0]!.id, reason: 'least_loaded' };
  return { id: byAffinity(set, opts.affinity).id, reason: 'affinity' };
}
