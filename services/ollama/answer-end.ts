/**
 * When a routed generation ends, for the backend's count of work in flight: a streamed answer
 * ends when it is read to the end, broken off or aborted; a whole answer when it is returned.
 */

/**
 * The answer as it is, except that its end (read to the end, broken off, or aborted) also
 * calls `done` (at least once; the caller ignores the calls after the first).
 */
export function settling<A extends AsyncIterable<unknown> & { abort(): void }>(
  answer: A,
  done: () => void,
): A {
  // A copy of the answer's fields (plain objects: status, timings, …), not an object that
  // inherits from it: an answer made a prototype costs V8 a map of its own per request.
  const wrapped = { ...answer };
  wrapped.abort = () => {
    answer.abort();
    done();
  };
  // A plain iterator rather than an async generator: one promise per chunk, not several.
  wrapped[Symbol.asyncIterator] = () => {
    const inner = answer[Symbol.asyncIterator]();
    const step = (result: IteratorResult<unknown>) => {
      if (result.done) done();
      return result;
    };
    const failed = (err: unknown) => {
      done();
      throw err;
    };
    return {
      next: () => inner.next().then(step, failed),
      return: (value?: unknown) => {
        done();
        return inner.return ? inner.return(value) : Promise.resolve({ done: true, value });
      },
      throw: (err?: unknown) => {
        done();
        return inner.throw ? inner.throw(err) : Promise.reject(err as Error);
      },
    };
  };
  return wrapped;
}

/** An answer that is already whole: the routed call ended with it. */
export function settled<A>(answer: A, done: () => void): A {
  done();
  return answer;
}
