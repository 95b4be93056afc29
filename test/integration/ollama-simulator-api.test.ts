import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { startOllamaSimulator } from '../support/ollama-simulator';
import type { OllamaSimulator } from '../support/ollama-simulator';
import { responseError } from '../support/response-error';

const user = [{ role: 'user', content: 'hi' }];
const TOO_LONG =
  'the prompt is longer than the context length currently available to the model; shorten the prompt, adjust the context length in settings, or use a model with a longer context length';
const HF = 'hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M';
const PRIVATE = 'registry.example.com:5000/team/model:v1';

function post(sim: OllamaSimulator, path: string, body: unknown, method = 'POST') {
  return fetch(`${sim.url}${path}`, { method, body: JSON.stringify(body) });
}

function words(n: number): string {
  return Array.from({ length: n }, (_, i) => `w${i}`).join(' ');
}

describe('ollama simulator: names and the newer API', () => {
  let sim: OllamaSimulator;
  let client: Ollama;

  beforeEach(async () => {
    sim = await startOllamaSimulator({
      models: [
        { name: 'llama3.2:3b', capabilities: ['completion', 'tools'] },
        { name: 'qwen3:8b', family: 'qwen3', capabilities: ['completion', 'tools', 'thinking'] },
        { name: 'nomic-embed-text', capabilities: ['embedding'] },
        { name: HF, capabilities: ['completion', 'tools'] },
        { name: PRIVATE },
        {
          name: 'my-gpt:latest',
          remoteHost: 'https://ollama.com:443',
          remoteModel: 'gpt-oss:120b',
        },
      ],
    });
    client = new Ollama({ host: sim.url });
  });
  afterEach(() => sim.close());

  describe('model names (ollama-api.md §0.1)', () => {
    it('accepts three-part names and lists them in their shortest canonical form', async () => {
      const names = (await client.list()).models.map((m) => m.name);
      assert.ok(names.includes(HF));
      assert.ok(names.includes(PRIVATE));
      assert.ok(names.includes('nomic-embed-text:latest'), ':latest is the default tag');
      assert.equal((await client.show({ model: PRIVATE })).details.format, 'gguf');
    });

    it('matches names case-insensitively, with library/ and the default registry dropped', async () => {
      const spellings = [
        'hf.co/Bartowski/llama-3.2-1b-instruct-gguf:q4_k_m',
        'HF.CO/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M',
      ];
      for (const model of spellings) {
        const answer = await client.chat({ model, messages: user });
        assert.equal(answer.model, model, 'echoed as sent');
      }
      for (const model of [
        'library/llama3.2:3b',
        'registry.ollama.ai/library/llama3.2:3b',
        'LLAMA3.2:3B',
      ]) {
        assert.equal((await client.generate({ model, prompt: 'x' })).done, true);
      }
      assert.deepEqual((await client.ps()).models.map((m) => m.name).sort(), [HF, 'llama3.2:3b']);
      await client.embed({ model: 'nomic-embed-text:latest', input: 'x' });
      await client.embed({ model: 'library/nomic-embed-text', input: 'x' });
    });

    it("answers Ollama's 400 for invalid names on every route that takes one", async () => {
      const invalid = [
        'hf.co/model',
        'user.name/model',
        'a/b/c/d',
        'bad name',
        'x:',
        '-x',
        'x:a:b/c',
      ];
      for (const model of invalid) {
        for (const [path, body] of [
          ['/api/chat', { model, messages: user }],
          ['/api/generate', { model, prompt: 'x' }],
          ['/api/embed', { model, input: 'x' }],
          ['/api/show', { model }],
        ] as const) {
          const res = await post(sim, path, body);
          assert.equal(res.status, 400, `${path} ${model}`);
          assert.deepEqual(await res.json(), { error: 'invalid model name' });
        }
      }
      const del = await post(sim, '/api/delete', { model: 'bad name' }, 'DELETE');
      assert.deepEqual(
        [del.status, await del.json()],
        [400, { error: 'name "bad name" is invalid' }],
      );
      const copySource = await post(sim, '/api/copy', { source: 'a/b/c/d', destination: 'x' });
      assert.deepEqual(await copySource.json(), { error: 'source "a/b/c/d" is invalid' });
      const copyDest = await post(sim, '/api/copy', { source: 'llama3.2:3b', destination: 'x y' });
      assert.deepEqual(await copyDest.json(), { error: 'destination "x y" is invalid' });
      await assert.rejects(
        client.chat({ model: 'llama3.2:3b:cloud:local', messages: user }),
        responseError(400, 'use either :local or :cloud, not both: "llama3.2:3b:cloud:local"'),
      );
    });
  });

  describe('think (§4.5)', () => {
    it('accepts true, false and the four levels, and refuses anything else', async () => {
      for (const think of [true, false, 'low', 'medium', 'high', 'max'] as const) {
        const res = await post(sim, '/api/chat', { model: 'qwen3:8b', messages: user, think });
        assert.equal(res.status, 200, String(think));
      }
      assert.equal(
        (await post(sim, '/api/chat', { model: 'llama3.2:3b', messages: user, think: false }))
          .status,
        200,
      );
      await assert.rejects(
        client.chat({ model: 'llama3.2:3b', messages: user, think: 'high' }),
        responseError(400, '"llama3.2:3b" does not support thinking'),
      );
      const bad = await post(sim, '/api/chat', {
        model: 'qwen3:8b',
        messages: user,
        think: 'extreme',
      });
      assert.deepEqual(await bad.json(), {
        error:
          'invalid think value: "extreme" (must be "high", "medium", "low", "max", true, or false)',
      });
      // /v1 maps reasoning_effort onto think: none → false, xhigh → max (§6.1).
      const v1 = (reasoning_effort: string, model = 'llama3.2:3b') =>
        post(sim, '/v1/chat/completions', { model, messages: user, reasoning_effort });
      assert.equal((await v1('none')).status, 200);
      assert.equal((await v1('xhigh')).status, 400);
      assert.equal((await v1('xhigh', 'qwen3:8b')).status, 200);
      const wrongType = await post(sim, '/api/generate', {
        model: 'qwen3:8b',
        prompt: 'x',
        think: 1,
      });
      assert.equal(wrongType.status, 400);
    });
  });

  describe('cloud models (§1.13)', () => {
    const cloudName = 'gpt-oss:20b-cloud';

    it('answers 401 with a signin_url by default, in the native shape on /v1 too', async () => {
      await assert.rejects(
        client.chat({ model: cloudName, messages: user }),
        responseError(401, 'unauthorized'),
      );
      const body = (await (
        await post(sim, '/api/chat', { model: 'gpt-oss:20b:cloud', messages: user })
      ).json()) as {
        error: string;
        signin_url: string;
      };
      assert.equal(body.error, 'unauthorized');
      assert.match(body.signin_url, /^https:\/\/ollama\.com\/connect\?name=.+&key=.+/);
      const v1 = await post(sim, '/v1/chat/completions', { model: cloudName, messages: user });
      assert.equal(v1.status, 401);
      assert.equal(((await v1.json()) as { error: unknown }).error, 'unauthorized');
    });

    it('answers 403 when cloud is disabled, and passes ollama.com refusals through', async () => {
      sim.setCloud('disabled');
      await assert.rejects(
        client.chat({ model: cloudName, messages: user }),
        responseError(403, 'ollama cloud is disabled: remote model is unavailable'),
      );
      await assert.rejects(
        client.show({ model: cloudName }),
        responseError(403, 'ollama cloud is disabled: remote model details are unavailable'),
      );
      sim.setCloud({
        status: 429,
        body: { error: 'too many requests' },
        headers: { 'Retry-After': '7' },
      });
      const limited = await post(sim, '/api/chat', { model: cloudName, messages: user });
      assert.equal(limited.status, 429);
      assert.equal(limited.headers.get('retry-after'), '7');
      assert.deepEqual(await limited.json(), { error: 'too many requests' });
      sim.setCloud('unreachable');
      const down = await post(sim, '/api/chat', { model: cloudName, messages: user });
      assert.equal(down.status, 502);
    });

    it('answers a cloud model when allowed, without loading anything locally', async () => {
      sim.setCloud('ok');
      const answer = await client.chat({ model: cloudName, messages: user, think: 'high' });
      assert.equal(answer.done, true);
      assert.deepEqual((await client.ps()).models, []);
      assert.equal(sim.counts().loads, 0);
    });

    it('lists an installed stub with remote_host, and refuses one on a host not in OLLAMA_REMOTES', async () => {
      const stub = (await client.list()).models.find(
        (m) => m.name === 'my-gpt:latest',
      ) as unknown as {
        remote_host?: string;
        remote_model?: string;
      };
      assert.equal(stub.remote_host, 'https://ollama.com:443');
      assert.equal(stub.remote_model, 'gpt-oss:120b');
      sim.setCloud('ok');
      const answer = (await (
        await post(sim, '/api/chat', { model: 'my-gpt', messages: user, stream: false })
      ).json()) as Record<string, unknown>;
      assert.equal(answer.remote_model, 'gpt-oss:120b');
      assert.equal(answer.remote_host, 'https://ollama.com:443');
      assert.deepEqual(sim.loaded(), [], 'run remotely, not loaded here');
      sim.setCloud({ status: 429, body: { error: 'rate limited' } });
      const limited = await post(sim, '/api/chat', { model: 'my-gpt', messages: user });
      assert.equal(limited.status, 429);
      assert.deepEqual(await limited.json(), {
        StatusCode: 429,
        Status: '429 Too Many Requests',
        error: 'rate limited',
      });
      const strict = await startOllamaSimulator({
        remotes: ['cloud.example.com'],
        models: [{ name: 'my-gpt', remoteHost: 'https://ollama.com:443' }],
      });
      try {
        const res = await post(strict, '/api/chat', { model: 'my-gpt', messages: user });
        assert.deepEqual(
          [res.status, await res.json()],
          [400, { error: 'this server cannot run this remote model' }],
        );
      } finally {
        await strict.close();
      }
    });
  });

  describe('truncate and shift (§4.6, §2.3)', () => {
    const long = [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: words(20) },
      { role: 'assistant', content: words(20) },
      { role: 'user', content: 'and now?' },
    ];

    it('refuses a transcript longer than num_ctx with truncate:false', async () => {
      const res = await post(sim, '/api/chat', {
        model: 'llama3.2:3b',
        messages: long,
        options: { num_ctx: 16 },
        truncate: false,
      });
      assert.deepEqual([res.status, await res.json()], [400, { error: TOO_LONG }]);
    });

    it('drops the oldest messages silently by default, and refuses with shift:false when even that is too long', async () => {
      const fitted = await client.chat({
        model: 'llama3.2:3b',
        messages: long,
        options: { num_ctx: 16 },
      });
      assert.equal(fitted.prompt_eval_count, 4, 'system and last message kept');
      const huge = [{ role: 'user', content: words(40) }];
      const res = await post(sim, '/api/chat', {
        model: 'llama3.2:3b',
        messages: huge,
        options: { num_ctx: 16 },
        shift: false,
      });
      assert.deepEqual([res.status, await res.json()], [400, { error: TOO_LONG }]);
    });
  });

  describe('tool history (§4.2, §4.3)', () => {
    it('accepts tool results with tool_call_id and calls sent back with their index', async () => {
      const messages = [
        ...user,
        {
          role: 'assistant',
          content: '',
          tool_calls: [
            { id: 'call_abc12345', function: { index: 0, name: 'f', arguments: { a: 1 } } },
          ],
        },
        { role: 'tool', content: '42', tool_name: 'f', tool_call_id: 'call_abc12345' },
      ];
      const res = await post(sim, '/api/chat', { model: 'llama3.2:3b', messages, stream: false });
      assert.equal(res.status, 200);
      const sent = sim.requests.at(-1)?.body as { messages: Array<Record<string, unknown>> };
      assert.equal(sent.messages[2]?.tool_call_id, 'call_abc12345');
    });

    it('refuses arguments that are not an object, as Go decoding does', async () => {
      const messages = [
        ...user,
        {
          role: 'assistant',
          content: '',
          tool_calls: [{ function: { name: 'f', arguments: '{"a":1}' } }],
        },
      ];
      const res = await post(sim, '/api/chat', { model: 'llama3.2:3b', messages });
      assert.equal(res.status, 400);
    });
  });
});
