import { createHash } from 'node:crypto';
import { displayFull, displayShortest, nameKey, parseModelName } from './names';
import type { SimModelSpec, SimToolCallMode } from './types';

/** A model in the fake store, with every field the native API reports filled in. */
export interface InstalledModel {
  name: string;
  family: string;
  parameterSize: string;
  quantization: string;
  capabilities: string[];
  contextLength: number;
  embeddingLength: number;
  sizeBytes: number;
  digest: string;
  modifiedAt: Date;
  format: 'gguf' | 'safetensors';
  toolCallMode: SimToolCallMode;
  remoteHost?: string;
  remoteModel?: string;
}

export const DEFAULT_MODELS: SimModelSpec[] = [
  {
    name: 'llama3.2:3b',
    family: 'llama',
    parameterSize: '3.2B',
    quantization: 'Q4_K_M',
    capabilities: ['completion', 'tools'],
    contextLength: 131072,
    sizeBytes: 2019393189,
  },
  {
    name: 'qwen3:8b',
    family: 'qwen3',
    parameterSize: '8.2B',
    quantization: 'Q4_K_M',
    capabilities: ['completion', 'tools', 'thinking'],
    contextLength: 40960,
    sizeBytes: 5225388164,
  },
  {
    name: 'nomic-embed-text:latest',
    family: 'nomic-bert',
    parameterSize: '137M',
    quantization: 'F16',
    capabilities: ['embedding'],
    contextLength: 2048,
    sizeBytes: 274302450,
  },
];

export const DEFAULT_PULLABLE: SimModelSpec[] = [
  {
    name: 'smollm2:135m',
    family: 'llama',
    parameterSize: '134.52M',
    quantization: 'Q8_0',
    capabilities: ['completion'],
    contextLength: 8192,
    sizeBytes: 270898672,
  },
];

/**
 * The shortest canonical name /api/tags and /api/ps print (ollama-api.md §0.1): default host
 * and `library/` dropped, `:latest` added. A name Ollama would reject is returned as given.
 */
export function canonicalName(name: string): string {
  const parsed = parseModelName(name);
  return parsed ? displayShortest(parsed) : name;
}

/** The fully qualified form used in some capability errors. */
export function qualifiedName(name: string): string {
  const parsed = parseModelName(name);
  return parsed ? displayFull(parsed) : name;
}

/** Names compare case-insensitively after defaults (EqualFold on the full name). */
function keyOf(name: string): string {
  const parsed = parseModelName(name);
  return parsed ? nameKey(parsed) : name.toLowerCase();
}

export function digestOf(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function toInstalled(
  spec: SimModelSpec,
  modifiedAt: Date,
  name = spec.name,
): InstalledModel {
  const capabilities = spec.capabilities ?? ['completion'];
  const embedding = capabilities.includes('embedding') && !capabilities.includes('completion');
  return {
    name: canonicalName(name),
    family: spec.family ?? 'llama',
    parameterSize: spec.parameterSize ?? '3.2B',
    quantization: spec.quantization ?? 'Q4_K_M',
    capabilities: [...capabilities],
    contextLength: spec.contextLength ?? (embedding ? 2048 : 8192),
    embeddingLength: embedding ? 768 : 3072,
    sizeBytes: spec.sizeBytes ?? 2_000_000_000,
    digest: digestOf(`model:${canonicalName(spec.name)}`),
    modifiedAt,
    format: spec.format ?? 'gguf',
    toolCallMode: spec.toolCallMode ?? 'rendered',
    ...(spec.remoteHost ? { remoteHost: spec.remoteHost } : {}),
    ...(spec.remoteModel ? { remoteModel: spec.remoteModel } : {}),
  };
}

export interface Catalog {
  list(): InstalledModel[];
  find(name: string): InstalledModel | undefined;
  install(model: InstalledModel): void;
  remove(name: string): boolean;
}

/** The installed set. Given specs get distinct modification times so ordering is stable. */
export function createCatalog(specs: SimModelSpec[], now: () => number): Catalog {
  const models = new Map<string, InstalledModel>();
  specs.forEach((spec, i) => {
    const model = toInstalled(spec, new Date(now() - i * 60_000));
    models.set(keyOf(model.name), model);
  });
  return {
    list: () => [...models.values()].sort((a, b) => +b.modifiedAt - +a.modifiedAt),
    find: (name) => models.get(keyOf(name)),
    install: (model) => void models.set(keyOf(model.name), model),
    remove: (name) => models.delete(keyOf(name)),
  };
}

export function detailsOf(model: InstalledModel) {
  return {
    parent_model: '',
    format: model.format,
    family: model.family,
    families: [model.family],
    parameter_size: model.parameterSize,
    quantization_level: model.quantization,
  };
}

/** "3.2B" → 3200000000, "137M" → 137000000. */
export function parameterCount(size: string): number {
  const match = /^([\d.]+)\s*([KMB]?)/i.exec(size);
  const scale: Record<string, number> = { K: 1e3, M: 1e6, B: 1e9, '': 1 };
  return Math.round(Number(match?.[1] ?? 0) * (scale[(match?.[2] ?? '').toUpperCase()] ?? 1));
}
