/**
 * Model management over several backends: a call made on every backend at once and its
 * outcomes merged, or made on one backend after another until one answers.
 */
import type { Logger } from '../../src/logger';
import { isAppError } from '../../src/errors';
import { modelKey } from '../../src/model-name';
import type { OllamaClient } from './client';
import type { CallOptions, ProgressResponse } from './types';

/** A backend as a fan-out sees it. */
export interface Target {
  id: string;
  client: Pick<OllamaClient, 'pull'>;
}

export const notFound = (err: unknown): boolean =>
  isAppError(err) && err.code === 'MODEL_NOT_FOUND';

/** Runs `fn` on every target at once; every outcome, in order. */
export function everywhere<B, T>(
  targets: readonly B[],
  fn: (b: B) => Promise<T>,
): Promise<Array<PromiseSettledResult<T>>> {
  return Promise.all(
    targets.map((b) =>
      fn(b).then(
        (value) => ({ status: 'fulfilled' as const, value }),
        (reason: unknown) => ({ status: 'rejected' as const, reason }),
      ),
    ),
  );
}

/**
 * The error to throw when nothing of a fan-out succeeded: a real failure before a "not
 * installed here", `none()` when there was no target at all.
 */
export function firstFailure(
  results: Array<PromiseSettledResult<unknown>>,
  none: () => Error,
): unknown {
  const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
  return errors.find((e) => !notFound(e)) ?? errors[0] ?? none();
}

/** Every target's list, each model once (the first target's entry for a name wins). */
export async function union<B, T extends { name: string }>(
  targets: readonly B[],
  fn: (b: B) => Promise<{ models: T[] }>,
  none: () => Error,
): Promise<{ models: T[] }> {
  const results = await everywhere(targets, fn);
  const answers = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (answers.length === 0) throw firstFailure(results, none);
  const seen = new Map<string, T>();
  for (const answer of answers) {
    for (const m of answer.models) if (!seen.has(modelKey(m.name))) seen.set(modelKey(m.name), m);
  }
  return { models: [...seen.values()] };
}

/** The first answer of `fn` over the targets in order; else the last failure, or `none()`. */
export async function firstAnswer<B, T>(
  order: readonly B[],
  fn: (b: B) => Promise<T>,
  none: () => Error,
): Promise<T> {
  let failure: unknown;
  for (const b of order) {
    try {
      return await fn(b);
    } catch (err) {
      failure = err;
    }
  }
  throw failure ?? none();
}

/**
 * Like {@link firstAnswer}, but a "not installed here" does not end the search: the next target
 * is asked. When no target answers, a "not installed" from any of them is thrown before the
 * other failures (the model is missing where it could be read).
 */
export async function firstFound<B, T>(
  order: readonly B[],
  fn: (b: B) => Promise<T>,
  none: () => Error,
): Promise<T> {
  let notHere: unknown;
  let failure: unknown;
  for (const b of order) {
    try {
      return await fn(b);
    } catch (err) {
      if (notFound(err)) notHere ??= err;
      else failure ??= err;
    }
  }
  throw notHere ?? failure ?? none();
}

/**
 * Pulls `model` on every target at once, its progress lines as they come from each (labelled
 * with the backend when `label`). Fails when every pull failed, or when one failed for another
 * reason than the model not existing.
 */
export async function* pullEverywhere(
  targets: readonly Target[],
  model: string,
  opts: CallOptions | undefined,
  options: { label: boolean; logger: Pick<Logger, 'warn'> },
): AsyncGenerator<ProgressResponse & { backend?: string }> {
  type Next = {
    b: Target;
    it: AsyncIterator<ProgressResponse>;
    r: IteratorResult<ProgressResponse>;
  };
  const pending = new Map<string, Promise<Next | { b: Target; err: unknown }>>();
  const advance = (b: Target, it: AsyncIterator<ProgressResponse>): void => {
    pending.set(
      b.id,
      it.next().then(
        (r) => ({ b, it, r }),
        (err: unknown) => ({ b, err }),
      ),
    );
  };
  for (const b of targets) advance(b, b.client.pull(model, opts)[Symbol.asyncIterator]());
  const failures: unknown[] = [];
  let succeeded = 0;
  try {
    while (pending.size > 0) {
      const next = await Promise.race(pending.values());
      pending.delete(next.b.id);
      if ('err' in next) {
        failures.push(next.err);
        options.logger.warn('pull failed on a backend', { backend: next.b.id, model });
        continue;
      }
      if (next.r.done) {
        succeeded += 1;
        continue;
      }
      yield options.label ? { ...next.r.value, backend: next.b.id } : next.r.value;
      advance(next.b, next.it);
    }
  } finally {
    for (const p of pending.values()) {
      void p.then((n) => ('it' in n ? n.it.return?.() : undefined)).catch(() => undefined);
    }
  }
  if (failures.length > 0 && (succeeded === 0 || failures.some((e) => !notFound(e)))) {
    throw failures.find((e) => !notFound(e)) ?? failures[0];
  }
}
