import { createHash } from 'node:crypto';
import { digestOf, toInstalled } from './catalog';
import type { InstalledModel } from './catalog';
import type { Handler } from './core';
import { HttpError, optionalString, sendJson } from './http-io';
import { lease, resolveModel } from './inference';
import type { InferenceRequest } from './inference';
import { parseKeepAlive } from './keep-alive';
import { promptTokens } from './replies';
import { runnerOptionsOf } from './runner-options';

function inputsOf(input: unknown): string[] {
  if (input === undefined || input === null || input === '') return [];
  if (typeof input === 'string') return [input];
  if (Array.isArray(input)) {
    if (!input.every((item) => typeof item === 'string')) {
      throw new HttpError(400, 'invalid input type');
    }
    return input as string[];
  }
  throw new HttpError(400, 'invalid input type');
}

/** A deterministic pseudo-embedding of `text`, L2-normalised like Ollama's. */
export function embedding(text: string, dims: number): number[] {
  const values: number[] = [];
  for (let block = 0; values.length < dims; block += 1) {
    const bytes = createHash('sha256').update(`${block}:${text}`).digest();
    for (let i = 0; i + 1 < bytes.length && values.length < dims; i += 2) {
      values.push((bytes.readUInt16BE(i) - 32768) / 32768);
    }
  }
  const norm = Math.sqrt(values.reduce((sum, v) => sum + v * v, 0)) || 1;
  return values.map((v) => v / norm);
}

export const embed: Handler = async (ctx, core) => {
  const started = process.hrtime.bigint();
  const body = ctx.body();
  const keepAliveMs = parseKeepAlive(body.keep_alive);
  const name = optionalString(body, 'model') ?? '';
  // ollama-api.md §0.1: an empty name is a model nobody has (generate and embed), not a 400.
  if (name === '') throw new HttpError(404, "model '' not found");
  const { model, cloud, stub } = resolveModel(
    core,
    ctx.path,
    name,
    (sent) => new HttpError(404, `model "${sent}" not found, try pulling it first`),
  );
  const inputs = inputsOf(body.input);
  const request: InferenceRequest = {
    sentName: name,
    model,
    cloud,
    stub,
    keepAliveMs,
    stream: false,
    thinkingOn: false,
    format: undefined,
    runner: runnerOptionsOf(body, model, core),
    truncate: body.truncate !== false,
    tools: false,
  };
  const held = await lease(ctx, core, request, inputs.length > 0);
  if (!held) return;
  held.release();
  // Empty input is the preload path for embedding models: load, then an empty list.
  if (inputs.length === 0) return sendJson(ctx.res, 200, { model: name, embeddings: [] });
  const wanted = typeof body.dimensions === 'number' ? body.dimensions : 0;
  const dims = wanted > 0 && wanted < model.embeddingLength ? wanted : model.embeddingLength;
  sendJson(ctx.res, 200, {
    model: name,
    embeddings: inputs.map((text) => embedding(text, dims)),
    total_duration: Math.max(Number(process.hrtime.bigint() - started), held.loadNs + 1),
    ...(held.loadNs > 0 ? { load_duration: held.loadNs } : {}),
    prompt_eval_count: promptTokens(inputs),
  });
};

const MANIFEST_ERROR = 'pull model manifest: file does not exist';

/** The layer progress lines of a pull; an installed model's layers are already complete. */
function progressLines(model: InstalledModel, present: boolean): Array<Record<string, unknown>> {
  const layers = [
    { digest: digestOf(`blob:${model.name}`), total: model.sizeBytes },
    { digest: digestOf(`params:${model.name}`), total: 487 },
  ];
  return layers.flatMap(({ digest, total }) => {
    const line = (completed?: number) => ({
      status: `pulling ${digest.slice(0, 12)}`,
      digest: `sha256:${digest}`,
      total,
      ...(completed ? { completed } : {}),
    });
    return present ? [line(total)] : [line(), line(Math.floor(total / 2)), line(total)];
  });
}

export const pull: Handler = async (ctx, core) => {
  const body = ctx.body();
  const name = optionalString(body, 'model') || optionalString(body, 'name') || '';
  // ollama-api.md §0.1: an empty name is a model nobody has (generate and embed), not a 400.
  if (name === '') throw new HttpError(404, "model '' not found");
  const installed = core.catalog.find(name);
  const spec = core.pullable.find(name) ?? installed;
  const install = () => {
    if (spec) core.catalog.install(toInstalled(spec, new Date(core.now()), name));
  };
  if (body.stream === false) {
    if (!spec) throw new HttpError(500, MANIFEST_ERROR);
    install();
    return sendJson(ctx.res, 200, { status: 'success' });
  }
  const writer = ctx.stream('ndjson');
  if (!(await writer.send({ status: 'pulling manifest' }))) return;
  if (!spec) return void (await writer.send({ error: MANIFEST_ERROR }, true));
  const lines = [
    ...progressLines(spec, installed !== undefined),
    { status: 'verifying sha256 digest' },
    { status: 'writing manifest' },
  ];
  for (const line of lines) if (!(await writer.send(line))) return;
  install();
  await writer.send({ status: 'success' }, true);
};
