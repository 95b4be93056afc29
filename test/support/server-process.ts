import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { startOllamaSimulator, type OllamaSimulator } from './ollama-simulator';
import { runCommand } from './run-command';

/** The compiled entry point (tests run from dist/test/...). */
export const SERVER_ENTRY = path.resolve(__dirname, '..', '..', 'src', 'server.js');
/** The repository root (for `npm start`). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

/**
 * The server children of this mocha run: `starting` until they log `listening` (or exit), and
 * `alive` until they exit. test/support/root-hooks.ts kills a child still starting when its
 * test ends (its test timed out waiting), and every child left at the end of the run, so a
 * server that hangs cannot keep mocha from exiting.
 */
export const serverChildren = {
  starting: new Set<ChildProcess>(),
  alive: new Set<ChildProcess>(),
};

export interface ServerProcess {
  child: ChildProcess;
  /** Port from the `listening` log line (resolved by {@link startServerProcess}). */
  port: number;
  url: string;
  /** Every JSON log line so far. */
  lines: Array<Record<string, unknown>>;
  stderr: () => string;
  /** Resolves with the first log line (past or future) matching `predicate`. */
  waitForLine(
    predicate: (line: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends SIGKILL if still running (for after hooks). */
  kill(): void;
}

/**
 * Starts the built server in a child process with `env` (PORT=0 unless given) and resolves
 * once it logged `listening`, with the port it chose. Rejects if it exits first.
 */
export async function startServerProcess(
  env: Record<string, string>,
  options: { args?: string[]; command?: string } = {},
): Promise<ServerProcess> {
  const child = spawn(options.command ?? process.execPath, options.args ?? [SERVER_ENTRY], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  serverChildren.starting.add(child);
  serverChildren.alive.add(child);
  child.once('exit', () => {
    serverChildren.starting.delete(child);
    serverChildren.alive.delete(child);
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{
    p: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }> = [];
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { message: text };
    }
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.p(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  const waitForLine = (
    p: (l: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>> => {
    const seen = lines.find(p);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => waiters.push({ p, resolve }));
  };
  const listening = await Promise.race([
    waitForLine((l) => l.message === 'listening'),
    exited.then(({ code }) => {
      throw new Error(`server exited (${code}) before listening: ${err}`);
    }),
  ]).finally(() => serverChildren.starting.delete(child));
  const port = Number(listening.port);
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    lines,
    stderr: () => err,
    waitForLine,
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Runs a command to completion with only PATH and `env` in its environment. */
export function runToExit(
  command: string,
  args: string[],
  env: Record<string, string>,
  cwd?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCommand(command, args, { cwd, env: { PATH: process.env.PATH ?? '', ...env } });
}

/**
 * For process tests: a fresh Ollama simulator per test and `start(env)`, which spawns the
 * built server against it (no preload) and resolves once its startup completed. Both are torn
 * down after each test. Call it inside a `describe`.
 */
export function useServerAgainstSimulator(model = 'llama3.2:3b'): {
  readonly sim: OllamaSimulator;
  start(env?: Record<string, string>): Promise<ServerProcess>;
} {
  let sim: OllamaSimulator | undefined;
  let server: ServerProcess | undefined;
  beforeEach(async () => {
    sim = await startOllamaSimulator();
  });
  afterEach(async () => {
    server?.kill();
    server = undefined;
    await sim?.close();
  });
  const current = (): OllamaSimulator => {
    if (!sim) throw new Error('the simulator starts in beforeEach');
    return sim;
  };
  return {
    get sim() {
      return current();
    },
    async start(env = {}) {
      server = await startServerProcess({
        OLLAMA_HOST: current().url,
        OLLAMA_MODEL: model,
        OLLAMA_PRELOAD: 'false',
        ...env,
      });
      await server.waitForLine((l) => l.message === 'startup complete');
      return server;
    },
  };
}
