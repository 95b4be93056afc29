/**
 * The Ollama simulator in its own process, so its CPU is not charged to the service or to the
 * load generator. Prints one JSON line `{"url":…}` once listening, then obeys one command per
 * stdin line and answers each with one JSON line:
 *   hold            pause every stream after its first chunk (SimGate)
 *   release         let held streams finish; new streams are not held
 *   latency <ms>    delay between streamed chunks
 *   stats           {"inFlight":n,"held":n}
 *   firsts          {"firsts":[ns…]}: process.hrtime (CLOCK_MONOTONIC, the same clock in every
 *                   process) of each stream's first chunk since the last `firsts`
 * Usage: node dist/bench/sim-process.js [chunksPerReply]
 */
import { setMaxListeners } from 'node:events';
import { createInterface } from 'node:readline';
import {
  startOllamaSimulator,
  type SimEvent,
  type SimGate,
} from '../test/support/ollama-simulator';

async function main(): Promise<void> {
  // Hundreds of held streams each listen on the simulator's lifetime signal: expected here.
  setMaxListeners(0);
  const chunksPerReply = Number(process.argv[2] ?? 50);
  const sim = await startOllamaSimulator({
    chunksPerReply,
    chunkLatencyMs: 0,
    loadDelayMs: 0,
    // Enough slots that the simulator never queues the bench's 500 open streams.
    numParallel: 1024,
    maxQueue: 4096,
  });
  // The request log keeps every body; a bench sends hundreds of thousands of requests.
  const forget = setInterval(() => (sim.requests.length = 0), 500);
  let gate: SimGate | undefined;
  let firsts: string[] = [];
  sim.on('chunk', (e: SimEvent) => {
    if (e.index === 0) firsts.push(process.hrtime.bigint().toString());
  });

  const answer = (reply: Record<string, unknown>): void => {
    process.stdout.write(`${JSON.stringify(reply)}\n`);
  };
  const commands: Record<string, (arg: string | undefined) => Record<string, unknown>> = {
    hold: () => {
      gate = sim.hold();
      return { ok: true };
    },
    release: () => {
      gate?.release();
      gate = undefined;
      return { ok: true };
    },
    latency: (arg) => {
      sim.setChunkLatency(Number(arg ?? 0));
      return { ok: true };
    },
    stats: () => ({ ok: true, inFlight: sim.inFlight(), held: gate?.held ?? 0 }),
    firsts: () => {
      const reply = { ok: true, firsts };
      firsts = [];
      return reply;
    },
  };

  createInterface({ input: process.stdin })
    .on('line', (line) => {
      const [name, arg] = line.trim().split(/\s+/);
      const command = commands[name ?? ''];
      answer(command ? command(arg) : { ok: false, error: `unknown command: ${line}` });
    })
    .on('close', () => {
      // The parent went away (or closed stdin on purpose): shut down.
      clearInterval(forget);
      gate?.release();
      void sim.close().then(() => process.exit(0));
    });
  answer({ url: sim.url });
}

void main();
