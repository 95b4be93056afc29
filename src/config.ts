import { modelKey, parseModelName } from './model-name';
import bytes from 'bytes';
import { createSchemaRegistry, coerceStrings, type SchemaRegistry } from './validation';

export type Role = 'agent' | 'admin';
export interface ApiKeyEntry {
  key: string;
  role: Role;
  /** A readable, non-secret id for usage and metrics; default: a digest of the key. */
  id?: string;
  /** The key's share of the GPU; unset fields take the service's defaults. */
  limits?: KeyLimits;
  /** Tokens (prompt + completion) the key may use per UTC day and month; unset: unlimited. */
  budgets?: KeyBudgets;
}

/** A key's token budgets, counted over every model and replica. */
export interface KeyBudgets {
  tokensPerDay?: number;
  tokensPerMonth?: number;
}

/** How one API key shares the Ollama backends with the others. */
export interface KeyLimits {
  /** Generations in flight at once for this key, across every replica. */
  maxConcurrency?: number;
  /** Its share when slots are handed out round-robin across keys (default 1). */
  weight?: number;
  /** Requests of a higher priority are admitted before those of a lower one. */
  priority?: 'interactive' | 'batch';
}

/**
 * The validated, frozen configuration. Keys are the environment variable names declared in
 * `schemas/config.schema.json` (the single source of names, defaults and ranges); list-like
 * values arrive parsed.
 */
export interface Config {
  NODE_ENV: 'development' | 'production' | 'test';
  PORT: number;
  HOST: string;
  LOG_LEVEL: 'error' | 'warn' | 'info' | 'http' | 'debug' | 'silent';
  LOG_FORMAT: 'json' | 'pretty';
  /** Bytes. */
  BODY_LIMIT: number;
  COMPRESSION_MIN_BYTES: number;
  ALLOWED_ORIGINS: readonly string[];
  TRUST_PROXY: number;
  KEEP_ALIVE_TIMEOUT_MS: number;
  HEADERS_TIMEOUT_MS: number;
  REQUEST_TIMEOUT_MS: number;
  MAX_HEADER_SIZE: number;
  SHUTDOWN_DELAY_MS: number;
  SHUTDOWN_TIMEOUT_MS: number;
  /** Normalised base URL without a trailing slash, e.g. `http://127.0.0.1:11434`. */
  OLLAMA_HOST: string;
  /** Normalised base URLs of a fixed set of backends (empty: OLLAMA_HOST alone). */
  OLLAMA_HOSTS: readonly string[];
  /** A DNS name resolved to backends, as `scheme://name:port` (empty: no discovery). */
  OLLAMA_DISCOVERY: string;
  OLLAMA_DISCOVERY_INTERVAL_MS: number;
  /** Backends a switch preloads the active model on (0: every one that has it). */
  OLLAMA_MODEL_REPLICAS: number;
  OLLAMA_MODEL: string;
  /** As Ollama takes it: a number of seconds or a Go duration string. */
  OLLAMA_KEEP_ALIVE: string | number;
  OLLAMA_TIMEOUT_MS: number;
  OLLAMA_LOAD_TIMEOUT_MS: number;
  OLLAMA_FIRST_BYTE_TIMEOUT_MS: number;
  OLLAMA_STREAM_IDLE_TIMEOUT_MS: number;
  OLLAMA_RETRY_MAX: number;
  OLLAMA_RETRY_BASE_MS: number;
  CIRCUIT_FAILURE_THRESHOLD: number;
  CIRCUIT_RESET_MS: number;
  MODEL_FAILURE_THRESHOLD: number;
  MODEL_COOLDOWN_MS: number;
  OLLAMA_MAX_CONCURRENCY: number;
  QUEUE_MAX: number;
  QUEUE_TIMEOUT_MS: number;
  KEY_MAX_CONCURRENCY: number;
  OLLAMA_MAX_CONCURRENCY_LOCAL: number;
  ADMISSION_LEASE_MS: number;
  OLLAMA_HEALTH_TTL_MS: number;
  OLLAMA_HEALTH_TIMEOUT_MS: number;
  OLLAMA_PS_TIMEOUT_MS: number;
  MODELS_CACHE_TTL_MS: number;
  OLLAMA_PULL_ON_START: boolean;
  OLLAMA_PRELOAD: boolean;
  STARTUP_RETRY_MAX_MS: number;
  READY_REQUIRES_OLLAMA: boolean;
  LIVENESS_MAX_EVENT_LOOP_DELAY_MS: number;
  AGENTS_FILE: string;
  STREAM_HEARTBEAT_MS: number;
  HTTP_TOOL_ALLOWLIST: readonly string[];
  RUNS_MAX: number;
  RUNS_TTL_MS: number;
  RUN_LEASE_MS: number;
  RUN_ACTION_TTL_MAX_MS: number;
  GROUPTHINK_MAX_SAMPLES: number;
  WEBHOOK_SECRET: string;
  WEBHOOK_ALLOWLIST: readonly string[];
  MCP_ALLOWLIST: readonly string[];
  MCP_REFRESH_INTERVAL_MS: number;
  MCP_TIMEOUT_MS: number;
  MCP_MAX_RESULT_CHARS: number;
  WEBHOOK_MAX_ATTEMPTS: number;
  WEBHOOK_TIMEOUT_MS: number;
  IDEMPOTENCY_TTL_MS: number;
  METRICS_TOKEN: string;
  API_KEYS: readonly ApiKeyEntry[];
  /** num_ctx sent for every model (0: none). */
  OLLAMA_NUM_CTX: number;
  /** Per-model num_ctx by model key (src/model-name `modelKey`). */
  OLLAMA_NUM_CTX_MODELS: Readonly<Record<string, number>>;
  API_KEYS_FILE: string;
  API_KEYS_FILE_POLL_MS: number;
  TOKEN_BUDGET_WARN_PERCENT: number;
  AUTH_DISABLED: boolean;
  RATE_LIMIT_PER_MINUTE: number;
  RATE_LIMIT_RUNS_PER_MINUTE: number;
  RATE_LIMIT_COMPAT_PER_MINUTE: number;
  ALLOW_ANY_INSTALLED_MODEL: boolean;
  REDIS_URL: string;
  REDIS_PASSWORD_FILE: string;
  REDIS_COMMAND_TIMEOUT_MS: number;
  REDIS_KEY_PREFIX: string;
}

/** Thrown by {@link loadConfig}; its message names every bad variable and why. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const LIST_KEYS = [
  'ALLOWED_ORIGINS',
  'HTTP_TOOL_ALLOWLIST',
  'WEBHOOK_ALLOWLIST',
  'MCP_ALLOWLIST',
] as const;
export const MIN_API_KEY_LENGTH = 16;

/**
 * Reads the configuration from an environment map. Pure: it reads only `env`, never
 * `process.env`, and touches no file. Unknown variables are ignored; empty values count as
 * unset. Throws {@link ConfigError} listing every problem at once.
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>>,
  registry: SchemaRegistry = createSchemaRegistry(),
): Readonly<Config> {
  const schema = registry.schema('config');
  const props = schema.properties as Record<string, { writeOnly?: boolean }>;
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(props)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') raw[key] = value.trim();
  }
  const values = coerceStrings(raw, schema);
  const problems = registry.check('config', values, 'env').map((e) => {
    const name = e.path.replace(/^\//, '');
    const shown = props[name]?.writeOnly ? '' : ` (got ${JSON.stringify(raw[name])})`;
    return `${name}: ${e.message}${raw[name] === undefined ? '' : shown}`;
  });

  // Post-processing runs for every variable that passed the schema, so one run reports the
  // schema problems and these together.
  const bad = new Set(problems.map((p) => p.split(':')[0]));
  const out = values as Record<string, unknown>;
  const ok = (key: string): boolean => !bad.has(key);
  if (ok('BODY_LIMIT')) out.BODY_LIMIT = bytes.parse(String(out.BODY_LIMIT));
  for (const key of LIST_KEYS) if (ok(key)) out[key] = splitList(String(out[key]));
  if (ok('OLLAMA_HOST')) {
    try {
      out.OLLAMA_HOST = normalizeOllamaHost(String(out.OLLAMA_HOST));
    } catch (err) {
      problems.push(
        `OLLAMA_HOST: ${(err as Error).message} (got ${JSON.stringify(raw.OLLAMA_HOST)})`,
      );
    }
  }
  if (ok('OLLAMA_HOSTS')) {
    const hosts: string[] = [];
    for (const item of splitList(String(out.OLLAMA_HOSTS))) {
      try {
        hosts.push(normalizeOllamaHost(item));
      } catch (err) {
        problems.push(`OLLAMA_HOSTS: ${JSON.stringify(item)} ${(err as Error).message}`);
      }
    }
    out.OLLAMA_HOSTS = Object.freeze(hosts);
  }
  if (ok('OLLAMA_DISCOVERY') && out.OLLAMA_DISCOVERY !== '') {
    try {
      out.OLLAMA_DISCOVERY = normalizeOllamaHost(String(out.OLLAMA_DISCOVERY));
    } catch (err) {
      problems.push(
        `OLLAMA_DISCOVERY: ${(err as Error).message} (got ${JSON.stringify(raw.OLLAMA_DISCOVERY)})`,
      );
    }
  }
  if (ok('OLLAMA_KEEP_ALIVE') && /^-?\d+(\.\d+)?$/.test(String(out.OLLAMA_KEEP_ALIVE))) {
    out.OLLAMA_KEEP_ALIVE = Number(out.OLLAMA_KEEP_ALIVE);
  }
  if (ok('API_KEYS')) {
    const keys = parseApiKeys(String(out.API_KEYS), 'API_KEYS');
    problems.push(...keys.problems);
    out.API_KEYS = keys.entries;
  }
  if (ok('OLLAMA_NUM_CTX_MODELS')) {
    const parsed = parseNumCtxModels(String(out.OLLAMA_NUM_CTX_MODELS));
    problems.push(...parsed.problems);
    out.OLLAMA_NUM_CTX_MODELS = Object.freeze(parsed.byModel);
  }
  if (problems.length === 0) problems.push(...crossChecks(out as unknown as Config));
  if (problems.length > 0) throw new ConfigError(problems);
  for (const key of LIST_KEYS) Object.freeze(out[key]);
  Object.freeze(out.API_KEYS);
  return Object.freeze(out as unknown as Config);
}

/**
 * The configuration of this process: {@link loadConfig} over `process.env`. This module is the
 * only one that reads the environment; everything else receives the frozen result.
 */
export function loadProcessConfig(registry: SchemaRegistry): Readonly<Config> {
  return loadConfig(process.env, registry);
}

function crossChecks(c: Config): string[] {
  const problems: string[] = [];
  // With API_KEYS_FILE the count is only known once the file is read: loadApiKeys()
  // (src/api-keys.ts) repeats this check then, so an empty file is refused too.
  if (c.API_KEYS_FILE === '') problems.push(...productionAuthProblems(c, c.API_KEYS.length));
  return problems;
}

/**
 * The production refusal: NODE_ENV=production with no API key at all needs an explicit
 * AUTH_DISABLED=true, so a forgotten Secret cannot silently open the service.
 */
export function productionAuthProblems(
  c: Pick<Config, 'NODE_ENV' | 'AUTH_DISABLED'>,
  keyCount: number,
): string[] {
  if (c.NODE_ENV !== 'production' || keyCount > 0 || c.AUTH_DISABLED) return [];
  return [
    'API_KEYS: production (NODE_ENV=production) needs API_KEYS or API_KEYS_FILE with at least one key; set AUTH_DISABLED=true to run without authentication on purpose',
  ];
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * Parses `key:role` pairs (comma- or newline-separated). Shared by API_KEYS and the keys
 * file so both accept the same format. Problems never quote a key, only its position.
 */
export function parseApiKeys(
  text: string,
  source: string,
): { entries: ApiKeyEntry[]; problems: string[] } {
  const entries: ApiKeyEntry[] = [];
  const problems: string[] = [];
  const items = text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter((s) => s !== '' && !s.startsWith('#'));
  items.forEach((item, i) => {
    const at = item.lastIndexOf(':');
    const key = at > 0 ? item.slice(0, at) : '';
    const role = at > 0 ? item.slice(at + 1) : '';
    if (role !== 'agent' && role !== 'admin') {
      problems.push(`${source}: entry ${i + 1} must be key:role with role agent or admin`);
    } else if (key.length < MIN_API_KEY_LENGTH || /\s/.test(key)) {
      problems.push(
        `${source}: entry ${i + 1} key must be at least ${MIN_API_KEY_LENGTH} characters without spaces`,
      );
    } else {
      entries.push({ key, role });
    }
  });
  return { entries, problems };
}

/**
 * Normalises an Ollama address the way Ollama and ollama-js read OLLAMA_HOST: scheme defaults
 * to http; without a port, 11434 (or 80/443 when the scheme was given explicitly); `:port`
 * means localhost. A path prefix is kept (Ollama behind a reverse proxy).
 */
export function normalizeOllamaHost(value: string): string {
  let text = value.trim();
  if (text.startsWith(':')) text = `127.0.0.1${text}`;
  const m = /^(?:([A-Za-z][A-Za-z0-9+.-]*):\/\/)?([^/?#]*)([^?#]*)$/.exec(text);
  if (!m) throw new Error('is not a URL or host:port');
  const scheme = (m[1] ?? 'http').toLowerCase();
  const authority = m[2] ?? '';
  const explicitScheme = m[1] !== undefined;
  if (scheme !== 'http' && scheme !== 'https') throw new Error('scheme must be http or https');
  if (authority === '') throw new Error('has no host');
  const hasPort = /:\d+$/.test(authority) && !/^\[[^\]]*\]$/.test(authority);
  const defaultPort = explicitScheme ? (scheme === 'https' ? '443' : '80') : '11434';
  let url: URL;
  try {
    url = new URL(
      `${scheme}://${hasPort ? authority : `${authority}:${defaultPort}`}${m[3] ?? ''}`,
    );
  } catch {
    throw new Error('is not a URL or host:port');
  }
  if (url.hostname === '') throw new Error('has no host');
  const port = url.port === '' ? (scheme === 'https' ? '443' : '80') : url.port;
  const auth = url.username ? `${url.username}${url.password ? `:${url.password}` : ''}@` : '';
  const pathname = url.pathname.replace(/\/+$/, '');
  return `${scheme}://${auth}${url.hostname}:${port}${pathname}`;
}

/** `model=num_ctx` pairs, keyed by model key; each bad pair is a problem naming it. */
function parseNumCtxModels(text: string): {
  byModel: Record<string, number>;
  problems: string[];
} {
  const byModel: Record<string, number> = {};
  const problems: string[] = [];
  for (const pair of text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    const [name = '', value = ''] = pair.split('=').map((p) => p.trim());
    const numCtx = Number(value);
    if (!parseModelName(name)) {
      problems.push(`OLLAMA_NUM_CTX_MODELS: "${name}" is not a model name Ollama accepts`);
    } else if (!Number.isInteger(numCtx) || numCtx < 1 || numCtx > 1_048_576) {
      problems.push(
        `OLLAMA_NUM_CTX_MODELS: ${name} needs a num_ctx from 1 to 1048576 (got "${value}")`,
      );
    } else {
      byModel[modelKey(name)] = numCtx;
    }
  }
  return { byModel, problems };
}

/**
 * The context length the gateway sends for `model` on every preload and generation
 * (OLLAMA_NUM_CTX_MODELS over OLLAMA_NUM_CTX), or undefined: send none, Ollama's automatic one.
 */
export function numCtxFor(
  config: Pick<Config, 'OLLAMA_NUM_CTX' | 'OLLAMA_NUM_CTX_MODELS'>,
  model: string,
): number | undefined {
  const own = config.OLLAMA_NUM_CTX_MODELS[modelKey(model)];
  if (own !== undefined) return own;
  return config.OLLAMA_NUM_CTX > 0 ? config.OLLAMA_NUM_CTX : undefined;
}
