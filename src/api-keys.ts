import { readFileSync } from 'node:fs';
import {
  ConfigError,
  parseApiKeys,
  productionAuthProblems,
  type ApiKeyEntry,
  type Config,
} from './config';

/**
 * Every API key of the process: API_KEYS plus the lines of API_KEYS_FILE (a mounted
 * Kubernetes Secret). Called ONCE by server.ts at start — the file is never read on a request
 * path; rotating keys means a rollout (the Secret's checksum in the pod annotations does it).
 * Throws {@link ConfigError} for an unreadable file, a bad line, a key given twice with two
 * roles, or production without any key (see productionAuthProblems). Never quotes a key.
 */
export function loadApiKeys(
  config: Pick<Config, 'API_KEYS' | 'API_KEYS_FILE' | 'NODE_ENV' | 'AUTH_DISABLED'>,
  readFile: (file: string) => string = (file) => readFileSync(file, 'utf8'),
): readonly ApiKeyEntry[] {
  const entries = [...config.API_KEYS];
  const problems: string[] = [];
  if (config.API_KEYS_FILE !== '') {
    let text: string | undefined;
    try {
      text = readFile(config.API_KEYS_FILE);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      problems.push(`API_KEYS_FILE: cannot read ${config.API_KEYS_FILE} (${code})`);
    }
    if (text !== undefined) {
      const parsed = parseApiKeys(text, 'API_KEYS_FILE');
      problems.push(...parsed.problems);
      entries.push(...parsed.entries);
    }
  }
  const roles = new Map<string, string>();
  entries.forEach((e, i) => {
    const seen = roles.get(e.key);
    if (seen !== undefined && seen !== e.role) {
      problems.push(`API_KEYS: key number ${i + 1} is configured twice with different roles`);
    }
    roles.set(e.key, e.role);
  });
  if (problems.length === 0) problems.push(...productionAuthProblems(config, entries.length));
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(entries.map((e) => Object.freeze({ ...e })));
}
