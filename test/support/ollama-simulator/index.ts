import { EventEmitter } from 'node:events';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createCatalog, DEFAULT_MODELS, DEFAULT_PULLABLE } from './catalog';
import { realClock } from './clock';
import type { SimClock } from './clock';
import type { SimCore } from './core';
import { GenerationLog } from './generations';
import { loadFailure } from './model-failures';
import { parseKeepAlive } from './keep-alive';
import { Knobs } from './knobs';
import { createRoutes, handleRequest } from './router';
import { Scheduler } from './scheduler';
import type {
  OllamaSimulator,
  SimCloudAnswer,
  SimEvent,
  SimEventType,
  SimFailScope,
  SimGate,
  SimGeneration,
  SimLoadCounts,
  SimLoadedModel,
  SimModelFailure,
  SimModelFailureKind,
  SimReply,
  SimRequestLog,
  SimulatorOptions,
} from './types';

export type * from './types';
export type { ManualSimClock, SimClock } from './clock';
export { createManualClock } from './clock';
export { SERVER_BUSY } from './http-io';
export { MODEL_FAILURE_TEXT } from './model-failures';
export { collectNdjson } from './ndjson';

/** The simulator: a real `node:http` server plus the fake Ollama state behind it. */
class Simulator extends EventEmitter implements OllamaSimulator {
  readonly requests: SimRequestLog[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  readonly clock: SimClock;
  private readonly knobs: Knobs;
  private readonly scheduler: Scheduler;
  private readonly generationLog: GenerationLog;
  private readonly lifetime = new AbortController();
  private open = 0;
  private seq = 0;
  private boundPort: number;
  private closed = false;

  constructor(private readonly opts: SimulatorOptions) {
    super();
    this.boundPort = opts.port ?? 0;
    this.clock = opts.clock ?? realClock(opts.now ?? Date.now);
    const now = opts.now ?? (() => this.clock.now());
    const emit = (e: SimEvent) => void this.emit(e.type, e);
    this.knobs = new Knobs(opts, this.clock);
    this.generationLog = new GenerationLog(() => this.clock.now(), emit);
    this.generationLog.recording = opts.recordGenerations ?? false;
    this.scheduler = new Scheduler({
      numParallel: opts.numParallel ?? 1,
      maxQueue: opts.maxQueue ?? 512,
      maxLoadedModels: opts.maxLoadedModels ?? 3,
      defaultKeepAliveMs: parseKeepAlive(opts.defaultKeepAlive ?? '5m') ?? 300_000,
      loadDelayMs: (model) => this.knobs.loadDelayFor(model.name),
      loadOutcome: (model) => loadFailure(this.knobs.modelFailure(model.name)),
      clock: this.clock,
      emit,
      lifetime: this.lifetime.signal,
    });
    const core: SimCore = {
      version: opts.version ?? '0.12.6',
      chunksPerReply: opts.chunksPerReply ?? 5,
      catalog: createCatalog(opts.models ?? DEFAULT_MODELS, now),
      pullable: createCatalog(opts.pullable ?? DEFAULT_PULLABLE, now),
      scheduler: this.scheduler,
      knobs: this.knobs,
      now,
      clock: this.clock,
      generations: this.generationLog,
      contextLength: opts.contextLength,
      autoNumCtx: opts.autoNumCtx ?? 4096,
      remotes: opts.remotes ?? ['ollama.com'],
      emit,
    };
    const deps = {
      core,
      routes: createRoutes(),
      nextId: () => (this.seq += 1),
      log: (entry: SimRequestLog) => void this.requests.push(entry),
      lifetime: () => this.lifetime.signal,
      track: (delta: 1 | -1) => void (this.open += delta),
    };
    this.server = createServer((req, res) => void handleRequest(deps, req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    return `http://${this.opts.hostname ?? '127.0.0.1'}:${this.boundPort}`;
  }

  start(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('simulator is closed'));
    if (this.server.listening) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.boundPort, this.opts.hostname ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        this.boundPort = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  stop(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    return done;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.knobs.reset();
    this.lifetime.abort();
    this.scheduler.clearTimers();
    await this.stop();
  }

  script(model: string, ...replies: SimReply[]): void {
    this.knobs.script(model, replies);
  }

  setChunkLatency(ms: number): void {
    this.knobs.chunkLatencyMs = ms;
  }

  setLoadDelay(ms: number, model?: string): void {
    this.knobs.setLoadDelay(ms, model);
  }

  failModel(model: string, failure: SimModelFailure | SimModelFailureKind | undefined): void {
    this.knobs.failModel(model, typeof failure === 'string' ? { kind: failure } : failure);
  }

  hangFor(ms: number): void {
    this.knobs.hangFor(ms);
  }

  failFor(ms: number, status = 500, message?: string, scope: SimFailScope = 'inference'): void {
    this.knobs.failFor(ms, status, message, scope);
  }

  setCloud(answer: SimCloudAnswer): void {
    this.knobs.cloud = answer;
  }

  counts(model?: string): SimLoadCounts {
    return this.scheduler.counts(model);
  }

  recordGenerations(on = true): void {
    this.generationLog.recording = on;
  }

  get generations(): SimGeneration[] {
    return this.generationLog.entries;
  }

  maxConcurrency(model?: string): number {
    return this.generationLog.maxConcurrency(model);
  }

  failNext(n: number, status: number, message?: string, scope: SimFailScope = 'inference'): void {
    this.knobs.failNext(n, status, message, scope);
  }

  errorMidStream(afterChunks: number, message?: string, times = 1): void {
    const text = message ?? 'an error was encountered while running the model';
    this.knobs.addFault({ kind: 'error', afterChunks, message: text }, times);
  }

  dropMidStream(afterChunks: number, times = 1): void {
    this.knobs.addFault({ kind: 'drop', afterChunks, message: '' }, times);
  }

  hang(on: boolean | number): void {
    this.knobs.hang(on);
  }

  hold(): SimGate {
    return this.knobs.hold();
  }

  reset(): void {
    this.knobs.reset();
    this.requests.length = 0;
    this.generationLog.reset();
  }

  inFlight(): number {
    return this.open;
  }

  loaded(): SimLoadedModel[] {
    return [...this.scheduler.table.values()]
      .filter((e) => !e.loading)
      .map((e) => ({
        name: e.model.name,
        expiresAt: new Date(e.expiresAt),
        keepAliveMs: e.keepAliveMs,
        numCtx: e.runner.numCtx,
      }));
  }

  waitFor(event: SimEventType, predicate?: (e: SimEvent) => boolean): Promise<SimEvent> {
    return new Promise((resolve) => {
      const listener = (e: SimEvent) => {
        if (predicate && !predicate(e)) return;
        this.off(event, listener);
        resolve(e);
      };
      this.on(event, listener);
    });
  }
}

/** Start a simulator on `hostname` (default 127.0.0.1), port 0. Close it with close(). */
export async function startOllamaSimulator(opts: SimulatorOptions = {}): Promise<OllamaSimulator> {
  const sim = new Simulator(opts);
  await sim.start();
  return sim;
}
