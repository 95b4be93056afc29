import type { ServerResponse } from 'node:http';
import { aborted, NDJSON_TYPE, sendJson } from './http-io';
import { sleepOn } from './clock';
import type { SimClock } from './clock';
import type { Knobs, StreamFault } from './knobs';
import type { SimEvent } from './types';

export interface StreamTarget {
  res: ServerResponse;
  signal: AbortSignal;
  knobs: Knobs;
  clock: SimClock;
  /** A fault for this stream only, instead of one claimed from the queue. */
  fault?: StreamFault;
  requestId: number;
  path: string;
  emit: (e: SimEvent) => void;
  /** Marks a socket the simulator destroyed on purpose, so it is not reported as 'aborted'. */
  markDropped: () => void;
}

/**
 * `ndjson` and `sse` stream the chunks; `json` is a non-streamed answer (`stream: false`):
 * Ollama generates it chunk by chunk all the same, then writes only the final object.
 */
export type StreamFormat = 'ndjson' | 'sse' | 'json';

/**
 * Writes one streamed response chunk by chunk, each chunk a separate write (so the client sees
 * them arrive separately), applying latency, the hold() gate and at most one mid-stream fault.
 * A fault fires before chunk number `afterChunks`, or before the final chunk if the stream is
 * shorter, so the final `done` object is never written.
 *
 * In `json` format the chunks are generated the same way (same pacing, gate, `chunk` events
 * and faults) but only the final object is written, as one JSON answer; a mid-generation
 * error is then answered 500 `{"error":…}` (nothing was written yet) and a drop closes the
 * connection without an answer.
 */
export class ChunkWriter {
  private index = 0;
  private credit = 0;
  private readonly fault: StreamFault | undefined;

  constructor(
    private readonly target: StreamTarget,
    private readonly format: StreamFormat,
  ) {
    this.fault = target.fault ?? target.knobs.takeFault();
    if (format === 'json') return; // the answer's headers go out with it, at the end
    const type = format === 'sse' ? 'text/event-stream' : NDJSON_TYPE;
    target.res.writeHead(200, { 'Content-Type': type });
  }

  /** Write one chunk; false means stop (client gone, or a fault ended the stream). */
  async send(chunk: unknown, final = false): Promise<boolean> {
    const { res, signal } = this.target;
    if (signal.aborted) return false;
    if (this.index > 0 && !(await this.pace())) return false;
    if (this.fault && (this.index >= this.fault.afterChunks || final)) {
      this.fireFault(this.fault);
      return false;
    }
    if (this.format === 'json') {
      if (final) sendJson(res, 200, chunk);
    } else {
      res.write(this.frame(chunk));
    }
    this.target.emit({
      type: 'chunk',
      requestId: this.target.requestId,
      path: this.target.path,
      index: this.index,
      data: chunk,
    });
    this.index += 1;
    if (final && this.format !== 'json') {
      if (this.format === 'sse') res.write('data: [DONE]\n\n');
      res.end();
    }
    return true;
  }

  /**
   * Send nothing for `ms` on the simulator's clock, as Ollama does while a model generates a
   * tool call (§4.2); false when the client went away meanwhile.
   */
  async silence(ms: number): Promise<boolean> {
    const { signal, clock } = this.target;
    return (await sleepOn(clock, ms, signal)) && !signal.aborted;
  }

  private async pace(): Promise<boolean> {
    const { signal, knobs, clock } = this.target;
    if (knobs.chunkLatencyMs > 0 && !(await sleepOn(clock, knobs.chunkLatencyMs, signal))) {
      return false;
    }
    // An Ollama that hangs (hangFor) stops sending mid-stream too.
    const hung = knobs.hangWindowOpen();
    if (hung) await Promise.race([hung, aborted(signal)]);
    const gate = knobs.activeGate();
    if (gate) {
      if (this.credit > 0) this.credit -= 1;
      else this.credit = await gate.pass(signal);
    }
    return !signal.aborted;
  }

  private frame(chunk: unknown): string {
    const json = JSON.stringify(chunk);
    return this.format === 'sse' ? `data: ${json}\n\n` : `${json}\n`;
  }

  private fireFault(fault: StreamFault): void {
    const { res } = this.target;
    fault.onFire?.();
    if (fault.kind === 'drop') {
      this.target.markDropped();
      // FIN, not RST: chunks already written still reach the client, then the body stops
      // without its terminating chunk, which the client sees as a cut connection.
      res.socket?.end();
      return;
    }
    if (this.format === 'json') {
      sendJson(res, 500, { error: fault.message });
      return;
    }
    const body =
      this.format === 'sse' ? { error: { message: fault.message } } : { error: fault.message };
    res.end(this.frame(body));
  }
}
