import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface ServerProcess {
  /** `http://127.0.0.1:<port>` of the running service. */
  url: string;
  /** Everything the process wrote so far (for failure messages). */
  output(): string;
  /** Resolves once the output matches `pattern`; rejects if the process exits first. */
  waitFor(pattern: RegExp): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the compiled service (`node <entry>`) with exactly `env` (plus PATH), listening on a
 * free port, and resolves once it logged `listening` with the port it got. Rejects with the
 * process output when it exits first (exit 78 is a configuration error).
 */
export function startServerProcess(
  entry: string,
  env: Record<string, string>,
  cwd?: string,
): Promise<ServerProcess> {
  const child: ChildProcess = spawn(process.execPath, [entry], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const waiters = new Set<() => void>();
  const grew = () => {
    for (const w of [...waiters]) w();
  };
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
    grew();
  });
  const exited = once(child, 'exit');
  const waitFor = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!pattern.test(output)) return;
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      check();
      void exited.then(() => {
        waiters.delete(check);
        reject(new Error(`service exited before printing ${String(pattern)}:\n${output}`));
      });
    });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      output += `${line}\n`;
      grew();
      let entry: { message?: string; port?: number } = {};
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      if (entry.message === 'listening' && typeof entry.port === 'number') {
        resolve({
          url: `http://127.0.0.1:${entry.port}`,
          output: () => output,
          waitFor,
          async stop() {
            if (child.exitCode === null && child.signalCode === null) {
              child.kill('SIGKILL'); // the drain is not under test here; do not wait for it
              await exited;
            }
          },
        });
      }
    });
    void exited.then(([code]) =>
      reject(new Error(`service exited with ${String(code)} before listening:\n${output}`)),
    );
  });
}
