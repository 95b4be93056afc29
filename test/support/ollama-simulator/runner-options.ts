import { HttpError } from './http-io';
import type { InstalledModel } from './catalog';

/**
 * A runner's load-time options: the `api.Runner` fields of ollama-api.md §3.5(b), plus the
 * `shift` launch flag. Undefined means the request did not set the field.
 */
export interface RunnerOptions {
  /** Effective context: requested (or automatic) value, raised to 4 (2048 for vision), clamped. */
  numCtx: number;
  /** The request set no num_ctx and the simulator has no `contextLength` (automatic value). */
  numCtxAuto: boolean;
  numBatch?: number;
  numGpu?: number;
  mainGpu?: number;
  useMmap?: boolean;
  numThread?: number;
  draftNumPredict?: number;
  /** llama-server's `--context-shift`: request `shift`, default true (false for deepseek2). */
  shift: boolean;
}

const INTEGER_OPTIONS = [
  'num_keep',
  'seed',
  'num_predict',
  'top_k',
  'repeat_last_n',
  'num_ctx',
  'num_batch',
  'num_gpu',
  'main_gpu',
  'num_thread',
  'draft_num_predict',
];
const FLOAT_OPTIONS = [
  'top_p',
  'min_p',
  'typical_p',
  'temperature',
  'repeat_penalty',
  'presence_penalty',
  'frequency_penalty',
];

/**
 * A wrong JSON type in `options` answers 500 `option "NAME" must be of type …` (§1.6.1: the
 * error comes out of scheduleRunner and falls to handleScheduleError's default).
 */
function checkTypes(options: Record<string, unknown>): void {
  const fail = (key: string, type: string) => {
    throw new HttpError(500, `option "${key}" must be of type ${type}`);
  };
  for (const [key, value] of Object.entries(options)) {
    if (value === null || value === undefined) continue;
    if (INTEGER_OPTIONS.includes(key) && typeof value !== 'number') fail(key, 'integer');
    if (FLOAT_OPTIONS.includes(key) && typeof value !== 'number') fail(key, 'float32');
    if (key === 'use_mmap' && typeof value !== 'boolean') fail(key, 'boolean');
    if (key === 'stop' && !(Array.isArray(value) && value.every((s) => typeof s === 'string'))) {
      fail(key, 'an array of strings');
    }
  }
}

function int(options: Record<string, unknown>, key: string): number | undefined {
  const value = options[key];
  return typeof value === 'number' ? Math.trunc(value) : undefined;
}

/**
 * The load-time options a request asks for, normalised as getRunner does (§3.5b): num_ctx
 * absent → the explicit `contextLength` (OLLAMA_CONTEXT_LENGTH) if set, else the automatic
 * `autoNumCtx` (the VRAM-tier default, 4096 on CPU); below 4 raised to 4, to 2048 for vision
 * models; then clamped to the model's training context.
 */
export function runnerOptionsOf(
  body: Record<string, unknown>,
  model: InstalledModel,
  defaults: { contextLength?: number; autoNumCtx: number },
): RunnerOptions {
  const raw = body.options;
  const options =
    typeof raw === 'object' && raw !== null && !Array.isArray(raw)
      ? (raw as Record<string, unknown>)
      : {};
  checkTypes(options);
  const requested = int(options, 'num_ctx');
  const explicit = requested !== undefined && requested > 0 ? requested : defaults.contextLength;
  let numCtx = explicit ?? defaults.autoNumCtx;
  numCtx = Math.max(numCtx, model.capabilities.includes('vision') ? 2048 : 4);
  numCtx = Math.min(numCtx, model.contextLength);
  const shift = typeof body.shift === 'boolean' ? body.shift : model.family !== 'deepseek2';
  const useMmap = options.use_mmap;
  return {
    numCtx,
    numCtxAuto: explicit === undefined,
    numBatch: int(options, 'num_batch'),
    numGpu: int(options, 'num_gpu'),
    mainGpu: int(options, 'main_gpu'),
    useMmap: typeof useMmap === 'boolean' ? useMmap : undefined,
    numThread: int(options, 'num_thread'),
    draftNumPredict: int(options, 'draft_num_predict'),
    shift,
  };
}

/**
 * needsReload's option comparison (§3.5b): `shift` always; the api.Runner fields for GGUF
 * models only (not compared for MLX), after its normalisation — num_ctx and num_batch are
 * ignored when runner and request both use the automatic value, use_mmap when the runner's
 * was automatic and the request sets none, num_gpu when the request's is negative or absent.
 */
export function optionsDiffer(
  runner: RunnerOptions,
  request: RunnerOptions,
  format: 'gguf' | 'safetensors',
): boolean {
  if (runner.shift !== request.shift) return true;
  if (format === 'safetensors') return false;
  if (!(runner.numCtxAuto && request.numCtxAuto) && runner.numCtx !== request.numCtx) return true;
  const batchSet = runner.numBatch !== undefined || request.numBatch !== undefined;
  if (batchSet && (runner.numBatch ?? 512) !== (request.numBatch ?? 512)) return true;
  const mmapSet = runner.useMmap !== undefined || request.useMmap !== undefined;
  if (mmapSet && runner.useMmap !== request.useMmap) return true;
  if (request.numGpu !== undefined && request.numGpu >= 0 && runner.numGpu !== request.numGpu) {
    return true;
  }
  return (
    (runner.mainGpu ?? 0) !== (request.mainGpu ?? 0) ||
    (runner.numThread ?? 0) !== (request.numThread ?? 0) ||
    (runner.draftNumPredict ?? 0) !== (request.draftNumPredict ?? 0)
  );
}
