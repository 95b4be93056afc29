/**
 * `npm run bench`: what POST /agents/run and the drop-in POST /v1/chat/completions cost in the
 * service, against the Ollama simulator and beside a bare passthrough proxy (bench/bare-proxy)
 * measured in the same run. The simulator,
 * the built service and the proxy each run in their own process; this process drives load
 * (autocannon) and a sequential client, reads the service's CPU and memory from /proc, prints a
 * table and writes bench/results/<date>.json. Every figure is the median of `--reps`
 * repetitions; each repetition runs every scenario once, so the scenarios are interleaved, and
 * the gateway and the bare proxy take turns going first.
 *
 *   npm run bench [-- --reps 3 --duration 5 --iterations 300 --streams 500 --profile
 *                     --set LOG_LEVEL=info --set RUNS_MAX=100 --memory-limit 512Mi --no-redis]
 *
 * Two more services run the answered run, one with REDIS_URL (a redis-server the bench starts on
 * loopback) and its twin without: the same load at the same times, so the same warm-up and heap
 * growth; the difference is what the shared store costs. --no-redis leaves them out.
 * --profile runs the service under `node --cpu-prof` (profile in bench/results/profiles);
 * --set overrides the service's environment (defaults: LOG_LEVEL=warn, limits raised);
 * --memory-limit runs the service (alone) in a memory cgroup of that size, as the chart's pod
 * does (bench/cgroup: root and a writable cgroup tree).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runLatency, runPacedStreams, type LatencyFigures } from './latency';
import { runLoad, type LoadFigures } from './load';
import { runOpenAiLatency, type OpenAiLatencyFigures } from './openai';
import { parseMemory } from './cgroup';
import { runOpenStreams, type OpenStreamFigures } from './open-streams';
import { clockTicksPerSecond } from './proc';
import {
  parseSettings,
  startBareProxy,
  startService,
  startSim,
  type ServiceProcess,
  type SimProcess,
} from './processes';
import { checkBudget, formatSummary, machine, writeRecord, type Summary } from './report';
import { medianOfRecords, rotation } from './stats';
import { freePort } from '../test/support/listen';
import { startRedis, stopRedis } from '../test/support/redis-server';

const MODEL = 'llama3.2:3b';
const CHUNKS = 50;
const RUN = { agent: 'default', input: 'hi' };

/** What HTTP clients send by default (undici's fetch, axios, the openai SDK): answers may be compressed. */
const CLIENT_HEADERS = { 'accept-encoding': 'gzip, deflate, br' };

/**
 * Every repetition runs each group once, in this order. In a group the gateway and its
 * reference (the bare proxy: bench/bare-proxy) load back to back, so they see the same machine,
 * and the group's order turns with the repetition (bench/stats `rotation`), so neither always
 * goes first. The Redis service and its twin make two groups: two pairs per repetition, in
 * both orders.
 */
const GROUPS = [
  [
    { name: 'run 16c', via: 'gateway', stream: false, connections: 16 },
    { name: 'proxy 16c', via: 'proxy', stream: false, connections: 16 },
  ],
  [
    { name: 'twin run 16c', via: 'twin', stream: false, connections: 16 },
    { name: 'redis run 16c', via: 'redis', stream: false, connections: 16 },
  ],
  [
    { name: 'stream 16c', via: 'gateway', stream: true, connections: 16 },
    { name: 'proxy stream 16c', via: 'proxy', stream: true, connections: 16 },
  ],
  [{ name: 'run 64c', via: 'gateway', stream: false, connections: 64 }],
  [{ name: 'stream 64c', via: 'gateway', stream: true, connections: 64 }],
  [
    { name: 'redis run 16c', via: 'redis', stream: false, connections: 16 },
    { name: 'twin run 16c', via: 'twin', stream: false, connections: 16 },
  ],
  [
    { name: 'v1 16c', via: 'openai', stream: false, connections: 16 },
    { name: 'proxy v1 16c', via: 'proxy-openai', stream: false, connections: 16 },
  ],
  [
    { name: 'v1 stream 16c', via: 'openai', stream: true, connections: 16 },
    { name: 'proxy v1 stream 16c', via: 'proxy-openai', stream: true, connections: 16 },
  ],
] as const;

type Scenario = (typeof GROUPS)[number][number];
type Via = Scenario['via'];

function options() {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string', default: '3' },
      duration: { type: 'string', default: '5' },
      iterations: { type: 'string', default: '300' },
      streams: { type: 'string', default: '500' },
      profile: { type: 'boolean', default: false },
      set: { type: 'string', multiple: true, default: [] },
      /** Runs the service under this memory limit (e.g. 512Mi, the chart's), as in its pod. */
      'memory-limit': { type: 'string' },
      /** The answered run also through a service with REDIS_URL (--no-redis: not). */
      redis: { type: 'boolean', default: true },
    },
    allowNegative: true,
  });
  const env = parseSettings(values.set, '--set');
  return {
    reps: Number(values.reps),
    durationS: Number(values.duration),
    iterations: Number(values.iterations),
    streams: Number(values.streams),
    profile: values.profile,
    redis: values.redis,
    env,
    ...(values['memory-limit'] !== undefined
      ? {
          memoryLimit: values['memory-limit'],
          memoryLimitBytes: parseMemory(values['memory-limit']),
        }
      : {}),
  };
}

/** Per pair of loads: the Redis service's CPU per answered run minus its twin's (run back to back). */
function pairedDifferences(load: Record<string, LoadFigures[]>): number[] {
  const twin = load['twin run 16c'] ?? [];
  return (load['redis run 16c'] ?? []).map(
    (r, i) => r.cpu_us_per_req - (twin[i]?.cpu_us_per_req ?? NaN),
  );
}

const log = (text: string) => process.stderr.write(`${text}\n`);

/**
 * A redis-server on loopback, a service using it (REDIS_URL, as one replica of several) and its
 * twin without it, both fresh, for the Redis scenarios.
 */
async function startSharedStoreServices(
  simUrl: string,
  opts: { env: Record<string, string>; memoryLimitBytes?: number },
) {
  const port = await freePort();
  const redis = await startRedis(port);
  const start = (env: Record<string, string>) =>
    startService(simUrl, {
      model: MODEL,
      env: { ...opts.env, ...env },
      ...(opts.memoryLimitBytes !== undefined ? { memoryLimitBytes: opts.memoryLimitBytes } : {}),
    });
  const started: ServiceProcess[] = [];
  try {
    started.push(await start({ REDIS_URL: `redis://127.0.0.1:${port}` }));
    started.push(await start({}));
    const [service, twin] = started as [ServiceProcess, ServiceProcess];
    const stop = async () => {
      await Promise.all([service.stop(), twin.stop()]);
      await stopRedis(redis);
    };
    return { service, twin, stop };
  } catch (err) {
    await Promise.all(started.map((s) => s.stop()));
    await stopRedis(redis);
    throw err;
  }
}

/**
 * Open streams are measured on a service of their own (warmed with a few runs), so the figure
 * is what the streams cost, not the heap left grown by the throughput runs before them.
 */
async function openStreamsOnFreshService(
  sim: SimProcess,
  streams: number,
  env: Record<string, string>,
  memoryLimitBytes: number | undefined,
): Promise<OpenStreamFigures> {
  const service = await startService(sim.url, {
    model: MODEL,
    env,
    ...(memoryLimitBytes !== undefined ? { memoryLimitBytes } : {}),
  });
  try {
    await runLatency({ serviceUrl: service.url, sim, model: MODEL, runBody: RUN }, 20);
    return await runOpenStreams(
      { serviceUrl: service.url, servicePid: service.pid, sim, runBody: RUN },
      streams,
    );
  } finally {
    await service.stop();
  }
}

async function main(): Promise<void> {
  const opts = options();
  const date = new Date();
  const host = machine();
  const ticksPerSecond = clockTicksPerSecond();
  const profileDir = path.resolve(__dirname, '..', '..', 'bench', 'results', 'profiles');
  const sim = await startSim(CHUNKS);
  const service = await startService(sim.url, {
    model: MODEL,
    nodeArgs: opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
    env: opts.env,
    ...(opts.memoryLimitBytes !== undefined ? { memoryLimitBytes: opts.memoryLimitBytes } : {}),
  }).catch(async (err: unknown) => {
    await sim.stop();
    throw err;
  });
  const proxy = await startBareProxy(sim.url).catch(async (err: unknown) => {
    await service.stop();
    await sim.stop();
    throw err;
  });
  const shared = opts.redis
    ? await startSharedStoreServices(sim.url, opts).catch(async (err: unknown) => {
        await proxy.stop();
        await service.stop();
        await sim.stop();
        throw err;
      })
    : undefined;
  log(
    `simulator ${sim.url} (pid ${sim.pid}), service ${service.url} (pid ${service.pid}), bare proxy ${proxy.url} (pid ${proxy.pid})` +
      (shared
        ? `, with REDIS_URL ${shared.service.url} (pid ${shared.service.pid}), its twin without (pid ${shared.twin.pid})`
        : ''),
  );
  const available = (s: Scenario) => (s.via !== 'redis' && s.via !== 'twin') || !!shared;
  const groups = GROUPS.map((group) => group.filter(available)).filter((g) => g.length > 0);
  const scenarios = groups.flat();
  const chat = (stream: boolean) => ({
    model: MODEL,
    messages: [{ role: 'user', content: RUN.input }],
    stream,
  });
  const loadTarget = (s: { via: Via; stream: boolean }) => {
    const common = { headers: CLIENT_HEADERS, simPid: sim.pid, ticksPerSecond };
    const viaService = { ...common, servicePid: service.pid };
    const viaProxy = { ...common, servicePid: proxy.pid };
    switch (s.via) {
      case 'gateway':
        return {
          ...viaService,
          url: `${service.url}/agents/run`,
          body: s.stream ? { ...RUN, stream: true } : RUN,
        };
      case 'redis':
      case 'twin': {
        if (!shared) throw new Error('the Redis scenarios need their services');
        const { url, pid } = s.via === 'redis' ? shared.service : shared.twin;
        return { ...common, servicePid: pid, url: `${url}/agents/run`, body: RUN };
      }
      case 'openai':
        return { ...viaService, url: `${service.url}/v1/chat/completions`, body: chat(s.stream) };
      case 'proxy-openai':
        return { ...viaProxy, url: `${proxy.url}/v1/chat/completions`, body: chat(s.stream) };
      default:
        return { ...viaProxy, url: `${proxy.url}/api/chat`, body: chat(s.stream) };
    }
  };
  const latencyTarget = {
    serviceUrl: service.url,
    sim,
    model: MODEL,
    runBody: RUN,
    proxyUrl: proxy.url,
  };

  const load: Record<string, LoadFigures[]> = {};
  const latency: LatencyFigures[] = [];
  const open: OpenStreamFigures[] = [];
  const openai: OpenAiLatencyFigures[] = [];
  let paced: Summary['paced'];
  try {
    log('warming up');
    await runLatency(latencyTarget, 50);
    for (const s of scenarios) await runLoad(loadTarget(s), s.connections, 1);
    // The Redis service and its twin see one scenario only: 8 s more each, 10 s in all (a fresh
    // service's CPU per run falls for about 15 s of load, measured; the pairs start even).
    for (const via of ['twin', 'redis'] as const) {
      const s = scenarios.find((x) => x.via === via);
      if (s) await runLoad(loadTarget(s), s.connections, 8);
    }
    for (let rep = 1; rep <= opts.reps; rep += 1) {
      for (const s of groups.flatMap((group) => rotation(group, rep - 1))) {
        log(`rep ${rep}/${opts.reps}: ${s.name}`);
        (load[s.name] ??= []).push(await runLoad(loadTarget(s), s.connections, opts.durationS));
      }
      log(`rep ${rep}/${opts.reps}: sequential latency (${opts.iterations} of each)`);
      latency.push(await runLatency(latencyTarget, opts.iterations));
      log(`rep ${rep}/${opts.reps}: /v1 first token (${opts.iterations} streams each way)`);
      openai.push(await runOpenAiLatency(latencyTarget, opts.iterations));
      log(`rep ${rep}/${opts.reps}: ${opts.streams} open streams (fresh service)`);
      open.push(
        await openStreamsOnFreshService(sim, opts.streams, opts.env, opts.memoryLimitBytes),
      );
    }
    log('paced streams (5 ms between chunks)');
    paced = await runPacedStreams({ ...latencyTarget, servicePid: service.pid }, 10, 5);
  } finally {
    await proxy.stop();
    await service.stop();
    await shared?.stop();
    await sim.stop();
  }
  const warnings = service.output().trim();
  if (warnings)
    log(`service output (warn and above):\n${warnings.split('\n').slice(-10).join('\n')}`);

  const summary: Summary = {
    load: Object.fromEntries(
      Object.entries(load).map(([name, reps]) => [name, medianOfRecords(reps) as LoadFigures]),
    ),
    latency: medianOfRecords(latency) as LatencyFigures,
    openai: medianOfRecords(openai) as OpenAiLatencyFigures,
    paced,
    openStreams: medianOfRecords(open) as OpenStreamFigures,
    chunksPerReply: CHUNKS,
    ...(load['redis run 16c'] ? { redisAddedUs: pairedDifferences(load) } : {}),
  };
  const budget = checkBudget(summary);
  process.stdout.write(`\n${formatSummary(summary, budget)}\n\n`);
  const file = await writeRecord(
    {
      date: date.toISOString(),
      machine: host,
      settings: {
        ...opts,
        chunks_per_reply: CHUNKS,
        model: MODEL,
        ticks_per_second: ticksPerSecond,
      },
      summary,
      budget,
      repetitions: { load, latency, openai, openStreams: open },
    },
    date,
  );
  log(
    `${host.cpu as string}, ${host.cores as number} cores, Node ${process.version}` +
      (opts.memoryLimit ? `, the service in a ${opts.memoryLimit} memory cgroup` : ''),
  );
  log(`written: ${path.relative(process.cwd(), file)}`);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
