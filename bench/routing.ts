/**
 * `npm run bench:routing`: the gateway's routing across several Ollama backends against what a
 * plain Kubernetes Service does (round-robin). Three simulated Ollamas, each with room for one
 * loaded model and a load time of about 2 s (OLLAMA_MAX_LOADED_MODELS=1 on a GPU that holds one
 * model), get three models asked for in a skewed mix by closed-loop clients. Both modes send the
 * same requests (`POST /api/chat`, answered) in the same order: to the gateway's drop-in
 * endpoint (OLLAMA_HOSTS = the three), or to a round-robin proxy in front of the three. Counted:
 * requests completed within the window, model loads the simulators performed, and latency.
 *
 *   npm run bench:routing [-- --seconds 60 --clients 32 --load-ms 2000 --parallel 2]
 *
 * The simulators and the round-robin proxy run in this process (their CPU is not measured
 * here); the gateway is the built service in its own process (bench/processes).
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { startService } from './processes';
import { percentile } from './stats';
import {
  startOllamaSimulator,
  type OllamaSimulator,
  type SimModelSpec,
} from '../test/support/ollama-simulator';

/** The three models and how often each is asked for. */
const MIX: ReadonlyArray<{ model: string; weight: number }> = [
  { model: 'llama3.2:3b', weight: 0.6 },
  { model: 'qwen3:8b', weight: 0.3 },
  { model: 'mistral:7b', weight: 0.1 },
];

const MODELS: SimModelSpec[] = [
  { name: 'llama3.2:3b', family: 'llama', capabilities: ['completion', 'tools'] },
  { name: 'qwen3:8b', family: 'qwen3', capabilities: ['completion', 'tools'] },
  { name: 'mistral:7b', family: 'llama', capabilities: ['completion', 'tools'] },
];

interface Args {
  seconds: number;
  clients: number;
  loadMs: number;
  parallel: number;
  chunks: number;
  chunkMs: number;
}

function options(): Args {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      clients: { type: 'string', default: '32' },
      'load-ms': { type: 'string', default: '2000' },
      parallel: { type: 'string', default: '2' },
      chunks: { type: 'string', default: '10' },
      'chunk-ms': { type: 'string', default: '20' },
    },
  });
  return {
    seconds: Number(values.seconds),
    clients: Number(values.clients),
    loadMs: Number(values['load-ms']),
    parallel: Number(values.parallel),
    chunks: Number(values.chunks),
    chunkMs: Number(values['chunk-ms']),
  };
}

/** A small seeded PRNG (mulberry32), so both modes ask for the same models in the same order. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pickModel(random: () => number): string {
  let r = random();
  for (const { model, weight } of MIX) {
    if (r < weight) return model;
    r -= weight;
  }
  return MIX[MIX.length - 1]!.model;
}

/** What a plain Service does: each new request to the next backend, bodies piped through. */
async function startRoundRobin(
  targets: readonly string[],
): Promise<{ url: string; close(): Promise<void> }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  let next = 0;
  const server = http.createServer((req, res) => {
    const target = new URL(req.url ?? '/', targets[next++ % targets.length]);
    const upstream = http.request(
      target,
      { method: req.method, headers: req.headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface ModeResult {
  mode: string;
  completed: number;
  failed: number;
  loads: number;
  p50Ms: number;
  p99Ms: number;
}

/** Closed-loop clients for `seconds`: each sends its next request when the last one answered. */
async function drive(url: string, args: Args): Promise<{ latencies: number[]; failed: number }> {
  const dispatcher = new Agent({ connections: args.clients * 2, keepAliveTimeout: 30_000 });
  const latencies: number[] = [];
  let failed = 0;
  const end = Date.now() + args.seconds * 1000;
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), args.seconds * 1000);
  const client = async (i: number): Promise<void> => {
    const random = seeded(1000 + i);
    let turn = 0;
    while (Date.now() < end) {
      const model = pickModel(random);
      const started = performance.now();
      try {
        const res = await request(`${url}/api/chat`, {
          method: 'POST',
          dispatcher,
          signal: stop.signal,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model,
            messages: [{ role: 'user', content: `client ${i} turn ${turn}` }],
            stream: false,
          }),
        });
        await res.body.text();
        if (res.statusCode === 200) latencies.push(performance.now() - started);
        else failed += 1;
      } catch {
        if (!stop.signal.aborted) failed += 1;
      }
      turn += 1;
    }
  };
  await Promise.all(Array.from({ length: args.clients }, (_, i) => client(i)));
  clearTimeout(timer);
  await dispatcher.close();
  return { latencies, failed };
}

async function startBackends(args: Args): Promise<OllamaSimulator[]> {
  return Promise.all(
    [0, 1, 2].map(() =>
      startOllamaSimulator({
        models: MODELS,
        maxLoadedModels: 1,
        loadDelayMs: args.loadMs,
        numParallel: args.parallel,
        chunksPerReply: args.chunks,
        chunkLatencyMs: args.chunkMs,
      }),
    ),
  );
}

async function runMode(mode: 'gateway' | 'round-robin', args: Args): Promise<ModeResult> {
  const sims = await startBackends(args);
  const forget = setInterval(() => sims.forEach((s) => (s.requests.length = 0)), 1000);
  let stopFront: () => Promise<void>;
  let url: string;
  if (mode === 'gateway') {
    const service = await startService(sims[0]!.url, {
      model: MIX[0]!.model,
      env: {
        OLLAMA_HOSTS: sims.map((s) => s.url).join(','),
        OLLAMA_MAX_CONCURRENCY: String(args.parallel),
        OLLAMA_PRELOAD: 'false',
        QUEUE_TIMEOUT_MS: '600000',
        OLLAMA_HEALTH_TTL_MS: '1000',
      },
    });
    url = service.url;
    stopFront = () => service.stop();
  } else {
    const proxy = await startRoundRobin(sims.map((s) => s.url));
    url = proxy.url;
    stopFront = () => proxy.close();
  }
  try {
    const { latencies, failed } = await drive(url, args);
    latencies.sort((a, b) => a - b);
    return {
      mode,
      completed: latencies.length,
      failed,
      loads: sims.reduce((n, s) => n + s.counts().loads, 0),
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
    };
  } finally {
    clearInterval(forget);
    await stopFront();
    await Promise.all(sims.map((s) => s.close()));
  }
}

function table(results: ModeResult[], args: Args): string {
  const head = `| routing | completed | failed | model loads | p50 latency | p99 latency |`;
  const rule = `| --- | ---: | ---: | ---: | ---: | ---: |`;
  const rows = results.map(
    (r) =>
      `| ${r.mode} | ${r.completed} | ${r.failed} | ${r.loads} | ${Math.round(r.p50Ms)} ms | ${Math.round(r.p99Ms)} ms |`,
  );
  const [gw, rr] = results;
  const ratio =
    gw && rr
      ? `gateway vs round-robin: ${(rr.loads / Math.max(1, gw.loads)).toFixed(1)}× fewer loads, ${(gw.completed / Math.max(1, rr.completed)).toFixed(1)}× the completed requests`
      : '';
  const setup = `3 backends (room for 1 loaded model, ${args.loadMs} ms load, ${args.parallel} parallel, ${args.chunks} chunks × ${args.chunkMs} ms), mix ${MIX.map((m) => `${m.model} ${m.weight * 100}%`).join(' / ')}, ${args.clients} clients, ${args.seconds} s`;
  return [setup, '', head, rule, ...rows, '', ratio].join('\n');
}

async function main(): Promise<void> {
  const args = options();
  const results: ModeResult[] = [];
  for (const mode of ['gateway', 'round-robin'] as const) {
    process.stderr.write(`running ${mode} for ${args.seconds} s…\n`);
    results.push(await runMode(mode, args));
  }
  process.stdout.write(`${table(results, args)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
