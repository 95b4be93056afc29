import { readFileSync } from 'node:fs';
import { readFile as readFileAsync } from 'node:fs/promises';
import { parse } from 'yaml';
import type { Clock, TimerHandle } from './clock';
import {
  ConfigError,
  MIN_API_KEY_LENGTH,
  parseApiKeys,
  productionAuthProblems,
  type ApiKeyEntry,
  type Config,
  type KeyBudgets,
  type KeyLimits,
  type Role,
} from './config';
import type { Logger } from './logger';
import { createSchemaRegistry, type SchemaRegistry } from './validation';

export type KeysConfig = Pick<Config, 'API_KEYS' | 'API_KEYS_FILE' | 'NODE_ENV' | 'AUTH_DISABLED'>;

/** Reads one file as text; throws an errno error when it cannot. */
export type ReadText = (file: string) => string;

/** Ids the service uses itself: the caller without keys, and the metrics' catch-all label. */
const RESERVED_IDS = new Set(['anonymous', 'other']);

/** A key file is YAML when a top-level `keys:` opens it; otherwise it is `key:role` lines. */
export function isYamlKeyFile(text: string): boolean {
  return /^keys[ \t]*:/m.test(text);
}

/** One entry of the YAML form as the schema (schemas/api-keys-file.schema.json) admits it. */
interface YamlKey {
  id: string;
  role: Role;
  key?: string;
  keyFile?: string;
  limits?: KeyLimits;
  budgets?: KeyBudgets;
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error';
}

/** The files the YAML form names in `keyFile`, so a reload can read them ahead. */
export function referencedKeyFiles(text: string): string[] {
  if (!isYamlKeyFile(text)) return [];
  try {
    const doc = parse(text) as { keys?: unknown } | null;
    if (!doc || !Array.isArray(doc.keys)) return [];
    return doc.keys
      .map((k) => (k as { keyFile?: unknown } | null)?.keyFile)
      .filter((f): f is string => typeof f === 'string');
  } catch {
    return [];
  }
}

/**
 * The entries of a YAML key file: the document is checked against `api-keys-file`, then each
 * key's secret is taken from `key` or read from `keyFile` (exactly one of them), ids must be
 * unique and not reserved, and no secret may be given twice. Problems name the entry by its
 * JSON pointer and never quote a secret.
 */
function parseYamlKeys(
  text: string,
  source: string,
  schemas: SchemaRegistry,
  readFile: ReadText,
): { entries: ApiKeyEntry[]; problems: string[] } {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    // The parser's message ends with the offending line (a key may be on it): only the
    // reason, line and column are kept.
    const reason = (err as Error).message.split(':\n')[0];
    return { entries: [], problems: [`${source}: not valid YAML: ${reason}`] };
  }
  const invalid = schemas.check('api-keys-file', doc, source);
  if (invalid.length > 0) {
    return {
      entries: [],
      problems: invalid.map((p) => `${source}: ${p.path || '(document)'} ${p.message}`),
    };
  }
  const problems: string[] = [];
  const entries: ApiKeyEntry[] = [];
  const ids = new Map<string, number>();
  const secrets = new Map<string, number>();
  (doc as { keys: YamlKey[] }).keys.forEach((k, i) => {
    const at = `/keys/${i}`;
    const earlier = ids.get(k.id);
    if (earlier !== undefined) {
      problems.push(`${source}: ${at}/id "${k.id}" is already the id of /keys/${earlier}`);
    } else ids.set(k.id, i);
    if (RESERVED_IDS.has(k.id)) problems.push(`${source}: ${at}/id "${k.id}" is reserved`);
    let secret: string | undefined;
    if ((k.key === undefined) === (k.keyFile === undefined)) {
      problems.push(`${source}: ${at} needs exactly one of key and keyFile`);
    } else if (k.keyFile !== undefined) {
      try {
        secret = readFile(k.keyFile).replace(/\r?\n$/, '');
      } catch (err) {
        problems.push(`${source}: ${at}/keyFile cannot read ${k.keyFile} (${errnoOf(err)})`);
      }
      if (secret !== undefined && (secret.length < MIN_API_KEY_LENGTH || /\s/.test(secret))) {
        problems.push(
          `${source}: ${at}/keyFile must hold a key of at least ${MIN_API_KEY_LENGTH} characters without spaces`,
        );
        secret = undefined;
      }
    } else secret = k.key;
    if (secret === undefined) return;
    const same = secrets.get(secret);
    if (same !== undefined) {
      problems.push(`${source}: ${at} has the same key as /keys/${same}`);
      return;
    }
    secrets.set(secret, i);
    entries.push({
      key: secret,
      role: k.role,
      id: k.id,
      ...(k.limits && Object.keys(k.limits).length > 0 ? { limits: { ...k.limits } } : {}),
      ...(k.budgets && Object.keys(k.budgets).length > 0 ? { budgets: { ...k.budgets } } : {}),
    });
  });
  return { entries, problems };
}

function deepFreeze(entry: ApiKeyEntry): ApiKeyEntry {
  if (entry.limits) Object.freeze(entry.limits);
  if (entry.budgets) Object.freeze(entry.budgets);
  return Object.freeze(entry);
}

/**
 * Every API key of the process from API_KEYS and the text of API_KEYS_FILE (YAML with ids,
 * limits and budgets, or `key:role` lines), or the list of every problem. Pure apart from
 * `readFile`, which reads the files the YAML form names in `keyFile`.
 */
export function resolveApiKeys(
  config: KeysConfig,
  fileText: string | undefined,
  readFile: ReadText,
  schemas: () => SchemaRegistry,
): { keys: readonly ApiKeyEntry[]; problems: string[] } {
  const fromEnv = [...config.API_KEYS];
  const fromFile: ApiKeyEntry[] = [];
  const problems: string[] = [];
  if (fileText !== undefined) {
    const parsed = isYamlKeyFile(fileText)
      ? parseYamlKeys(fileText, 'API_KEYS_FILE', schemas(), readFile)
      : parseApiKeys(fileText, 'API_KEYS_FILE');
    problems.push(...parsed.problems);
    fromFile.push(...parsed.entries);
  }
  const entries = [...fromEnv, ...fromFile];
  const roles = new Map<string, string>();
  entries.forEach((e, i) => {
    const seen = roles.get(e.key);
    if (seen !== undefined && seen !== e.role) {
      problems.push(`API_KEYS: key number ${i + 1} is configured twice with different roles`);
    } else if (seen !== undefined && e.id !== undefined) {
      // A key with an id in the file and again in API_KEYS would have two identities.
      problems.push(`API_KEYS_FILE: the key of id "${e.id}" is also given in API_KEYS`);
    }
    roles.set(e.key, e.role);
  });
  if (problems.length === 0) problems.push(...productionAuthProblems(config, entries.length));
  return { keys: Object.freeze(entries.map((e) => deepFreeze({ ...e }))), problems };
}

/**
 * Every API key of the process at start: API_KEYS plus API_KEYS_FILE (a mounted Kubernetes
 * Secret), read synchronously once by server.ts (later versions: {@link createApiKeyStore}).
 * Throws {@link ConfigError} naming every problem: an unreadable file, a bad line or entry, a
 * key given twice with two roles, or production without any key (see productionAuthProblems).
 * Never quotes a key.
 */
export function loadApiKeys(
  config: KeysConfig,
  readFile: ReadText = (file) => readFileSync(file, 'utf8'),
  schemas?: SchemaRegistry,
): readonly ApiKeyEntry[] {
  let text: string | undefined;
  if (config.API_KEYS_FILE !== '') {
    try {
      text = readFile(config.API_KEYS_FILE);
    } catch (err) {
      throw new ConfigError([
        `API_KEYS_FILE: cannot read ${config.API_KEYS_FILE} (${errnoOf(err)})`,
      ]);
    }
  }
  const registry = (): SchemaRegistry => schemas ?? createSchemaRegistry();
  const { keys, problems } = resolveApiKeys(config, text, readFile, registry);
  if (problems.length > 0) throw new ConfigError(problems);
  return keys;
}

/** Where the auth middleware reads the keys from on each request: the version in force. */
export interface ApiKeySource {
  current(): readonly ApiKeyEntry[];
}

/** A fixed list of keys as a source, or the source itself. */
export function keySourceOf(keys: readonly ApiKeyEntry[] | ApiKeySource): ApiKeySource {
  if (!Array.isArray(keys)) return keys as ApiKeySource;
  const fixed = keys as readonly ApiKeyEntry[];
  return { current: () => fixed };
}

/** The keys of the process, kept current with API_KEYS_FILE. */
export interface ApiKeyStore extends ApiKeySource {
  /** Checks the files now; resolves true when a new version was taken. */
  check(): Promise<boolean>;
  /** Starts checking every `intervalMs` (server.ts, after listen). */
  start(): void;
  stop(): void;
}

export interface ApiKeyStoreOptions {
  config: KeysConfig;
  /** The keys read at start ({@link loadApiKeys}). */
  initial: readonly ApiKeyEntry[];
  schemas: SchemaRegistry;
  clock: Pick<Clock, 'every'>;
  logger: Logger;
  /** API_KEYS_FILE_POLL_MS; 0: never re-read. */
  intervalMs: number;
  /** Reads a file (default fs/promises, following symlinks). */
  readFile?: (file: string) => Promise<string>;
}

/**
 * The keys in force, re-read from API_KEYS_FILE when it changes. Kubernetes updates a mounted
 * Secret by pointing the `..data` symlink at a new directory, which an inotify watch on the
 * file itself never sees; so the content of the file (and of every `keyFile` it names) is read
 * every `intervalMs` on the injected clock and compared with the version in force. A new
 * version is taken whole when it is valid; otherwise it is refused with one log line naming
 * each problem and the keys in force stay, until the files change again.
 */
export function createApiKeyStore(options: ApiKeyStoreOptions): ApiKeyStore {
  const { config, schemas, logger } = options;
  const read = options.readFile ?? ((file: string) => readFileAsync(file, 'utf8'));
  let keys = options.initial;
  let seen: string | undefined;
  let timer: TimerHandle | undefined;
  let running: Promise<boolean> | undefined;

  /** Every file's text, or the errno of the ones that could not be read. */
  const snapshot = async (): Promise<{ text?: string; files: Map<string, string | Error> }> => {
    const files = new Map<string, string | Error>();
    let text: string | undefined;
    try {
      text = await read(config.API_KEYS_FILE);
    } catch (err) {
      files.set(config.API_KEYS_FILE, err as Error);
      return { files };
    }
    await Promise.all(
      referencedKeyFiles(text).map(async (file) => {
        files.set(file, await read(file).catch((err: unknown) => err as Error));
      }),
    );
    return { text, files };
  };

  const fingerprint = (text: string | undefined, files: Map<string, string | Error>): string =>
    JSON.stringify([
      text ?? null,
      [...files].map(([f, v]) => [f, typeof v === 'string' ? v : errnoOf(v)]),
    ]);

  const checkOnce = async (): Promise<boolean> => {
    const { text, files } = await snapshot();
    const print = fingerprint(text, files);
    if (print === seen) return false;
    seen = print;
    if (text === undefined) {
      const err = files.get(config.API_KEYS_FILE);
      logger.error('API_KEYS_FILE refused; the keys in force stay', {
        problems: [`API_KEYS_FILE: cannot read ${config.API_KEYS_FILE} (${errnoOf(err)})`],
      });
      return false;
    }
    const readFile: ReadText = (file) => {
      const got = files.get(file);
      if (typeof got === 'string') return got;
      throw got ?? Object.assign(new Error('not read'), { code: 'ENOENT' });
    };
    const next = resolveApiKeys(config, text, readFile, () => schemas);
    if (next.keys.length === 0 && keys.length > 0 && next.problems.length === 0) {
      // Authentication stays on: a version without keys would open the service to anyone.
      next.problems.push(
        'API_KEYS_FILE: a new version without any key would turn authentication off',
      );
    }
    if (next.problems.length > 0) {
      logger.error('API_KEYS_FILE refused; the keys in force stay', { problems: next.problems });
      return false;
    }
    // The same keys (a comment changed, or the first look at what start read): nothing to do.
    if (JSON.stringify(next.keys) === JSON.stringify(keys)) return false;
    keys = next.keys;
    logger.info('API keys reloaded', {
      keys: keys.length,
      admin_keys: keys.filter((k) => k.role === 'admin').length,
      ids: keys.flatMap((k) => (k.id !== undefined ? [k.id] : [])),
    });
    return true;
  };

  const check = (): Promise<boolean> => {
    if (config.API_KEYS_FILE === '') return Promise.resolve(false);
    running ??= checkOnce()
      .catch((err: unknown) => {
        logger.error('API_KEYS_FILE check failed', { error: err });
        return false;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  return {
    current: () => keys,
    check,
    start() {
      if (timer || config.API_KEYS_FILE === '' || options.intervalMs === 0) return;
      void check();
      timer = options.clock.every(options.intervalMs, () => void check());
    },
    stop() {
      timer?.cancel();
      timer = undefined;
    },
  };
}
