import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import type { RunningApp } from '../support/build-app';
import { useListeningApp } from '../support/compat-app';
import { ADMIN_KEY, AGENT_KEY } from '../support/security';

const MODEL = 'llama3.2:3b';

/** The official client pointed at the gateway, the key in `headers`, as its README shows. */
function client(running: RunningApp, key = AGENT_KEY): Ollama {
  return new Ollama({ host: running.url, headers: { Authorization: `Bearer ${key}` } });
}

/** ollama-js's ResponseError is not exported: it is recognised by name and status_code. */
function responseError(status: number, message?: RegExp) {
  return (err: unknown) => {
    const e = err as { name?: string; status_code?: number; error?: string };
    assert.equal(e.name, 'ResponseError');
    assert.equal(e.status_code, status);
    if (message) assert.match(e.error ?? '', message);
    return true;
  };
}

describe('the ollama client against /api', () => {
  const app = useListeningApp();

  it('chat, not streamed', async () => {
    app.t.sim!.script(MODEL, { content: 'Hi there' });
    const res = await client(app.running).chat({
      model: MODEL,
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(res.message.content, 'Hi there');
    assert.equal(res.done, true);
  });

  it('chat, streamed chunk by chunk', async () => {
    app.t.sim!.script(MODEL, { chunks: ['a', 'b', 'c'] });
    const stream = await client(app.running).chat({
      model: MODEL,
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    const parts: string[] = [];
    let final: boolean | undefined;
    for await (const chunk of stream) {
      parts.push(chunk.message.content);
      final = chunk.done;
    }
    assert.equal(parts.join(''), 'abc');
    assert.ok(parts.length >= 3);
    assert.equal(final, true);
  });

  it('generate, embed, list, show, ps and version', async () => {
    const ollama = client(app.running);
    app.t.sim!.script(MODEL, { content: 'generated' });
    assert.equal((await ollama.generate({ model: MODEL, prompt: 'x' })).response, 'generated');
    const embedded = await ollama.embed({ model: 'nomic-embed-text', input: ['a', 'b'] });
    assert.equal(embedded.embeddings.length, 2);
    const legacy = await ollama.embeddings({ model: 'nomic-embed-text', prompt: 'a' });
    assert.equal(legacy.embedding.length, 768);
    assert.ok((await ollama.list()).models.some((m) => m.name === MODEL));
    assert.ok((await ollama.show({ model: MODEL })).capabilities.includes('tools'));
    assert.ok((await ollama.ps()).models.some((m) => m.name === MODEL));
    assert.equal((await ollama.version()).version, '0.12.6');
    const root = await fetch(`${app.running.url}/`, {
      headers: { authorization: `Bearer ${AGENT_KEY}` },
    });
    assert.equal(await root.text(), 'Ollama is running');
    for (const path of ['/', '/api/tags', '/api/version', '/api/ps']) {
      const head = await fetch(`${app.running.url}${path}`, {
        method: 'HEAD',
        headers: { authorization: `Bearer ${AGENT_KEY}` },
      });
      assert.equal(head.status, 200, `HEAD ${path}`);
      assert.equal(await head.text(), '');
    }
  });

  it("a model that is not installed is a 404 in Ollama's shape", async () => {
    await assert.rejects(
      client(app.running).chat({ model: 'nope:1b', messages: [{ role: 'user', content: 'x' }] }),
      responseError(404, /not installed/),
    );
  });

  it('pull and delete: 403 for an agent key, done for an admin key', async () => {
    const agent = client(app.running);
    await assert.rejects(agent.pull({ model: 'smollm2:135m' }), responseError(403));
    await assert.rejects(agent.delete({ model: MODEL }), responseError(403));
    const admin = client(app.running, ADMIN_KEY);
    assert.equal((await admin.pull({ model: 'smollm2:135m' })).status, 'success');
    const progress: string[] = [];
    for await (const p of await admin.pull({ model: 'smollm2:135m', stream: true }))
      progress.push(p.status);
    assert.equal(progress.at(-1), 'success');
    assert.equal((await admin.delete({ model: 'smollm2:135m' })).status, 'success');
    assert.ok(!(await admin.list()).models.some((m) => m.name === 'smollm2:135m'));
  });

  it("anything else under /api is a 404 in Ollama's shape, and a wrong key a 401", async () => {
    const other = await fetch(`${app.running.url}/api/blobs/sha256:00`, {
      method: 'POST',
      headers: { authorization: `Bearer ${AGENT_KEY}` },
    });
    assert.equal(other.status, 404);
    assert.deepEqual(Object.keys((await other.json()) as object), ['error']);
    await assert.rejects(client(app.running, 'wrong-key').list(), responseError(401));
  });
});
