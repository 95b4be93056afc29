import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Catalog } from './catalog';
import type { SimClock } from './clock';
import type { GenerationLog } from './generations';
import type { Knobs } from './knobs';
import type { Scheduler } from './scheduler';
import type { StreamFault } from './knobs';
import type { StreamFormat, ChunkWriter } from './streams';
import type { SimEvent } from './types';

/** The collaborators every route handler gets; built once per simulator in index.ts. */
export interface SimCore {
  version: string;
  chunksPerReply: number;
  catalog: Catalog;
  pullable: Catalog;
  scheduler: Scheduler;
  knobs: Knobs;
  now: () => number;
  clock: SimClock;
  generations: GenerationLog;
  /** OLLAMA_CONTEXT_LENGTH (explicit default num_ctx), if set. */
  contextLength: number | undefined;
  /** The automatic num_ctx (VRAM tier). */
  autoNumCtx: number;
  /** OLLAMA_REMOTES. */
  remotes: string[];
  emit: (e: SimEvent) => void;
}

/** One request as a handler sees it. */
export interface RouteContext {
  id: number;
  method: string;
  path: string;
  req: IncomingMessage;
  res: ServerResponse;
  /** Aborted when the client goes away before the response finished (or on close()). */
  signal: AbortSignal;
  /** The JSON object body; throws the 400s Ollama answers for empty or malformed bodies. */
  body(): Record<string, unknown>;
  /**
   * Start an answer generated chunk by chunk: streamed, or (`json`) one object at the end.
   * `fault` replaces the queued mid-stream fault (a model's runner crash).
   */
  stream(format: StreamFormat, fault?: StreamFault): ChunkWriter;
}

export type Handler = (ctx: RouteContext, core: SimCore) => Promise<void> | void;

export interface Route {
  /** failNext() with the default scope only hits these. */
  inference: boolean;
  /** Errors use the OpenAI `{"error":{message,type,...}}` shape. */
  openai: boolean;
  methods: Record<string, Handler>;
}

/** RFC3339 in UTC, as Ollama stamps created_at. */
export function stamp(now: () => number): string {
  return new Date(now()).toISOString();
}
