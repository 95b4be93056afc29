import assert from 'node:assert/strict';
import http from 'node:http';
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createCompression, gzipOptionsFor } from '../../middleware/compression';
import { createCaptureLogger } from '../support/capture-logger';
import { startAgentsHarness, type AgentsHarness } from '../support/agents-harness';
import { openSse } from '../support/sse-client';

const MODEL = 'llama3.2:3b';

/** A raw GET/POST that keeps the body's bytes as they came off the wire (no decoding). */
function rawRequest(
  url: string,
  options: { method?: string; body?: unknown; headers?: Record<string, string> },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: options.method ?? 'GET',
      headers: {
        ...(payload ? { 'content-type': 'application/json' } : {}),
        ...options.headers,
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.end(payload);
  });
}

describe('response compression (middleware/compression)', () => {
  let h: AgentsHarness;
  beforeEach(async () => {
    h = await startAgentsHarness({ env: { COMPRESSION_MIN_BYTES: '2048' } });
  });
  afterEach(() => h.close());

  describe('when the client accepts gzip or br', () => {
    it('compresses a large run object with the encoding the client prefers', async () => {
      const long = 'All work and no play makes a dull model. '.repeat(200);
      h.sim.script(MODEL, { content: long });
      const run = await rawRequest(`${h.url}/agents/run`, {
        method: 'POST',
        body: { input: 'write a lot' },
        headers: { 'accept-encoding': 'gzip' },
      });
      assert.equal(run.status, 200);
      assert.equal(run.headers['content-encoding'], 'gzip');
      assert.match(String(run.headers.vary), /Accept-Encoding/i);
      const answered = JSON.parse(gunzipSync(run.body).toString()) as {
        id: string;
        output: { text: string };
      };
      assert.equal(answered.output.text, long);
      assert.ok(run.body.length < long.length / 4, `${run.body.length} bytes on the wire`);

      const got = await rawRequest(`${h.url}/agents/runs/${answered.id}`, {
        headers: { 'accept-encoding': 'br;q=1, gzip;q=0.5' },
      });
      assert.equal(got.headers['content-encoding'], 'br');
      const again = JSON.parse(brotliDecompressSync(got.body).toString()) as {
        output: { text: string };
      };
      assert.equal(again.output.text, long);
    });

    it('takes gzip when the client ranks gzip and br alike, and br when it ranks br first', async () => {
      const long = 'All work and no play makes a dull model. '.repeat(100);
      h.sim.script(MODEL, { content: long });
      const run = await rawRequest(`${h.url}/agents/run`, {
        method: 'POST',
        body: { input: 'write a lot' },
        headers: { 'accept-encoding': 'gzip, deflate, br' },
      });
      assert.equal(run.headers['content-encoding'], 'gzip');
      assert.equal(Number(run.headers['content-length']), run.body.length);
      const { id } = JSON.parse(gunzipSync(run.body).toString()) as { id: string };
      const got = await rawRequest(`${h.url}/agents/runs/${id}`, {
        headers: { 'accept-encoding': 'br' },
      });
      assert.equal(got.headers['content-encoding'], 'br');
      const again = JSON.parse(brotliDecompressSync(got.body).toString()) as {
        output: { text: string };
      };
      assert.equal(again.output.text, long);
    });

    it('compresses an answer of several hundred kilobytes whole (on the thread pool)', async () => {
      const long = 'A very long answer indeed, line after line. '.repeat(10_000);
      h.sim.script(MODEL, { content: long });
      const run = await rawRequest(`${h.url}/agents/run`, {
        method: 'POST',
        body: { input: 'write a book' },
        headers: { 'accept-encoding': 'br' },
      });
      assert.equal(run.status, 200);
      assert.equal(run.headers['content-encoding'], 'br');
      assert.equal(Number(run.headers['content-length']), run.body.length);
      const answered = JSON.parse(brotliDecompressSync(run.body).toString()) as {
        output: { text: string };
      };
      assert.equal(answered.output.text, long);
      assert.ok(run.body.length < long.length / 20, `${run.body.length} bytes on the wire`);
    });

    it('compresses a large answered /v1 chat in one piece, with its length', async () => {
      const long = 'Drop-in clients get compressed answers too. '.repeat(200);
      h.sim.script(MODEL, { content: long });
      const chat = await rawRequest(`${h.url}/v1/chat/completions`, {
        method: 'POST',
        body: { model: MODEL, messages: [{ role: 'user', content: 'hi' }] },
        headers: { 'accept-encoding': 'gzip' },
      });
      assert.equal(chat.status, 200);
      assert.equal(chat.headers['content-encoding'], 'gzip');
      assert.equal(chat.headers['transfer-encoding'], undefined);
      assert.equal(Number(chat.headers['content-length']), chat.body.length);
      const answer = JSON.parse(gunzipSync(chat.body).toString()) as {
        choices: Array<{ message: { content: string } }>;
      };
      assert.equal(answer.choices[0]?.message.content, long);
    });

    it('sends an answer below COMPRESSION_MIN_BYTES as it is', async () => {
      h.sim.script(MODEL, { content: 'short' });
      const run = await rawRequest(`${h.url}/agents/run`, {
        method: 'POST',
        body: { input: 'hi' },
        headers: { 'accept-encoding': 'gzip, br' },
      });
      assert.equal(run.status, 200);
      assert.ok(run.body.length < 2048, `${run.body.length} bytes`);
      assert.equal(run.headers['content-encoding'], undefined);
      assert.equal(
        (JSON.parse(run.body.toString()) as { output: { text: string } }).output.text,
        'short',
      );
    });

    it('never compresses a streamed run, whatever its length', async () => {
      const long = 'token '.repeat(2000);
      h.sim.script(MODEL, { content: long });
      const sse = await openSse(`${h.url}/agents/run`, {
        method: 'POST',
        body: { input: 'stream a lot', stream: true },
        headers: { 'accept-encoding': 'gzip, deflate, br' },
      });
      assert.equal(sse.status, 200);
      assert.equal(sse.headers['content-encoding'], undefined);
      await sse.ended;
      const text = sse
        .events()
        .filter((e) => e.event === 'message.delta')
        .map((e) => e.data.text)
        .join('');
      assert.equal(text, long);
      assert.ok(sse.raw.length > 2048);
    });
  });

  describe('when the client does not accept an encoding', () => {
    it('sends a large answer as it is', async () => {
      const long = 'x'.repeat(10_000);
      h.sim.script(MODEL, { content: long });
      const run = await rawRequest(`${h.url}/agents/run`, {
        method: 'POST',
        body: { input: 'write a lot' },
      });
      assert.equal(run.headers['content-encoding'], undefined);
      assert.equal(
        (JSON.parse(run.body.toString()) as { output: { text: string } }).output.text,
        long,
      );
    });
  });
});

describe('response compression at the default COMPRESSION_MIN_BYTES', () => {
  let h: AgentsHarness;
  before(async () => {
    h = await startAgentsHarness();
  });
  after(() => h.close());

  const chat = (content: string) => {
    h.sim.script(MODEL, { content });
    return rawRequest(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      body: { model: MODEL, messages: [{ role: 'user', content: 'hi' }] },
      headers: { 'accept-encoding': 'gzip, deflate, br' },
    });
  };

  it('sends a chat answer of a few kilobytes as it is, and compresses one above 16 KiB', async () => {
    const few = await chat('A typical answer of a few hundred tokens. '.repeat(100));
    assert.equal(few.status, 200);
    assert.ok(few.body.length > 4096 && few.body.length < 16_384, `${few.body.length} bytes`);
    assert.equal(few.headers['content-encoding'], undefined);

    const long = 'A long answer, well past the first flight. '.repeat(500);
    const big = await chat(long);
    assert.equal(big.headers['content-encoding'], 'gzip');
    const answer = JSON.parse(gunzipSync(big.body).toString()) as {
      choices: Array<{ message: { content: string } }>;
    };
    assert.equal(answer.choices[0]?.message.content, long);
  });
});

describe('createCompression on its own', () => {
  let server: http.Server;
  let url: string;
  const big = JSON.stringify({ text: 'y'.repeat(5000) });
  beforeEach(async () => {
    const app = express();
    app.use(createCompression({ thresholdBytes: 1024, logger: createCaptureLogger().logger }));
    app.get('/slow', (_req, res) => {
      // Answers after the other request started, so both responses wait for their end at once.
      setTimeout(() => res.type('application/json').end(big), 20);
    });
    app.get('/fast', (_req, res) => {
      res.type('application/json').end(big);
    });
    server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('compresses once when a second compression middleware is mounted after the first', async () => {
    const app = express();
    const logger = createCaptureLogger().logger;
    app.use(createCompression({ thresholdBytes: 1024, logger }));
    app.use(createCompression({ thresholdBytes: 1024, logger }));
    app.get('/', (_req, res) => {
      res.type('application/json').end(big);
    });
    const twice = http.createServer(app);
    await new Promise<void>((resolve) => twice.listen(0, '127.0.0.1', resolve));
    try {
      const port = (twice.address() as AddressInfo).port;
      const res = await rawRequest(`http://127.0.0.1:${port}/`, {
        headers: { 'accept-encoding': 'gzip' },
      });
      assert.equal(res.headers['content-encoding'], 'gzip');
      assert.equal(gunzipSync(res.body).toString(), big);
    } finally {
      await new Promise<void>((resolve) => twice.close(() => resolve()));
    }
  });

  it('compresses each response for its own request when several are in flight', async () => {
    const [slow, fast] = await Promise.all([
      rawRequest(`${url}/slow`, { headers: { 'accept-encoding': 'br' } }),
      rawRequest(`${url}/fast`, { headers: { 'accept-encoding': 'gzip' } }),
    ]);
    assert.equal(slow.headers['content-encoding'], 'br');
    assert.equal(brotliDecompressSync(slow.body).toString(), big);
    assert.equal(fast.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(fast.body).toString(), big);
  });
});

describe('gzipOptionsFor', () => {
  /** JSON of about `size` bytes, varied enough that the window and hash table matter. */
  const json = (size: number, seed: number): Buffer => {
    const items: string[] = [];
    for (let i = seed, length = 0; length < size; i += 1) {
      const item = JSON.stringify({ id: i, name: `item${(i * 7919) % 1000}`, v: Math.sin(i) });
      items.push(item);
      length += item.length + 1;
    }
    return Buffer.from(`[${items.join(',')}]`);
  };

  it("compresses to the same bytes as zlib's defaults, with a window no larger than the body", () => {
    for (const size of [100, 2048, 5000, 17_000, 64_000]) {
      for (const seed of [1, 99]) {
        const body = json(size, seed);
        const options = gzipOptionsFor(body.length);
        assert.ok(options.windowBits >= 10 && options.windowBits <= 15);
        assert.ok(2 ** (options.windowBits - 1) < Math.max(body.length, 1024));
        assert.deepEqual(gzipSync(body, options), gzipSync(body), `${size} bytes`);
      }
    }
  });
});
