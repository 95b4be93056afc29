/**
 * Ollama's model names, as Ollama parses and compares them (see ../shared/ollama-api.md §0.1,
 * from ollama/ollama types/model/name.go): `[host/][namespace/]model[:tag]`, read right to left —
 * the tag is what follows the last `:` only when that `:` comes after the last `/`, so a
 * registry port is not a tag — with the defaults host `registry.ollama.ai`, namespace `library`
 * and tag `latest`, each part validated, and names compared case-insensitively. So `llama3.2`,
 * `Library/llama3.2:latest` and `registry.ollama.ai/library/llama3.2:latest` are one model, and
 * `hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M` or
 * `registry.example.com:5000/team/model:v1` are valid names.
 */
export interface ModelName {
  host: string;
  namespace: string;
  model: string;
  tag: string;
}

const DEFAULT_HOST = 'registry.ollama.ai';
const DEFAULT_NAMESPACE = 'library';
const DEFAULT_TAG = 'latest';

/** Each part's characters and length (a first character of `[A-Za-z0-9_]`). */
const PARTS = {
  host: /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}$/,
  namespace: /^[A-Za-z0-9_][A-Za-z0-9_-]{0,79}$/,
  model: /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$/,
  tag: /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$/,
} as const;

/**
 * The JSON Schema pattern of a valid name (schemas/ollama-common.schema.json `modelName` and
 * the config schema's OLLAMA_MODEL carry this same text; a test holds them to it). Without the
 * optional `scheme://` Ollama also tolerates before a host.
 */
export const MODEL_NAME_PATTERN =
  '^(?:(?:[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}/)?[A-Za-z0-9_][A-Za-z0-9_-]{0,79}/)?[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,79})?$';

/** The parts of a valid name with the defaults filled in; undefined when Ollama would refuse it. */
export function parseModelName(text: string): ModelName | undefined {
  let rest = text.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//, '');
  let tag = DEFAULT_TAG;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const parts = rest.split('/');
  if (parts.length > 3) return undefined;
  const model = parts.pop() ?? '';
  const namespace = parts.pop() ?? DEFAULT_NAMESPACE;
  const host = parts.pop() ?? DEFAULT_HOST;
  const name = { host, namespace, model, tag };
  for (const key of ['host', 'namespace', 'model', 'tag'] as const) {
    if (!PARTS[key].test(name[key])) return undefined;
  }
  return name;
}

/**
 * Names already worked out. A request names its model several times on its way (routing,
 * loads, metrics, usage), and a deployment uses a handful of names: a bounded memo of a pure
 * function, emptied when full so odd names sent by clients cannot grow it.
 */
const DISPLAY_CACHE_MAX = 1024;
const displayed = new Map<string, string>();

/**
 * The name as Ollama prints it in `/api/tags` and `/api/ps` (default host and namespace
 * dropped, tag always present), in the caller's spelling: `llama3.2` → `llama3.2:latest`,
 * `library/qwen3` → `qwen3:latest`. An invalid name is returned as it is.
 */
export function displayModelName(text: string): string {
  let name = displayed.get(text);
  if (name === undefined) {
    if (displayed.size >= DISPLAY_CACHE_MAX) displayed.clear();
    name = display(text);
    displayed.set(text, name);
  }
  return name;
}

function display(text: string): string {
  const n = parseModelName(text);
  if (!n) return text;
  const prefix =
    n.host.toLowerCase() !== DEFAULT_HOST
      ? `${n.host}/${n.namespace}/`
      : n.namespace.toLowerCase() !== DEFAULT_NAMESPACE
        ? `${n.namespace}/`
        : '';
  return `${prefix}${n.model}:${n.tag}`;
}

/** The comparison key: two names are one model when their keys are equal. */
export function modelKey(text: string): string {
  return displayModelName(text).toLowerCase();
}

/** Whether Ollama names the same model by `a` and `b`. */
export function sameModel(a: string, b: string): boolean {
  return modelKey(a) === modelKey(b);
}

/** A cloud model: a final `:cloud` tag, or a tag ending in `-cloud` (§0.1, §1.13). */
export function isCloudModel(text: string): boolean {
  const tag = parseModelName(text)?.tag.toLowerCase();
  return tag === 'cloud' || (tag?.endsWith('-cloud') ?? false);
}
