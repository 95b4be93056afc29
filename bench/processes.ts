/**
 * The two processes under measurement: the simulator (bench/sim-process) and the built
 * service (dist/src/server.js), each a child of the bench so /proc shows its own CPU and RSS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { createMemoryCgroup } from './cgroup';
import { listeningPorts } from './proc';

const SIM_ENTRY = path.join(__dirname, 'sim-process.js');
const SERVER_ENTRY = path.resolve(__dirname, '..', 'src', 'server.js');
const PROXY_ENTRY = path.join(__dirname, 'bare-proxy.js');
const FLOOR_ENTRY = path.join(__dirname, 'floor-server.js');

/** The V8 flags `npm start` (and the image's CMD) gives the service: the bench measures those. */
function startFlags(): string[] {
  const pkg = JSON.parse(
    readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8'),
  ) as { scripts: { start: string } };
  return pkg.scripts.start.split(/\s+/).filter((word) => word.startsWith('--'));
}

/** `KEY=VALUE` options (`--set`, `--set-b`) as environment variables for the service. */
export function parseSettings(pairs: readonly string[], flag: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new Error(`${flag} wants KEY=VALUE, got "${pair}"`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

export interface SimProcess {
  pid: number;
  url: string;
  /** Sends one stdin command (see sim-process.ts) and resolves with its JSON answer. */
  command(line: string): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface ServiceProcess {
  pid: number;
  url: string;
  /** What the service wrote (warnings and errors only, at LOG_LEVEL=warn). */
  output(): string;
  stop(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return once(child, 'exit').then(() => undefined);
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const done = exited(child);
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await done;
  clearTimeout(timer);
}

/** Starts the simulator with `chunksPerReply` content chunks per answer and no delays. */
export async function startSim(chunksPerReply: number): Promise<SimProcess> {
  const child = spawn(process.execPath, [SIM_ENTRY, String(chunksPerReply)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const pending: Array<(reply: Record<string, unknown>) => void> = [];
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => pending.shift()?.(JSON.parse(line) as Record<string, unknown>));
  const first = new Promise<Record<string, unknown>>((resolve) => pending.push(resolve));
  const gone = exited(child).then(() => {
    throw new Error('simulator exited before listening');
  });
  gone.catch(() => undefined); // only the race below cares; a later exit is expected
  const hello = await Promise.race([first, gone]);
  return {
    pid: child.pid!,
    url: String(hello.url),
    command: (line) =>
      new Promise((resolve) => {
        pending.push(resolve);
        child.stdin!.write(`${line}\n`);
      }),
    stop: async () => {
      const done = exited(child);
      child.stdin!.end(); // sim-process closes itself when stdin ends
      await Promise.race([done, delay(5_000).then(() => stopChild(child, 'SIGKILL'))]);
    },
  };
}

async function waitUntil<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(25);
  }
}

/**
 * Starts the built service against `ollamaUrl` on PORT=0 and finds the port it chose from
 * /proc (at LOG_LEVEL=warn the `listening` line is not written). Limits that would throttle a
 * load test (rate limits, concurrency, queue) are raised; auth is off (development, no keys).
 */
export async function startService(
  ollamaUrl: string,
  options: {
    model: string;
    nodeArgs?: string[];
    env?: Record<string, string>;
    /** Another build's dist/src/server.js (A/B runs); default this build's. */
    entry?: string;
    /** Runs the service in a memory cgroup of this many bytes, as a container's limit would. */
    memoryLimitBytes?: number;
    /** Sees everything the service writes (stdout and stderr), as it comes. */
    onOutput?: (text: string) => void;
  },
): Promise<ServiceProcess> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'development',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    OLLAMA_HOST: ollamaUrl,
    OLLAMA_MODEL: options.model,
    OLLAMA_MAX_CONCURRENCY: '1024',
    QUEUE_MAX: '4096',
    RATE_LIMIT_PER_MINUTE: '1000000',
    RATE_LIMIT_RUNS_PER_MINUTE: '1000000',
    RATE_LIMIT_COMPAT_PER_MINUTE: '1000000',
    SHUTDOWN_DELAY_MS: '0',
    SHUTDOWN_TIMEOUT_MS: '2000',
    ...options.env,
  };
  const args = [...startFlags(), ...(options.nodeArgs ?? []), options.entry ?? SERVER_ENTRY];
  const cgroup =
    options.memoryLimitBytes !== undefined
      ? createMemoryCgroup(options.memoryLimitBytes)
      : undefined;
  // In a cgroup: the shell joins it, then execs node (same pid), so node starts inside it.
  const [command, argv] = cgroup
    ? ['/bin/sh', ['-c', 'echo $$ > "$0" && exec "$@"', cgroup.procs, process.execPath, ...args]]
    : [process.execPath, args];
  const child = spawn(command, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (cgroup) {
    void exited(child)
      .then(() => cgroup.remove())
      .catch((err: unknown) => process.stderr.write(`cgroup not removed: ${String(err)}\n`));
  }
  let output = '';
  const keep = (d: Buffer) => {
    const text = d.toString();
    options.onOutput?.(text);
    output = (output + text).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const gone = exited(child).then(() => {
    throw new Error(`service exited before it listened:\n${output}`);
  });
  gone.catch(() => undefined); // only the races below care; a later exit is expected
  const port = await Promise.race([
    gone,
    waitUntil('the service to listen', async () => (await listeningPorts(child.pid!))[0]),
  ]);
  const url = `http://127.0.0.1:${port}`;
  await Promise.race([
    gone,
    waitUntil('GET /health', async () => ((await fetch(`${url}/health`)).ok ? true : undefined)),
  ]);
  return {
    pid: child.pid!,
    url,
    output: () => output,
    stop: () => stopChild(child, 'SIGTERM'),
  };
}

/** Starts the bare passthrough proxy (bench/bare-proxy) in front of the simulator. */
export function startBareProxy(simUrl: string): Promise<ServiceProcess> {
  return startReference([PROXY_ENTRY, simUrl]);
}

/**
 * Starts one level of the stack's floor (bench/floor-server: `express`, `stack` or a list of
 * concerns) in front of the simulator.
 */
export function startFloorServer(level: string, simUrl: string): Promise<ServiceProcess> {
  // With the service's V8 flags, so the floor and the gateway differ only in their code.
  return startReference([...startFlags(), FLOOR_ENTRY, level, simUrl]);
}

/** A reference server: a script that prints `{"url":…}` once listening. */
async function startReference(argv: string[]): Promise<ServiceProcess> {
  const child = spawn(process.execPath, argv, {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const gone = exited(child).then(() => {
    throw new Error(
      `${argv.find((a) => a.endsWith('.js')) ?? 'reference'} exited before listening`,
    );
  });
  gone.catch(() => undefined); // only the race below cares; a later exit is expected
  const [line] = (await Promise.race([once(lines, 'line'), gone])) as [string];
  const url = String((JSON.parse(line) as { url: unknown }).url);
  return {
    pid: child.pid!,
    url,
    output: () => '',
    stop: () => stopChild(child, 'SIGTERM'),
  };
}
