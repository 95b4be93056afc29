/**
 * `npm run bench:ab -- --b <other checkout>/dist/src/server.js`: the same load against two
 * builds of the service (answered and streamed `/agents/run` and `/v1/chat/completions`),
 * interleaved (A B, B A, A B, …), each pair on the same simulator, to tell whether a change
 * saves CPU beyond the machine's noise. A is this build unless --a names another. Prints each
 * pair's service CPU per request, the median of the differences and each service's RSS after
 * its load.
 *
 *   npm run bench:ab -- --b ../variant/dist/src/server.js [--pairs 4 --duration 4 --only 'v1 16c']
 *   npm run bench:ab -- --redis-b    # B is this build with REDIS_URL (a redis-server it starts)
 *   npm run bench:ab -- --b ../variant/dist/src/server.js --redis   # both with REDIS_URL
 *   npm run bench:ab -- --set-b COMPRESSION_MIN_BYTES=1   # B is this build with that setting
 *   npm run bench:ab -- --b ../variant/dist/src/server.js --set COMPRESSION_MIN_BYTES=1   # both
 *   npm run bench:ab -- --set-b COMPRESSION_MIN_BYTES=1000000 --chunks 400   # longer answers
 *   npm run bench:ab -- --memory-limit-b 512Mi   # B is this build in a memory cgroup (root)
 *   npm run bench:ab -- --node-arg-b=--max-semi-space-size=8   # B is this build with a Node flag
 *   npm run bench:ab -- --b ../variant/dist/src/server.js --concurrent   # A and B loaded at once
 *
 * With --concurrent each pair starts both services afresh and loads them at the same time with
 * 8 connections each: the host's noise (other guests, frequency) then falls on both alike.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad, type LoadFigures } from './load';
import { parseMemory } from './cgroup';
import { clockTicksPerSecond } from './proc';
import type { ChildProcess } from 'node:child_process';
import { freePort } from '../test/support/listen';
import { startRedis, stopRedis } from '../test/support/redis-server';
import { parseSettings, startService, startSim, type ServiceProcess } from './processes';
import { median, rotation } from './stats';

const MODEL = 'llama3.2:3b';
const RUN = { agent: 'default', input: 'hi' };
const CHAT = { model: MODEL, messages: [{ role: 'user', content: 'hi' }] };
const HEADERS = { 'accept-encoding': 'gzip, deflate, br' };
const CONNECTIONS = 16;
const VARIANTS = ['A', 'B'] as const;
const SCENARIOS = [
  { name: 'run 16c', path: '/agents/run', body: RUN },
  { name: 'stream 16c', path: '/agents/run', body: { ...RUN, stream: true } },
  { name: 'v1 16c', path: '/v1/chat/completions', body: CHAT },
  { name: 'v1 stream 16c', path: '/v1/chat/completions', body: { ...CHAT, stream: true } },
] as const;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      a: { type: 'string', default: path.resolve(__dirname, '..', 'src', 'server.js') },
      b: { type: 'string' },
      pairs: { type: 'string', default: '4' },
      duration: { type: 'string', default: '4' },
      'node-arg-b': { type: 'string', multiple: true, default: [] },
      'redis-b': { type: 'boolean', default: false },
      /** Both variants with REDIS_URL (one redis-server): two builds compared on the Redis store. */
      redis: { type: 'boolean', default: false },
      /** KEY=VALUE added to both variants' environment (two builds compared with a setting). */
      set: { type: 'string', multiple: true, default: [] },
      /** KEY=VALUE added to B's environment (a setting against its default). */
      'set-b': { type: 'string', multiple: true, default: [] },
      /** B runs in a memory cgroup of this size (bench/cgroup), as in a pod with that limit. */
      'memory-limit-b': { type: 'string' },
      /** Only the scenarios whose name contains this (e.g. `stream`, `v1`). */
      only: { type: 'string', default: '' },
      /** Content chunks per simulated answer (50: the bench's; more makes longer answers). */
      chunks: { type: 'string', default: '50' },
      /** A and B loaded at the same time (half the connections each) instead of in turn. */
      concurrent: { type: 'boolean', default: false },
    },
  });
  if (
    !values.b &&
    values['node-arg-b'].length === 0 &&
    !values['redis-b'] &&
    values['set-b'].length === 0 &&
    values['memory-limit-b'] === undefined
  ) {
    throw new Error('--b, --node-arg-b, --set-b, --memory-limit-b or --redis-b');
  }
  const setBoth = parseSettings(values.set, '--set');
  const setB = parseSettings(values['set-b'], '--set-b');
  const redisPort = values['redis-b'] || values.redis ? await freePort() : undefined;
  const redis: ChildProcess | undefined =
    redisPort !== undefined ? await startRedis(redisPort) : undefined;
  const limitB = values['memory-limit-b'];
  const redisEnv: Record<string, string> = redis
    ? { REDIS_URL: `redis://127.0.0.1:${redisPort}` }
    : {};
  const variants = {
    A: {
      entry: values.a,
      nodeArgs: [] as string[],
      env: { ...setBoth, ...(values.redis ? redisEnv : {}) } as Record<string, string>,
    },
    B: {
      entry: values.b ?? values.a,
      nodeArgs: values['node-arg-b'],
      env: { ...setBoth, ...setB, ...redisEnv } as Record<string, string>,
      ...(limitB !== undefined ? { memoryLimitBytes: parseMemory(limitB) } : {}),
    },
  };
  const ticks = clockTicksPerSecond();
  const sim = await startSim(Number(values.chunks));
  const cpu: Record<string, Record<'A' | 'B', number[]>> = {};
  const rss: Record<'A' | 'B', number[]> = { A: [], B: [] };
  // Failed requests are cheap: a variant that answers errors would look as if it saved CPU.
  const errors: Record<'A' | 'B', number> = { A: 0, B: 0 };
  const scenarios = SCENARIOS.filter((x) => x.name.includes(values.only));
  const target = (service: ServiceProcess, s: (typeof SCENARIOS)[number]) => ({
    url: `${service.url}${s.path}`,
    body: s.body,
    headers: HEADERS,
    servicePid: service.pid,
    simPid: sim.pid,
    ticksPerSecond: ticks,
  });
  const lastRss = { A: 0, B: 0 };
  const record = (name: 'A' | 'B', scenario: string, r: LoadFigures): void => {
    ((cpu[scenario] ??= { A: [], B: [] })[name] ??= []).push(r.cpu_us_per_req);
    errors[name] += r.errors;
    lastRss[name] = r.rss_mb;
  };
  const duration = Number(values.duration);
  /** One pair in turn: A then B (B then A on odd pairs), each started afresh with all connections. */
  const loadInTurn = async (pair: number): Promise<void> => {
    const order = rotation(VARIANTS, pair);
    for (const name of order) {
      const service = await startService(sim.url, { model: MODEL, ...variants[name] });
      try {
        await runLoad(target(service, SCENARIOS[0]), CONNECTIONS, 1);
        for (const s of scenarios) {
          record(name, s.name, await runLoad(target(service, s), CONNECTIONS, duration));
        }
        rss[name].push(lastRss[name]);
      } finally {
        await service.stop();
      }
    }
    process.stderr.write(`pair ${pair + 1} done\n`);
  };
  /**
   * One pair side by side: both services at once, each with half the connections, so whatever
   * else the host does in a load's seconds falls on both alike. Both start afresh each pair (a
   * process keeps a bias of its own, about ±25 µs here in A/A runs), in alternating order.
   */
  const loadSideBySide = async (pair: number): Promise<void> => {
    const half = CONNECTIONS / 2;
    const order = rotation(VARIANTS, pair);
    const services: Partial<Record<'A' | 'B', ServiceProcess>> = {};
    try {
      for (const name of order) {
        services[name] = await startService(sim.url, { model: MODEL, ...variants[name] });
      }
      const both = (s: (typeof SCENARIOS)[number], seconds: number) =>
        Promise.all(order.map((name) => runLoad(target(services[name]!, s), half, seconds)));
      await both(SCENARIOS[0], 1);
      for (const s of scenarios) {
        const figures = await both(s, duration);
        order.forEach((name, i) => record(name, s.name, figures[i]!));
      }
      order.forEach((name) => rss[name].push(lastRss[name]));
    } finally {
      await Promise.all(Object.values(services).map((service) => service.stop()));
    }
    process.stderr.write(`pair ${pair + 1} done\n`);
  };
  try {
    for (let pair = 0; pair < Number(values.pairs); pair += 1) {
      await (values.concurrent ? loadSideBySide(pair) : loadInTurn(pair));
    }
  } finally {
    await sim.stop();
    if (redis) await stopRedis(redis);
  }
  const lines = [
    `A: ${variants.A.entry} ${values.set.join(' ')}${values.redis ? ' with REDIS_URL' : ''}`,
    `B: ${variants.B.entry} ${[...variants.B.nodeArgs, ...values.set, ...values['set-b']].join(' ')}${redis ? ' with REDIS_URL' : ''}${limitB !== undefined ? ` in a ${limitB} memory cgroup` : ''}`,
  ];
  for (const [name, v] of Object.entries(cpu)) {
    const diffs = v.A.map((a, i) => (v.B[i] ?? NaN) - a);
    lines.push(
      `${name}: A ${v.A.map((x) => x.toFixed(0)).join(', ')} | B ${v.B.map((x) => x.toFixed(0)).join(', ')} | B−A per pair ${diffs.map((d) => d.toFixed(0)).join(', ')} | median B−A ${median(diffs).toFixed(0)} µs | B lower in ${diffs.filter((d) => d < 0).length} of ${diffs.length}`,
    );
  }
  lines.push(
    `RSS after load (MB): A ${rss.A.map((x) => x.toFixed(0)).join(', ')} | B ${rss.B.map((x) => x.toFixed(0)).join(', ')}`,
  );
  if (errors.A + errors.B > 0) {
    lines.push(
      `FAILED REQUESTS (non-2xx, socket errors, timeouts): A ${errors.A}, B ${errors.B}; the CPU per request above counts them, so compare with care`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench:ab failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
