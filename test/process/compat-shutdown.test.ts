import assert from 'node:assert/strict';
import { useServerAgainstSimulator, type ServerProcess } from '../support/server-process';

const MODEL = 'llama3.2:3b';

/** A streamed answer read as text while it arrives. */
async function openStream(url: string, body: object) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const state = { text: '' };
  const waiters = new Set<() => void>();
  const ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return state.text;
        state.text += decoder.decode(value, { stream: true });
        for (const wake of waiters) wake();
      }
    } finally {
      for (const wake of waiters) wake();
    }
  })();
  /** Resolves once the text so far satisfies `predicate` (checked on every chunk). */
  const until = (predicate: (text: string) => boolean) =>
    new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (predicate(state.text)) {
          waiters.delete(check);
          resolve();
        }
      };
      waiters.add(check);
      check();
      void ended.then(() => waiters.has(check) && reject(new Error('stream ended first')));
    });
  return { res, state, ended, until };
}

describe('graceful shutdown of drop-in streams (the built server in a child process)', function () {
  this.timeout(20_000);
  const harness = useServerAgainstSimulator(MODEL);
  const start = (delayMs: number, timeoutMs: number): Promise<ServerProcess> =>
    harness.start({ SHUTDOWN_DELAY_MS: String(delayMs), SHUTDOWN_TIMEOUT_MS: String(timeoutMs) });

  describe('when a /v1 stream is in flight at SIGTERM', () => {
    it('lets it finish with its finish chunk and [DONE], then exits 0', async () => {
      const chunks = ['One ', 'two ', 'three ', 'four'];
      const srv = await start(200, 8000);
      harness.sim.script(MODEL, { chunks });
      harness.sim.setChunkLatency(100);
      const stream = await openStream(`${srv.url}/v1/chat/completions`, {
        model: MODEL,
        messages: [{ role: 'user', content: 'go' }],
        stream: true,
      });
      assert.equal(stream.res.status, 200);
      await stream.until((text) => text.includes('One '));
      srv.child.kill('SIGTERM');
      await srv.waitForLine((l) => l.message === 'shutdown requested');
      const text = await stream.ended;
      const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
      assert.equal(events.at(-1), 'data: [DONE]');
      const content = events
        .slice(0, -1)
        .map((e) => JSON.parse(e.slice(6)) as { choices: Array<{ delta: { content?: string } }> })
        .map((e) => e.choices[0]?.delta.content ?? '')
        .join('');
      assert.equal(content, chunks.join(''));
      assert.equal((await srv.exited).code, 0);
      const drained = await srv.waitForLine((l) => l.message === 'shutdown: requests drained');
      assert.deepEqual(drained.streams, { completed: 1, ended: 0 });
    });
  });

  describe('when an /api stream outlives SHUTDOWN_TIMEOUT_MS', () => {
    it("ends it with an error line in Ollama's shape, aborts Ollama, exits 0", async () => {
      const srv = await start(100, 1000);
      harness.sim.script(MODEL, { chunks: ['Held ', 'forever'] });
      const gate = harness.sim.hold();
      try {
        const stream = await openStream(`${srv.url}/api/chat`, {
          model: MODEL,
          messages: [{ role: 'user', content: 'go' }],
        });
        await stream.until((text) => text.includes('Held '));
        const aborted = harness.sim.waitFor('aborted', (e) => e.path === '/api/chat');
        srv.child.kill('SIGTERM');
        const lines = (await stream.ended).trim().split('\n');
        const last = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
        assert.deepEqual(Object.keys(last), ['error']);
        assert.match(String(last.error), /shutting down/);
        await aborted;
        assert.equal((await srv.exited).code, 0);
        const drained = await srv.waitForLine((l) => l.message === 'shutdown: requests drained');
        assert.deepEqual(drained.streams, { completed: 0, ended: 1 });
      } finally {
        gate.release();
      }
    });
  });
});
