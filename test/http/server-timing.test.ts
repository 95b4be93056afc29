import assert from 'node:assert/strict';
import express from 'express';
import request from 'supertest';
import { createServerTiming, recordTimings } from '../../middleware/server-timing';
import type { CallTimings } from '../../services/ollama/types';
import { parseServerTiming } from '../support/server-timing';

/** An app whose one route "makes" Ollama calls with the given timings while the clock moves. */
function appWith(calls: { timings: CallTimings; elapsedMs: number }[], stream = false) {
  let clock = 0n;
  const app = express();
  app.use(createServerTiming({ now: () => clock }));
  app.get('/answer', (_req, res) => {
    clock += 3_000_000n; // 3 ms of gateway work before the first call
    for (const call of calls) {
      clock += BigInt(call.elapsedMs * 1e6);
      recordTimings(res, call.timings);
    }
    clock += 1_500_000n; // 1.5 ms shaping the answer
    if (stream) {
      res.write('data: first\n\n');
      recordTimings(res, { queueMs: 999, ollamaMs: 999 }); // after the headers: ignored
      res.end();
    } else {
      res.json({ ok: true });
    }
  });
  app.get('/plain', (_req, res) => res.json({ ok: true }));
  return app;
}

describe('Server-Timing and X-Response-Time', () => {
  describe('when an inference answer recorded one Ollama call', () => {
    it('splits the time into gateway, queue and Ollama', async () => {
      const app = appWith([
        { timings: { queueMs: 120, firstByteMs: 300, ollamaMs: 800 }, elapsedMs: 920 },
      ]);
      const res = await request(app).get('/answer').expect(200);
      assert.deepEqual(parseServerTiming(String(res.headers['server-timing'])), {
        gateway: 4.5,
        queue: 120,
        ollama: 800,
        ollama_ttfb: 300,
        total: 924.5,
      });
      assert.equal(res.headers['x-response-time'], '924.5ms');
      assert.match(
        String(res.headers['server-timing']),
        /ollama;dur=800\.0;desc="Ollama \(1 call\)"/,
      );
    });
  });

  describe('when an agent run made several calls', () => {
    it('sums their queue and Ollama time', async () => {
      const app = appWith([
        { timings: { queueMs: 10, firstByteMs: 100, ollamaMs: 400 }, elapsedMs: 410 },
        { timings: { queueMs: 0, ollamaMs: 250 }, elapsedMs: 250 },
        { timings: { queueMs: 5, firstByteMs: 50 }, elapsedMs: 55 },
      ]);
      const res = await request(app).get('/answer').expect(200);
      const t = parseServerTiming(String(res.headers['server-timing']));
      assert.equal(t.queue, 15);
      assert.equal(t.ollama, 700);
      assert.equal(t.ollama_ttfb, 100);
      assert.equal(t.total, 719.5);
      assert.equal(t.gateway, 4.5);
      assert.match(String(res.headers['server-timing']), /desc="Ollama \(3 calls\)"/);
    });
  });

  describe('when the answer is a stream', () => {
    it('covers the time until the stream started', async () => {
      const app = appWith([{ timings: { queueMs: 2, firstByteMs: 40 }, elapsedMs: 42 }], true);
      const res = await request(app).get('/answer').expect(200);
      const t = parseServerTiming(String(res.headers['server-timing']));
      assert.deepEqual(t, { gateway: 4.5, queue: 2, ollama: 40, ollama_ttfb: 40, total: 46.5 });
    });
  });

  describe('when no Ollama call was recorded', () => {
    it('adds neither header', async () => {
      const res = await request(appWith([])).get('/plain').expect(200);
      assert.equal(res.headers['server-timing'], undefined);
      assert.equal(res.headers['x-response-time'], undefined);
    });
  });
});
