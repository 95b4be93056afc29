import { SERVER_BUSY } from './http-io';
import type {
  SimCloudAnswer,
  SimFailScope,
  SimGate,
  SimModelFailure,
  SimReply,
  SimulatorOptions,
} from './types';
import { canonicalName } from './catalog';
import type { SimClock } from './clock';

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
  /** Called when the fault fires (a crashed runner leaves the loaded table). */
  onFire?: () => void;
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
  private loadDelays = new Map<string, number>();
  private modelFailures = new Map<string, SimModelFailure>();
  private hangWindow: { until: number; over: Promise<void>; end: () => void } | undefined;
  private failWindow: (FailSpec & { scope: SimFailScope; until: number }) | undefined;
  cloud: SimCloudAnswer = 'unauthorized';

  constructor(
    private readonly opts: SimulatorOptions,
    private readonly clock: SimClock,
  ) {
    this.reset();
  }

  reset(): void {
    this.chunkLatencyMs = this.opts.chunkLatencyMs ?? 0;
    this.loadDelayMs = this.opts.loadDelayMs ?? 0;
    this.loadDelays.clear();
    this.modelFailures.clear();
    this.failWindow = undefined;
    this.cloud = 'unauthorized';
    this.scripts.clear();
    this.fails = [];
    this.faults = [];
    this.gate?.release();
    this.gate = undefined;
    this.hang(false);
  }

  setLoadDelay(ms: number, model?: string): void {
    if (model === undefined) this.loadDelayMs = ms;
    else this.loadDelays.set(canonicalName(model).toLowerCase(), ms);
  }

  loadDelayFor(model: string): number {
    return this.loadDelays.get(model.toLowerCase()) ?? this.loadDelayMs;
  }

  failModel(model: string, failure: SimModelFailure | undefined): void {
    const key = canonicalName(model).toLowerCase();
    if (failure) this.modelFailures.set(key, failure);
    else this.modelFailures.delete(key);
  }

  modelFailure(model: string): SimModelFailure | undefined {
    return this.modelFailures.get(model.toLowerCase());
  }

  /** Requests and chunks wait while now < until; the window ends on the simulator's clock. */
  hangFor(ms: number): void {
    this.hangWindow?.end();
    const until = this.clock.now() + ms;
    let end: () => void = () => undefined;
    const over = new Promise<void>((resolve) => (end = resolve));
    const cancel = this.clock.after(ms, end);
    this.hangWindow = { until, over, end: () => (cancel(), end()) };
  }

  /** The end of the hang window, when one is open now. */
  hangWindowOpen(): Promise<void> | undefined {
    const window = this.hangWindow;
    if (!window || this.clock.now() >= window.until) return undefined;
    return window.over;
  }

  failFor(ms: number, status: number, message: string | undefined, scope: SimFailScope): void {
    const text = message ?? (status === 503 ? SERVER_BUSY : RUNNER_ERROR);
    this.failWindow = { status, message: text, scope, until: this.clock.now() + ms };
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
    const window = this.failWindow;
    if (window && this.clock.now() < window.until && (window.scope === 'any' || inference)) {
      return window;
    }
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
      this.hangWindow?.end();
      this.hangWindow = undefined;
      this.hangCount = 0;
      const waiting = this.hangWaiters;
      this.hangWaiters = [];
      for (const resume of waiting) resume();
    }
  }

  /** Whether this request must hang; if so, a promise that resolves on hang(false)/reset(). */
  takeHang(): Promise<void> | undefined {
    const window = this.hangWindowOpen();
    if (window) return window;
    if (!this.hangAll && this.hangCount <= 0) return undefined;
    if (!this.hangAll) this.hangCount -= 1;
    return new Promise((resolve) => this.hangWaiters.push(resolve));
  }
}
