import { modelKey } from '../../src/model-name';

/**
 * Label values come from bounded sets only, so no caller input can grow the number of series:
 * a model is one Ollama lists (else `other`), an agent or tool is a registered name (else
 * `other`), enums are checked against their known values.
 */

/** The one label value for anything outside a bounded set. */
export const OTHER = 'other';

/** The name as Ollama compares it (defaults filled in, case folded): see src/model-name. */
export const canonicalModelName = modelKey;

/**
 * Maps a requested model name to the name Ollama lists (`llama3.2` → `llama3.2:latest`), or
 * `other`. `known` returns the cached installed-model names; the lookup set is rebuilt only
 * when that list changes (a new array), so the hot path is one Map lookup.
 */
export function createModelLabeler(known: () => readonly string[]): (model: string) => string {
  let source: readonly string[] | undefined;
  let byCanonical = new Map<string, string>();
  return (model) => {
    const list = known();
    if (list !== source) {
      source = list;
      byCanonical = new Map(list.map((name) => [canonicalModelName(name), name]));
    }
    return byCanonical.get(canonicalModelName(model)) ?? OTHER;
  };
}

/** A registered name (agent, tool) or `other`; `extra` are fixed values always allowed. */
export function createNameLabeler(
  known: () => readonly string[],
  extra: readonly string[] = [],
): (name: string) => string {
  return (name) => (extra.includes(name) || known().includes(name) ? name : OTHER);
}

/** A value from a fixed list, or `other`. */
export function createEnumLabeler(values: readonly string[]): (value: string) => string {
  const allowed = new Set(values);
  return (value) => (allowed.has(value) ? value : OTHER);
}

/**
 * Passes values through until `max` distinct ones were seen, then answers `other` for new
 * ones: a guard for labels whose caller we do not control (rate-limited routes).
 */
export function createCappedLabeler(max: number): (value: string) => string {
  const seen = new Set<string>();
  return (value) => {
    if (seen.has(value)) return value;
    if (seen.size >= max) return OTHER;
    seen.add(value);
    return value;
  };
}

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
