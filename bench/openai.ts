/**
 * The first token of a streamed `/v1/chat/completions` through the gateway against the same
 * request sent straight to the simulator's `/v1/chat/completions`, one connection, interleaved:
 * how long after the simulator wrote its first chunk the client read it, each way.
 */
import http from 'node:http';
import { timedPost, type Timed } from './client';
import { afterSimMs } from './latency';
import type { SimProcess } from './processes';
import { percentile } from './stats';

export interface OpenAiLatencyFigures {
  /** Gateway: simulator's first chunk → client's first content delta. */
  first_token_after_sim_p50_ms: number;
  first_token_after_sim_p99_ms: number;
  /** The same straight from the simulator: the floor. */
  direct_first_token_after_sim_p50_ms: number;
  /** Gateway minus direct, p50: what the gateway adds to the first token. */
  first_token_added_p50_ms: number;
  /** Gateway streams that did not end in `[DONE]` or lost a token. */
  bad_streams: number;
}

export async function runOpenAiLatency(
  target: { serviceUrl: string; sim: SimProcess; model: string },
  iterations: number,
): Promise<OpenAiLatencyFigures> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const body = { model: target.model, messages: [{ role: 'user', content: 'hi' }], stream: true };
  const direct: Timed[] = [];
  const gateway: Timed[] = [];
  await target.sim.command('firsts'); // forget earlier stamps
  try {
    for (let i = 0; i < iterations; i += 1) {
      direct.push(await timedPost(agent, `${target.sim.url}/v1/chat/completions`, body, 'openai'));
      gateway.push(
        await timedPost(agent, `${target.serviceUrl}/v1/chat/completions`, body, 'openai'),
      );
    }
  } finally {
    agent.destroy();
  }
  const stamps = ((await target.sim.command('firsts')).firsts as string[]).map((s) => BigInt(s));
  const afterSim = (list: Timed[]) => afterSimMs(stamps, list);
  const tokens = percentile(
    direct.map((t) => t.tokens),
    50,
  );
  const g = afterSim(gateway);
  const d = afterSim(direct);
  return {
    first_token_after_sim_p50_ms: percentile(g, 50),
    first_token_after_sim_p99_ms: percentile(g, 99),
    direct_first_token_after_sim_p50_ms: percentile(d, 50),
    first_token_added_p50_ms: percentile(g, 50) - percentile(d, 50),
    bad_streams: gateway.filter((t) => t.tokens !== tokens || t.lastEvent !== '[DONE]').length,
  };
}
