import { HttpError } from './http-io';

/**
 * Ollama's model names (ollama-api.md §0.1): `[host/][namespace/]model[:tag]`, parsed right to
 * left, defaults filled in, each part validated, compared case-insensitively.
 */
export interface ModelName {
  host: string;
  namespace: string;
  model: string;
  tag: string;
}

export const DEFAULT_HOST = 'registry.ollama.ai';
const DEFAULT_NAMESPACE = 'library';
const DEFAULT_TAG = 'latest';

/** Ollama's 400 for a name that fails validation (generate, chat, embed, show). */
export const INVALID_NAME = 'invalid model name';

type Part = 'host' | 'namespace' | 'model' | 'tag';
const MAX_LEN: Record<Part, number> = { host: 350, namespace: 80, model: 80, tag: 80 };

function isWordChar(c: string): boolean {
  return /^[A-Za-z0-9_]$/.test(c);
}

/** First character `[A-Za-z0-9_]`; then `-`, `_`, `.` (not in a namespace), `:` (host only). */
function validPart(kind: Part, s: string): boolean {
  if (s.length < 1 || s.length > MAX_LEN[kind]) return false;
  for (let i = 0; i < s.length; i += 1) {
    const c = s.charAt(i);
    if (i === 0) {
      if (!isWordChar(c)) return false;
    } else if (c === '.') {
      if (kind === 'namespace') return false;
    } else if (c === ':') {
      if (kind !== 'host') return false;
    } else if (c !== '-' && !isWordChar(c)) return false;
  }
  return true;
}

/** Cut at the last `sep`: [before, after], or undefined when `sep` does not occur. */
function cutLast(s: string, sep: string): [string, string] | undefined {
  const i = s.lastIndexOf(sep);
  return i === -1 ? undefined : [s.slice(0, i), s.slice(i + sep.length)];
}

/**
 * Parse as `ParseName` does: the tag is what follows the last `:` only when that `:` comes
 * after the last `/` (so a port is not a tag); then model, namespace, host (an optional
 * `scheme://` before the host is dropped). Undefined when any part is invalid after defaults.
 */
export function parseModelName(text: string): ModelName | undefined {
  let rest = text;
  let tag = DEFAULT_TAG;
  if (rest.lastIndexOf(':') > rest.lastIndexOf('/')) {
    const [before, after] = cutLast(rest, ':') ?? [rest, ''];
    rest = before;
    tag = after;
  }
  let namespace = DEFAULT_NAMESPACE;
  let host = DEFAULT_HOST;
  let model = rest;
  const m = cutLast(rest, '/');
  if (m) {
    model = m[1];
    const ns = cutLast(m[0], '/');
    if (ns) {
      namespace = ns[1];
      const hostPart = ns[0];
      host = hostPart.includes('://') ? hostPart.slice(hostPart.indexOf('://') + 3) : hostPart;
    } else {
      namespace = m[0];
    }
  }
  const name = { host, namespace, model, tag };
  const valid =
    validPart('host', host) &&
    validPart('namespace', namespace) &&
    validPart('model', model) &&
    validPart('tag', tag);
  return valid ? name : undefined;
}

/** The shortest display form that /api/tags and /api/ps print (`llama3.2:latest`). */
export function displayShortest(n: ModelName): string {
  let prefix = '';
  if (n.host.toLowerCase() !== DEFAULT_HOST) prefix = `${n.host}/${n.namespace}/`;
  else if (n.namespace.toLowerCase() !== DEFAULT_NAMESPACE) prefix = `${n.namespace}/`;
  return `${prefix}${n.model}:${n.tag}`;
}

/** `host/namespace/model:tag`, as some capability errors print it. */
export function displayFull(n: ModelName): string {
  return `${n.host}/${n.namespace}/${n.model}:${n.tag}`;
}

/** The key two names compare equal under (EqualFold on the full name). */
export function nameKey(n: ModelName): string {
  return displayFull(n).toLowerCase();
}

/**
 * A name's source suffix (§0.1, §1.13): a final `:cloud` or a tag ending in `-cloud` marks a
 * cloud model (`gpt-oss:20b-cloud` → base `gpt-oss:20b`); `:local` forces local; both → 400.
 */
export interface ModelRef {
  base: string;
  source: 'cloud' | 'local' | 'auto';
}

export function parseModelRef(text: string): ModelRef {
  let base = text;
  let cloud = false;
  let local = false;
  for (;;) {
    const lower = base.toLowerCase();
    if (lower.endsWith(':cloud') && !cloud) {
      cloud = true;
      base = base.slice(0, -':cloud'.length);
    } else if (lower.endsWith(':local') && !local) {
      local = true;
      base = base.slice(0, -':local'.length);
    } else break;
  }
  const colon = base.lastIndexOf(':');
  if (colon > base.lastIndexOf('/') && base.toLowerCase().endsWith('-cloud')) {
    cloud = true;
    base = base.slice(0, -'-cloud'.length);
  }
  if (cloud && local) {
    throw new HttpError(400, `use either :local or :cloud, not both: "${text}"`);
  }
  return { base, source: cloud ? 'cloud' : local ? 'local' : 'auto' };
}
