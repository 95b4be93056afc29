import assert from 'node:assert/strict';
import { settling } from '../../services/ollama/answer-end';

/** An answer of two chunks that counts how it was ended. */
function answer() {
  const seen = { aborted: 0, returned: 0 };
  return {
    seen,
    value: {
      status: 200,
      timings: { queueMs: 3 },
      abort: () => void (seen.aborted += 1),
      [Symbol.asyncIterator]() {
        const parts = ['a', 'b'];
        return {
          next: () =>
            Promise.resolve(
              parts.length > 0
                ? { done: false as const, value: parts.shift()! }
                : { done: true as const, value: undefined },
            ),
          return: () => {
            seen.returned += 1;
            return Promise.resolve({ done: true as const, value: undefined });
          },
        };
      },
    },
  };
}

describe('settling (services/ollama/answer-end)', () => {
  it("keeps the answer's fields and calls done once it is read to the end", async () => {
    const { value } = answer();
    let done = 0;
    const wrapped = settling(value, () => void (done += 1));
    assert.equal(wrapped.status, 200);
    assert.equal(wrapped.timings, value.timings);
    const parts: string[] = [];
    for await (const part of wrapped) {
      assert.equal(done, 0);
      parts.push(part);
    }
    assert.deepEqual(parts, ['a', 'b']);
    assert.equal(done, 1);
  });

  it('calls done when its reader stops early, and closes the answer', async () => {
    const { value, seen } = answer();
    let done = 0;
    const wrapped = settling(value, () => void (done += 1));
    for await (const part of wrapped) {
      assert.equal(part, 'a');
      break;
    }
    assert.equal(done, 1);
    assert.equal(seen.returned, 1);
  });

  it('calls done when it is aborted, and aborts the answer', () => {
    const { value, seen } = answer();
    let done = 0;
    settling(value, () => void (done += 1)).abort();
    assert.equal(done, 1);
    assert.equal(seen.aborted, 1);
  });
});
