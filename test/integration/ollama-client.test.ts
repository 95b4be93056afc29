import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createOllamaService, type OllamaClient } from '../../services/ollama/client';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { appError } from '../support/app-error';
import { OLLAMA_HOST_VARIANTS } from '../support/ollama-hosts';
import { startOllamaSimulator, type OllamaSimulator } from '../support/ollama-simulator';
import { createRecordingTelemetry, type RecordingTelemetry } from '../support/recording-telemetry';

const USER = [{ role: 'user', content: 'hi' }];
const MODEL = 'llama3.2:3b';

async function drain(stream: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of stream) n += 1;
  return n;
}

for (const variant of OLLAMA_HOST_VARIANTS) {
  describe(`ollama service (${variant.name})`, () => {
    let sim: OllamaSimulator;
    let svc: OllamaClient;
    let telemetry: RecordingTelemetry;

    const build = (env: Record<string, string> = {}): OllamaClient => {
      const config = loadConfig({
        OLLAMA_HOST: variant.host(sim),
        OLLAMA_RETRY_BASE_MS: '1',
        ...env,
      });
      telemetry = createRecordingTelemetry();
      return createOllamaService({
        config,
        telemetry,
        logger: createLogger({ level: 'silent', format: 'json' }),
      });
    };
    /** The telemetry of chats (a load before the first chat reports its own event). */
    const chatEvents = () => telemetry.inferences.filter((e) => e.operation === 'chat');
    /** Chats that generate (a preload is a chat without messages). */
    const chatRequests = () =>
      sim.requests.filter(
        (r) =>
          r.path === '/api/chat' &&
          ((r.body as { messages?: unknown[] }).messages ?? []).length > 0,
      );

    beforeEach(async () => {
      sim = await startOllamaSimulator();
      svc = build();
    });
    afterEach(async () => {
      await svc.close();
      await sim.close();
    });

    describe('when Ollama answers', () => {
      it('chats, sends keep_alive explicitly and reports the tokens', async () => {
        const { response, timings } = await svc.chat({ model: MODEL, messages: USER });
        assert.equal(response.done, true);
        assert.ok(response.message.content.length > 0);
        assert.equal(timings.queueMs, 0);
        const body = chatRequests()[0]?.body as Record<string, unknown>;
        assert.equal(body.keep_alive, '5m');
        assert.equal(body.stream, true, 'answered chats stream from Ollama (idle deadline)');
        const event = chatEvents()[0];
        assert.equal(event?.outcome, 'success');
        assert.equal(event?.operation, 'chat');
        assert.ok((event?.completionTokens ?? 0) > 0);
      });

      it('does not change the caller request, images included', async () => {
        const req = {
          model: MODEL,
          messages: [
            { role: 'user', content: 'hi' },
            { role: 'user', content: 'and this?', images: [new Uint8Array([1, 2, 3])] },
          ],
        };
        const copy = structuredClone(req);
        await svc.chat(req);
        assert.deepEqual(req, copy);
        const sent = chatRequests()[0]?.body as { messages: Array<{ images?: unknown }> };
        assert.deepEqual(sent.messages[1]?.images, ['AQID'], 'ollama-js sent the image as base64');
      });

      it('passes stream chunks through as they arrive', async () => {
        const gate = sim.hold();
        const stream = await svc.chatStream({ model: MODEL, messages: USER });
        const it = stream[Symbol.asyncIterator]();
        const first = await it.next(); // arrives while the simulator holds the rest back
        assert.equal(first.done, false);
        assert.equal(gate.held, 1);
        gate.release();
        let rest = 0;
        for (let step = await it.next(); !step.done; step = await it.next()) rest += 1;
        assert.ok(rest > 1);
        assert.ok(
          stream.timings.firstByteMs !== undefined && stream.timings.ollamaMs !== undefined,
        );
        const event = chatEvents()[0];
        assert.equal(event?.outcome, 'success');
        assert.ok(event?.ttftS !== undefined);
        assert.equal((chatRequests()[0]?.body as { keep_alive?: unknown }).keep_alive, '5m');
      });

      it('counts a stream that carries only tool calls as having a first token', async () => {
        sim.script(MODEL, {
          tool_calls: [{ function: { name: 'calculator', arguments: { expression: '1+1' } } }],
        });
        const stream = await svc.chatStream({ model: MODEL, messages: USER });
        const chunks = [];
        for await (const chunk of stream) chunks.push(chunk);
        assert.ok(
          chunks.every((c) => !c.message.content),
          'no text in any chunk',
        );
        assert.ok(chunks.some((c) => (c.message.tool_calls?.length ?? 0) > 0));
        assert.equal(chatEvents()[0]?.outcome, 'success');
        assert.ok(chatEvents()[0]?.ttftS !== undefined);
      });

      it('reports the first token of an answered chat too (it streams from Ollama)', async () => {
        const { response } = await svc.chat({ model: MODEL, messages: USER });
        assert.notEqual(response.message.content, '');
        assert.equal(chatEvents()[0]?.outcome, 'success');
        assert.equal(typeof chatEvents()[0]?.ttftS, 'number');
      });

      it('reads version, tags, show and ps', async () => {
        assert.equal(await svc.version(), '0.12.6');
        assert.ok((await svc.list()).models.some((m) => m.name === MODEL));
        assert.ok((await svc.show('qwen3:8b')).capabilities.includes('tools'));
        assert.deepEqual((await svc.ps()).models, []);
      });

      it('preloads with the requested keep_alive and unloads with keep_alive 0', async () => {
        const { loadMs } = await svc.preload('qwen3:8b', '10m');
        assert.ok(loadMs >= 0);
        assert.deepEqual(
          sim.loaded().map((m) => m.name),
          ['qwen3:8b'],
        );
        assert.equal(sim.loaded()[0]?.keepAliveMs, 600_000);
        await svc.unload('qwen3:8b');
        assert.deepEqual(sim.loaded(), []);
      });

      it('preloads an embedding model through /api/embed', async () => {
        await svc.preload('nomic-embed-text');
        assert.deepEqual(
          sim.loaded().map((m) => m.name),
          ['nomic-embed-text:latest'],
        );
      });

      it('streams pull progress and deletes a model', async () => {
        const statuses: string[] = [];
        for await (const p of svc.pull('smollm2:135m')) statuses.push(p.status);
        assert.equal(statuses[0], 'pulling manifest');
        assert.equal(statuses.at(-1), 'success');
        await svc.delete('smollm2:135m');
        await assert.rejects(svc.show('smollm2:135m'), appError('MODEL_NOT_FOUND'));
      });

      it('reuses one kept-alive connection for many calls', async () => {
        // A TCP relay in front of the simulator counts the connections the service opens.
        let connections = 0;
        const relay = net.createServer((socket) => {
          connections += 1;
          const upstream = net.connect(sim.port, '127.0.0.1');
          socket.pipe(upstream).pipe(socket);
          socket.on('error', () => upstream.destroy());
          upstream.on('error', () => socket.destroy());
        });
        await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
        const port = (relay.address() as AddressInfo).port;
        const viaRelay = createOllamaService({
          config: loadConfig({ OLLAMA_HOST: `127.0.0.1:${port}` }),
          telemetry,
          logger: createLogger({ level: 'silent', format: 'json' }),
        });
        for (let i = 0; i < 10; i += 1) {
          await viaRelay.version();
          await viaRelay.chat({ model: MODEL, messages: USER });
          await drain(await viaRelay.chatStream({ model: MODEL, messages: USER }));
        }
        // 30 sequential calls: undici's pool may open a second socket while the first is being
        // released, but never one per request.
        assert.ok(connections <= 2, `${connections} connections for 30 calls`);
        await viaRelay.close();
        await new Promise((resolve) => relay.close(resolve));
      });
    });

    describe('when Ollama fails', () => {
      it('maps a stopped Ollama to OLLAMA_UNAVAILABLE', async () => {
        await sim.stop();
        await assert.rejects(svc.version(), appError('OLLAMA_UNAVAILABLE'));
        await assert.rejects(
          svc.chat({ model: MODEL, messages: USER }),
          appError('OLLAMA_UNAVAILABLE', (e) => assert.ok(e.retryAfterS !== undefined)),
        );
        await assert.rejects(
          svc.chatStream({ model: MODEL, messages: USER }),
          appError('OLLAMA_UNAVAILABLE'),
        );
        assert.equal(telemetry.inferences.at(-1)?.outcome, 'unavailable');
      });

      it('gives a hung call OLLAMA_TIMEOUT and aborts it', async () => {
        await svc.close();
        svc = build({ OLLAMA_TIMEOUT_MS: '150', OLLAMA_FIRST_BYTE_TIMEOUT_MS: '150' });
        await svc.preload(MODEL);
        sim.hang(true);
        const aborted = sim.waitFor('aborted');
        await assert.rejects(svc.version(), appError('OLLAMA_TIMEOUT'));
        await aborted;
        await assert.rejects(
          svc.chat({ model: MODEL, messages: USER }),
          appError('OLLAMA_TIMEOUT'),
        );
        assert.equal(telemetry.inferences.at(-1)?.outcome, 'timeout');
      });

      it('gives a stream with no first byte OLLAMA_TIMEOUT (first_byte)', async () => {
        await svc.close();
        svc = build({ OLLAMA_FIRST_BYTE_TIMEOUT_MS: '150' });
        await svc.preload(MODEL);
        sim.hang(true);
        await assert.rejects(
          svc.chatStream({ model: MODEL, messages: USER }),
          appError('OLLAMA_TIMEOUT', (e) => assert.deepEqual(e.details, { phase: 'first_byte' })),
        );
      });

      it('ends a stream that goes quiet with OLLAMA_TIMEOUT (idle) and frees Ollama', async () => {
        await svc.close();
        svc = build({ OLLAMA_STREAM_IDLE_TIMEOUT_MS: '150' });
        sim.hold(); // the first chunk comes, then silence
        const aborted = sim.waitFor('aborted');
        const stream = await svc.chatStream({ model: MODEL, messages: USER });
        await assert.rejects(
          drain(stream),
          appError('OLLAMA_TIMEOUT', (e) => assert.deepEqual(e.details, { phase: 'idle' })),
        );
        await aborted;
        assert.equal(svc.queueStats().inFlight, 0);
      });

      it('retries a generation refused with 503 busy, then succeeds', async () => {
        await svc.preload(MODEL);
        sim.failNext(1, 503);
        await svc.chat({ model: MODEL, messages: USER });
        assert.equal(chatRequests().length, 2);
      });

      it('gives OLLAMA_BUSY with Retry-After when Ollama stays busy', async () => {
        await svc.preload(MODEL);
        sim.failNext(10, 503);
        await assert.rejects(
          svc.chat({ model: MODEL, messages: USER }),
          appError('OLLAMA_BUSY', (e) => assert.ok((e.retryAfterS ?? 0) >= 1)),
        );
        assert.equal(chatRequests().length, 3); // first try + OLLAMA_RETRY_MAX (2)
        assert.equal(telemetry.inferences.at(-1)?.outcome, 'busy');
      });

      it('never runs a generation twice once Ollama answered (500)', async () => {
        await svc.preload(MODEL);
        sim.failNext(1, 500);
        await assert.rejects(
          svc.chat({ model: MODEL, messages: USER }),
          appError('OLLAMA_UPSTREAM_ERROR', (e) =>
            assert.deepEqual(e.details, { upstream_status: 500 }),
          ),
        );
        assert.equal(chatRequests().length, 1);
      });

      it('retries an idempotent read after a 500', async () => {
        sim.failNext(1, 500, 'boom', 'any');
        assert.equal(await svc.version(), '0.12.6');
        assert.equal(sim.requests.filter((r) => r.path === '/api/version').length, 2);
      });

      it('maps 404 to MODEL_NOT_FOUND by status and does not retry it', async () => {
        await assert.rejects(
          svc.chat({ model: 'nope', messages: USER }),
          appError('MODEL_NOT_FOUND'),
        );
        await assert.rejects(svc.show('nope'), appError('MODEL_NOT_FOUND'));
        await assert.rejects(
          svc.chatStream({ model: 'nope', messages: USER }),
          appError('MODEL_NOT_FOUND'),
        );
        assert.equal(chatRequests().length, 0, 'the load answers 404 before any chat is sent');
        assert.equal(telemetry.inferences.at(-1)?.outcome, 'not_found');
      });

      it('answers a 400 of Ollama as OLLAMA_BAD_REQUEST (400), its reason in details', async () => {
        await assert.rejects(
          svc.chat({ model: 'nomic-embed-text', messages: USER }),
          appError('OLLAMA_BAD_REQUEST', (e) => {
            assert.equal(e.status, 400);
            const details = e.details as { upstream_status: number; upstream_message: string };
            assert.equal(details.upstream_status, 400);
            assert.match(details.upstream_message, /does not support chat/);
          }),
        );
      });

      it('reads no more than 4 KB of an error body, however long Ollama makes it', async () => {
        await svc.chat({ model: MODEL, messages: USER }); // loaded: the next request is the chat
        sim.failNext(1, 400, 'x'.repeat(1024 * 1024));
        await assert.rejects(
          svc.chat({ model: MODEL, messages: USER }),
          appError('OLLAMA_BAD_REQUEST', (e) => {
            const details = e.details as { upstream_message: string };
            assert.ok(
              details.upstream_message.length <= 4096,
              `${details.upstream_message.length}`,
            );
            assert.match(details.upstream_message, /^\{"error":"xxx/);
          }),
        );
        assert.equal((await svc.chat({ model: MODEL, messages: USER })).response.done, true);
      });

      it('turns an error line in the middle of a stream into OLLAMA_UPSTREAM_ERROR', async () => {
        sim.errorMidStream(2);
        const stream = await svc.chatStream({ model: MODEL, messages: USER });
        await assert.rejects(drain(stream), appError('OLLAMA_UPSTREAM_ERROR'));
        assert.equal(chatRequests().length, 1);
        assert.equal(telemetry.inferences.at(-1)?.outcome, 'error');
      });

      it('turns a dropped connection mid-stream into OLLAMA_UNAVAILABLE, without a retry', async () => {
        sim.dropMidStream(2);
        const stream = await svc.chatStream({ model: MODEL, messages: USER });
        await assert.rejects(drain(stream), appError('OLLAMA_UNAVAILABLE'));
        assert.equal(chatRequests().length, 1);
      });

      it('fails an answered chat whose answer carries an error line, once (OLLAMA_UPSTREAM_ERROR)', async () => {
        sim.errorMidStream(2);
        await assert.rejects(
          svc.chat({ model: MODEL, messages: USER }),
          appError('OLLAMA_UPSTREAM_ERROR'),
        );
        assert.equal(chatRequests().length, 1);
        assert.equal(telemetry.inferences.at(-1)?.outcome, 'error');
      });

      it('fails an answered chat whose connection drops mid-answer (OLLAMA_UNAVAILABLE), without a retry', async () => {
        sim.dropMidStream(2);
        await assert.rejects(
          svc.chat({ model: MODEL, messages: USER }),
          appError('OLLAMA_UNAVAILABLE'),
        );
        assert.equal(chatRequests().length, 1);
      });

      it('reports a pull of an unknown model as a pull error', async () => {
        await assert.rejects(
          drain(svc.pull('no-such-model:1b')),
          appError('OLLAMA_UPSTREAM_ERROR', (e) =>
            assert.equal((e.details as { phase: string }).phase, 'pull'),
          ),
        );
      });
    });

    describe('when the caller goes away', () => {
      it('aborts the Ollama request of a stream (the simulator sees the request end)', async () => {
        sim.hold();
        const controller = new AbortController();
        const stream = await svc.chatStream(
          { model: MODEL, messages: USER },
          { signal: controller.signal },
        );
        const it = stream[Symbol.asyncIterator]();
        await it.next();
        assert.equal(sim.inFlight(), 1);
        const aborted = sim.waitFor('aborted');
        controller.abort();
        await assert.rejects(it.next(), (err: unknown) => (err as Error).name === 'AbortError');
        await aborted;
        assert.equal(sim.inFlight(), 0);
        assert.equal(telemetry.inferences.at(-1)?.outcome, 'cancelled');
        assert.equal(svc.queueStats().inFlight, 0);
      });

      it('aborts the Ollama request when the consumer stops reading early', async () => {
        sim.hold();
        const stream = await svc.chatStream({ model: MODEL, messages: USER });
        const aborted = sim.waitFor('aborted');
        for await (const _ of stream) break;
        await aborted;
        assert.equal(svc.queueStats().inFlight, 0);
      });

      it('aborts a hung non-streamed call', async () => {
        sim.hang(true);
        const controller = new AbortController();
        const call = svc.version({ signal: controller.signal });
        await sim.waitFor('request');
        const aborted = sim.waitFor('aborted');
        controller.abort();
        await assert.rejects(call, (err: unknown) => (err as Error).name === 'AbortError');
        await aborted;
      });
    });
  });
}
