/** The bench's output: budget checks, a printed table and the JSON record. */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LatencyFigures, PacedFigures } from './latency';
import type { LoadFigures } from './load';
import type { OpenAiLatencyFigures } from './openai';
import type { OpenStreamFigures } from './open-streams';
import { median } from './stats';

export interface Summary {
  load: Record<string, LoadFigures>;
  latency: LatencyFigures;
  /** Streamed /v1/chat/completions: the first token through the gateway against direct. */
  openai: OpenAiLatencyFigures;
  paced: PacedFigures;
  openStreams: OpenStreamFigures;
  /** Content chunks in each simulated answer (a streamed run passes this many through). */
  chunksPerReply: number;
  /**
   * Per pair of loads, µs: the CPU per answered run of the service with REDIS_URL minus its
   * twin's (the two ran back to back).
   */
  redisAddedUs?: number[];
}

export interface BudgetLine {
  name: string;
  limit: string;
  measured: string;
  ok: boolean;
}

const f = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** The overhead budget, checked against the medians; CPU also as a ratio to the bare proxy. */
export function checkBudget(s: Summary): BudgetLine[] {
  const cpu = (name: string) => s.load[name]?.cpu_us_per_req ?? NaN;
  const answered = Math.max(cpu('run 16c'), cpu('run 64c'));
  const ratio = cpu('run 16c') / cpu('proxy 16c');
  const perChunk = (cpu('stream 16c') - cpu('run 16c')) / s.chunksPerReply;
  // Against its twin, a service without REDIS_URL that saw the same load at the same times: the
  // median of the differences of its pairs, as bench:ab takes it.
  const redisPairs = s.redisAddedUs ?? [];
  const redisAdded = redisPairs.length > 0 ? median(redisPairs) : NaN;
  const rssAfterLoad = Math.max(
    ...Object.entries(s.load)
      .filter(([name]) => !name.startsWith('proxy'))
      .map(([, r]) => r.rss_mb),
  );
  const l = s.latency;
  const v1 = (name: string, proxy: string) => ({
    ratio: cpu(name) / cpu(proxy),
    text: `${f(cpu(name) / cpu(proxy), 2)}× (${f(cpu(name), 0)} / ${f(cpu(proxy), 0)} µs, 16 connections)`,
  });
  const v1Answered = v1('v1 16c', 'proxy v1 16c');
  const v1Streamed = v1('v1 stream 16c', 'proxy v1 stream 16c');
  const o = s.openai;
  return [
    {
      name: 'answered run: service CPU per request',
      limit: '≤ 250 µs',
      measured: `${f(answered, 0)} µs (worst of 16/64 connections)`,
      ok: answered <= 250,
    },
    {
      name: 'answered run: CPU against the bare proxy',
      limit: '≤ 5×',
      measured: `${f(ratio, 2)}× (${f(cpu('run 16c'), 0)} / ${f(cpu('proxy 16c'), 0)} µs, 16 connections)`,
      ok: ratio <= 5,
    },
    ...(s.load['redis run 16c']
      ? [
          {
            name: 'answered run: CPU the Redis store adds (REDIS_URL)',
            limit: '≤ 100 µs',
            measured: `${f(redisAdded, 0)} µs (median of ${redisPairs.map((d) => `${d >= 0 ? '+' : ''}${f(d, 0)}`).join(', ')} against its twin without Redis; medians ${f(cpu('redis run 16c'), 0)} − ${f(cpu('twin run 16c'), 0)} µs)`,
            ok: redisAdded <= 100,
          },
        ]
      : []),
    {
      name: `streamed run: CPU per chunk above an answered run`,
      limit: '≤ 10 µs',
      measured: `${f(perChunk, 2)} µs ((${f(cpu('stream 16c'), 0)} − ${f(cpu('run 16c'), 0)}) / ${s.chunksPerReply})`,
      ok: perChunk <= 10,
    },
    {
      name: 'added latency, one connection, p50',
      limit: '≤ 0.5 ms',
      measured: `${f(l.added_p50_ms, 3)} ms (p99 ${f(l.added_p99_ms, 3)} ms${l.proxy_added_p50_ms !== undefined ? `; bare proxy ${f(l.proxy_added_p50_ms, 3)} ms` : ''})`,
      ok: l.added_p50_ms <= 0.5,
    },
    {
      name: 'first token after the simulator sent it, p50',
      limit: '≤ 0.3 ms',
      measured: `${f(l.first_token_after_sim_p50_ms, 3)} ms (p99 ${f(l.first_token_after_sim_p99_ms, 3)} ms; direct floor ${f(l.direct_first_token_after_sim_p50_ms, 3)} ms${l.proxy_first_token_after_sim_p50_ms !== undefined ? `; bare proxy ${f(l.proxy_first_token_after_sim_p50_ms, 3)} ms` : ''})`,
      ok: l.first_token_after_sim_p50_ms <= 0.3,
    },
    {
      name: 'tokens never batched',
      limit: 'a write per chunk',
      measured: `${l.deltas_per_stream}/${l.chunks_per_stream} deltas per stream, ${l.bad_streams} bad streams; paced: ${f(s.paced.writes_per_stream, 1)} event-loop writes per stream (most ${f(s.paced.writes_per_stream_max, 1)}; ${s.paced.batched_reads} tokens read together)`,
      ok:
        l.deltas_per_stream === l.chunks_per_stream &&
        s.paced.deltas_per_stream === l.chunks_per_stream &&
        s.paced.writes_per_stream >= l.chunks_per_stream &&
        l.bad_streams === 0,
    },
    {
      name: '/v1/chat/completions answered: CPU against the bare proxy',
      limit: '≤ 2×',
      measured: v1Answered.text,
      ok: v1Answered.ratio <= 2,
    },
    {
      name: '/v1/chat/completions streamed: CPU against the bare proxy',
      limit: '≤ 2×',
      measured: v1Streamed.text,
      ok: v1Streamed.ratio <= 2,
    },
    {
      name: '/v1 streamed: first token added over direct, p50',
      limit: '≤ 0.3 ms',
      measured: `${f(o.first_token_added_p50_ms, 3)} ms (${f(o.first_token_after_sim_p50_ms, 3)} after the simulator, direct ${f(o.direct_first_token_after_sim_p50_ms, 3)}; p99 ${f(o.first_token_after_sim_p99_ms, 3)}; ${o.bad_streams} bad streams)`,
      ok: o.first_token_added_p50_ms <= 0.3 && o.bad_streams === 0,
    },
    {
      name: `RSS with ${s.openStreams.streams} open streams`,
      limit: '≤ 150 MB',
      measured: `${f(s.openStreams.rss_open_mb, 1)} MB (${s.openStreams.open} open, idle ${f(s.openStreams.rss_idle_mb, 1)} MB)`,
      ok: s.openStreams.rss_open_mb <= 150 && s.openStreams.open === s.openStreams.streams,
    },
    {
      name: 'RSS after the throughput runs',
      limit: '≤ 200 MB',
      measured: `${f(rssAfterLoad, 1)} MB (largest after any gateway scenario)`,
      ok: rssAfterLoad <= 200,
    },
  ];
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  // Numbers right-aligned, text left-aligned.
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (/^-?[\d.]+$|^n\/a$/.test(c) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function formatSummary(s: Summary, budget: BudgetLine[]): string {
  const load = table(
    [
      'POST /agents/run, v1: /v1/chat/completions (proxy: the same Ollama path)',
      'req/s',
      'p50 ms',
      'p99 ms',
      'CPU µs/req',
      'sim µs/req',
      'reads/req',
      'writes/req',
      'RSS MB',
      'errors',
    ],
    Object.entries(s.load).map(([name, r]) => [
      name,
      f(r.rps, 0),
      f(r.latency_p50_ms, 1),
      f(r.latency_p99_ms, 1),
      f(r.cpu_us_per_req, 0),
      f(r.sim_cpu_us_per_req, 0),
      f(r.reads_per_req, 1),
      f(r.writes_per_req, 1),
      f(r.rss_mb, 1),
      String(r.errors),
    ]),
  );
  const l = s.latency;
  const latency = table(
    ['one connection, sequential', 'p50 ms', 'p99 ms'],
    [
      ['direct /api/chat (non-streamed)', f(l.direct_p50_ms, 3), f(l.direct_p99_ms, 3)],
      ['gateway /agents/run (non-streamed)', f(l.gateway_p50_ms, 3), f(l.gateway_p99_ms, 3)],
      ['added by the gateway', f(l.added_p50_ms, 3), f(l.added_p99_ms, 3)],
      ['whole streamed answer, direct', f(l.direct_stream_p50_ms, 3), ''],
      ['whole streamed answer, gateway', f(l.gateway_stream_p50_ms, 3), ''],
      ['time to first token, direct', f(l.direct_ttft_p50_ms, 3), ''],
      ['time to first token, gateway', f(l.gateway_ttft_p50_ms, 3), ''],
      ['added to first token', f(l.added_ttft_p50_ms, 3), f(l.added_ttft_p99_ms, 3)],
      [
        'first token after the sim sent it',
        f(l.first_token_after_sim_p50_ms, 3),
        f(l.first_token_after_sim_p99_ms, 3),
      ],
      ['  (same, direct: the floor)', f(l.direct_first_token_after_sim_p50_ms, 3), ''],
      ...(l.proxy_added_p50_ms !== undefined && l.proxy_first_token_after_sim_p50_ms !== undefined
        ? [
            ['added by the bare proxy (/api/chat)', f(l.proxy_added_p50_ms, 3), ''],
            [
              'first token after the sim, bare proxy',
              f(l.proxy_first_token_after_sim_p50_ms, 3),
              '',
            ],
          ]
        : []),
    ],
  );
  const checks = table(
    ['budget', 'limit', 'measured', ''],
    budget.map((b) => [b.name, b.limit, b.measured, b.ok ? 'PASS' : 'MISS']),
  );
  return [load, '', latency, '', checks].join('\n');
}

export function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  let commit: string | undefined;
  try {
    // `-dirty` when tracked files differ from the commit: the figures are not that commit's.
    commit = execFileSync('git', ['describe', '--always', '--dirty', '--abbrev=7'], {
      encoding: 'utf8',
    }).trim();
  } catch {
    commit = undefined;
  }
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memory_gb: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    loadavg_at_start: os.loadavg().map((v) => Number(v.toFixed(2))),
    commit,
  };
}

/** Writes the record to bench/results/<date>.json and returns the path. */
export async function writeRecord(record: Record<string, unknown>, date: Date): Promise<string> {
  const dir = path.resolve(__dirname, '..', '..', 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${date.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
  return file;
}
