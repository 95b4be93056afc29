/**
 * One connection, one request at a time: what a run adds over calling the simulator directly,
 * and how fast and unbatched the first streamed token is. Direct and gateway requests are
 * interleaved so both see the same machine noise.
 */
import http from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { ms, timedPost, type Timed } from './client';
import { readSyscalls } from './proc';
import type { SimProcess } from './processes';
import { percentile } from './stats';

export interface LatencyFigures {
  direct_p50_ms: number;
  direct_p99_ms: number;
  gateway_p50_ms: number;
  gateway_p99_ms: number;
  /** gateway minus direct, per percentile. */
  added_p50_ms: number;
  added_p99_ms: number;
  /** Whole streamed answers (a streamed run streams from Ollama too). */
  direct_stream_p50_ms: number;
  gateway_stream_p50_ms: number;
  direct_ttft_p50_ms: number;
  gateway_ttft_p50_ms: number;
  added_ttft_p50_ms: number;
  added_ttft_p99_ms: number;
  /** From the simulator writing the first chunk to the client reading the first delta. */
  first_token_after_sim_p50_ms: number;
  first_token_after_sim_p99_ms: number;
  /** The same through no gateway (client reading the first NDJSON chunk): the floor. */
  direct_first_token_after_sim_p50_ms: number;
  /** Tokens per streamed answer: simulator content chunks vs SSE message.delta events. */
  chunks_per_stream: number;
  deltas_per_stream: number;
  /** Gateway streams whose delta count differed from the chunk count, or that did not complete. */
  bad_streams: number;
  /**
   * The same Ollama requests through the bare proxy (when the target names one): what any
   * process between the client and Ollama adds on this host, read beside the gateway's.
   */
  proxy_added_p50_ms?: number;
  proxy_first_token_after_sim_p50_ms?: number;
}

export interface LatencyTarget {
  serviceUrl: string;
  sim: SimProcess;
  model: string;
  runBody: Record<string, unknown>;
  /** The bare proxy (bench/bare-proxy): its requests are interleaved with the others. */
  proxyUrl?: string;
}

function chatBody(model: string, stream: boolean): Record<string, unknown> {
  return { model, messages: [{ role: 'user', content: 'hi' }], stream };
}

/** The simulator's first-chunk stamp that falls inside a request's lifetime. */
/** For each stream, ms from the simulator writing its first chunk to the client reading it. */
export function afterSimMs(stamps: bigint[], list: Timed[]): number[] {
  return list.flatMap((t) => {
    const sent = simFirstChunk(stamps, t);
    return sent !== undefined && t.firstToken !== undefined ? [ms(sent, t.firstToken)] : [];
  });
}

function simFirstChunk(stamps: bigint[], t: Timed): bigint | undefined {
  return stamps.find((s) => s >= t.start && s <= (t.firstToken ?? t.end));
}

export async function runLatency(
  target: LatencyTarget,
  iterations: number,
): Promise<LatencyFigures> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const { serviceUrl, sim, model, runBody, proxyUrl } = target;
  const direct: number[] = [];
  const gateway: number[] = [];
  const proxied: number[] = [];
  const directStreams: Timed[] = [];
  const gatewayStreams: Timed[] = [];
  const proxyStreams: Timed[] = [];
  await sim.command('firsts'); // forget earlier stamps
  try {
    for (let i = 0; i < iterations; i += 1) {
      const d = await timedPost(agent, `${sim.url}/api/chat`, chatBody(model, false), 'json');
      const g = await timedPost(agent, `${serviceUrl}/agents/run`, runBody, 'json');
      if (d.status !== 200 || g.status !== 200) {
        throw new Error(`non-streamed run answered ${g.status} (direct ${d.status})`);
      }
      direct.push(ms(d.start, d.end));
      gateway.push(ms(g.start, g.end));
      directStreams.push(
        await timedPost(agent, `${sim.url}/api/chat`, chatBody(model, true), 'ndjson'),
      );
      gatewayStreams.push(
        await timedPost(agent, `${serviceUrl}/agents/run`, { ...runBody, stream: true }, 'sse'),
      );
      if (proxyUrl === undefined) continue;
      const p = await timedPost(agent, `${proxyUrl}/api/chat`, chatBody(model, false), 'json');
      if (p.status !== 200) throw new Error(`the bare proxy answered ${p.status}`);
      proxied.push(ms(p.start, p.end));
      proxyStreams.push(
        await timedPost(agent, `${proxyUrl}/api/chat`, chatBody(model, true), 'ndjson'),
      );
    }
  } finally {
    agent.destroy();
  }
  const stamps = ((await sim.command('firsts')).firsts as string[]).map((s) => BigInt(s));
  const total = (list: Timed[]) => list.map((t) => ms(t.start, t.end));
  const ttft = (list: Timed[]) => list.map((t) => ms(t.start, t.firstToken ?? t.end));
  const afterSim = (list: Timed[]) => afterSimMs(stamps, list);
  const chunks = percentile(
    directStreams.map((t) => t.tokens),
    50,
  );
  const gatewayAfterSim = afterSim(gatewayStreams);
  return {
    direct_p50_ms: percentile(direct, 50),
    direct_p99_ms: percentile(direct, 99),
    gateway_p50_ms: percentile(gateway, 50),
    gateway_p99_ms: percentile(gateway, 99),
    added_p50_ms: percentile(gateway, 50) - percentile(direct, 50),
    added_p99_ms: percentile(gateway, 99) - percentile(direct, 99),
    direct_stream_p50_ms: percentile(total(directStreams), 50),
    gateway_stream_p50_ms: percentile(total(gatewayStreams), 50),
    direct_ttft_p50_ms: percentile(ttft(directStreams), 50),
    gateway_ttft_p50_ms: percentile(ttft(gatewayStreams), 50),
    added_ttft_p50_ms: percentile(ttft(gatewayStreams), 50) - percentile(ttft(directStreams), 50),
    added_ttft_p99_ms: percentile(ttft(gatewayStreams), 99) - percentile(ttft(directStreams), 99),
    first_token_after_sim_p50_ms: percentile(gatewayAfterSim, 50),
    first_token_after_sim_p99_ms: percentile(gatewayAfterSim, 99),
    direct_first_token_after_sim_p50_ms: percentile(afterSim(directStreams), 50),
    chunks_per_stream: chunks,
    deltas_per_stream: percentile(
      gatewayStreams.map((t) => t.tokens),
      50,
    ),
    bad_streams: gatewayStreams.filter(
      (t) => t.tokens !== chunks || t.lastEvent !== 'run.completed',
    ).length,
    ...(proxyUrl !== undefined
      ? {
          proxy_added_p50_ms: percentile(proxied, 50) - percentile(direct, 50),
          proxy_first_token_after_sim_p50_ms: percentile(afterSim(proxyStreams), 50),
        }
      : {}),
  };
}

export interface PacedFigures {
  streams: number;
  deltas_per_stream: number;
  /**
   * The write system calls of the service's event loop (its main thread) per stream, less what
   * it writes when idle: the median of the streams, each counted on its own, so a burst of
   * other work during one stream does not move it. At least one per chunk when every chunk is
   * written as it arrives.
   */
  writes_per_stream: number;
  /** The most event-loop writes of any one stream (the median's spread). */
  writes_per_stream_max: number;
  /**
   * Tokens the client read together with an earlier one. For information only: a busy
   * machine can delay the client past two writes, so this can be non-zero while the service
   * wrote every chunk on its own.
   */
  batched_reads: number;
}

/**
 * Write system calls per millisecond the service's event loop makes while idle (background):
 * the quietest of five windows, so the end of earlier work in one of them is not taken for it.
 */
async function idleWriteRate(pid: number, windowMs: number): Promise<number> {
  const rates: number[] = [];
  for (let i = 0; i < 5; i += 1) {
    const before = await readSyscalls(pid, { mainThread: true });
    const started = performance.now();
    await delay(windowMs);
    const writes = (await readSyscalls(pid, { mainThread: true })).writes - before.writes;
    rates.push(writes / (performance.now() - started));
  }
  return Math.min(...rates);
}

/**
 * Streams with the simulator pacing chunks `paceMs` apart, so each chunk reaches the service
 * on its own: each must leave in its own write. (In fast mode the chunks arrive together and
 * Node's socket may flush several buffered writes in one writev; that adds no delay.)
 */
export async function runPacedStreams(
  target: LatencyTarget & { servicePid: number },
  streams: number,
  paceMs: number,
): Promise<PacedFigures> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const idleRate = await idleWriteRate(target.servicePid, 100);
  await target.sim.command(`latency ${paceMs}`);
  const results: Timed[] = [];
  const writes = async () => (await readSyscalls(target.servicePid, { mainThread: true })).writes;
  const perStream: number[] = [];
  try {
    for (let i = 0; i < streams; i += 1) {
      const body = { ...target.runBody, stream: true };
      const before = await writes();
      const started = performance.now();
      results.push(await timedPost(agent, `${target.serviceUrl}/agents/run`, body, 'sse'));
      const after = await writes();
      perStream.push(after - before - idleRate * (performance.now() - started));
    }
  } finally {
    agent.destroy();
    await target.sim.command('latency 0');
  }
  return {
    streams,
    deltas_per_stream: percentile(
      results.map((t) => t.tokens),
      50,
    ),
    writes_per_stream: percentile(perStream, 50),
    writes_per_stream_max: Math.max(...perStream),
    batched_reads: results.reduce((sum, t) => sum + t.batchedReads, 0),
  };
}
