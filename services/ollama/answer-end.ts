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
  // The answer's other fields (status, timings, …) are copied; its two methods are defined
  // anew rather than copied and then written again. Not an object that inherits from the
  // answer: that costs V8 a map of its own per request. And not `{ ...answer }` with the
  // methods then replaced: a function-valued property written a second time on an object of
  // the request kept the request's objects alive through young-generation collections
  // (`bench:profile -- --gc`: 6.4 against 0.1 KB promoted per answered `/v1` chat, with the
  // passthrough's metering iterator as it is now).
  const { abort: _abort, [Symbol.asyncIterator]: _iterate, ...fields } = answer;
  const wrapped = {
    ...fields,
    abort: () => {
      answer.abort();
      done();
    },
    // A plain iterator rather than an async generator: one promise per chunk, not several.
    [Symbol.asyncIterator]: () => {
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
    },
  };
  return wrapped as unknown as A;
}

/** An answer that is already whole: the routed call ended with it. */
export function settled<A>(answer: A, done: () => void): A {
  done();
  return answer;
}
