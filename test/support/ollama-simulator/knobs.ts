import { SERVER_BUSY } from './http-io';
import type { SimFailScope, SimGate, SimReply, SimulatorOptions } from './types';
import { canonicalName } from './catalog';

const RUNNER_ERROR = 'an error was encountered while running the model';

export interface FailSpec {
  status: number;
  message: string;
}

/** What a claimed mid-stream fault does once `afterChunks` chunks have been written. */
export interface StreamFault {
  kind: 'error' | 'drop';
  afterChunks: number;
  message: string;
}

interface Waiter {
  resolve: (credit: number) => void;
}

/**
 * The pause point behind hold(). A stream calls `pass()` before each chunk after its first;
 * the returned credit lets step(n) advance a stream n chunks with one call.
 */
export class Gate implements SimGate {
  private waiters: Waiter[] = [];
  private released = false;

  get held(): number {
    return this.waiters.length;
  }

  get open(): boolean {
    return this.released;
  }

  pass(signal: AbortSignal): Promise<number> {
    if (this.released || signal.aborted) return Promise.resolve(0);
    return new Promise((resolve) => {
      const waiter: Waiter = { resolve };
      this.waiters.push(waiter);
      signal.addEventListener(
        'abort',
        () => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(0);
        },
        { once: true },
      );
    });
  }

  step(n = 1): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const waiter of waiting) waiter.resolve(Math.max(0, n - 1));
  }

  release(): void {
    this.released = true;
    this.step(1);
  }
}

/** All fault-injection and scripting state; reset() returns it to the construction options. */
export class Knobs {
  chunkLatencyMs = 0;
  loadDelayMs = 0;
  gate: Gate | undefined;
  private scripts = new Map<string, SimReply[]>();
  private fails: Array<FailSpec & { scope: SimFailScope }> = [];
  private faults: StreamFault[] = [];
  private hangCount = 0;
  private hangAll = false;
  private hangWaiters: Array<() => void> = [];

  constructor(private readonly opts: SimulatorOptions) {
    this.reset();
  }

  reset(): void {
    this.chunkLatencyMs = this.opts.chunkLatencyMs ?? 0;
    this.loadDelayMs = this.opts.loadDelayMs ?? 0;
    this.scripts.clear();
    this.fails = [];
    this.faults = [];
    this.gate?.release();
    this.gate = undefined;
    this.hang(false);
  }

  script(model: string, replies: SimReply[]): void {
    const key = canonicalName(model).toLowerCase();
    this.scripts.set(key, [...(this.scripts.get(key) ?? []), ...replies]);
  }

  nextScript(model: string): SimReply | undefined {
    return this.scripts.get(canonicalName(model).toLowerCase())?.shift();
  }

  failNext(n: number, status: number, message: string | undefined, scope: SimFailScope): void {
    const text = message ?? (status === 503 ? SERVER_BUSY : RUNNER_ERROR);
    for (let i = 0; i < n; i += 1) this.fails.push({ status, message: text, scope });
  }

  takeFailure(inference: boolean): FailSpec | undefined {
    const index = this.fails.findIndex((f) => f.scope === 'any' || inference);
    return index === -1 ? undefined : this.fails.splice(index, 1)[0];
  }

  addFault(fault: StreamFault, times: number): void {
    for (let i = 0; i < times; i += 1) this.faults.push(fault);
  }

  /** Each stream claims at most one queued fault when it starts. */
  takeFault(): StreamFault | undefined {
    return this.faults.shift();
  }

  hold(): Gate {
    this.gate?.release();
    this.gate = new Gate();
    return this.gate;
  }

  /** The gate to wait on before a non-first chunk, if holding is on. */
  activeGate(): Gate | undefined {
    return this.gate && !this.gate.open ? this.gate : undefined;
  }

  hang(on: boolean | number): void {
    if (typeof on === 'number') {
      this.hangCount = on;
      return;
    }
    this.hangAll = on;
    if (!on) {
      this.hangCount = 0;
      const waiting = this.hangWaiters;
      this.hangWaiters = [];
      for (const resume of waiting) resume();
    }
  }

  /** Whether this request must hang; if so, a promise that resolves on hang(false)/reset(). */
  takeHang(): Promise<void> | undefined {
    if (!this.hangAll && this.hangCount <= 0) return undefined;
    if (!this.hangAll) this.hangCount -= 1;
    return new Promise((resolve) => this.hangWaiters.push(resolve));
  }
}
