import assert from 'node:assert/strict';
import request from 'supertest';
import { testApps } from '../support/build-app';
import { AGENT_KEY, TEST_API_KEYS, bearer } from '../support/security';

const chat = (model: string, extra: object = {}) => ({
  model,
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});

describe("drop-in endpoints: errors in each API's shape", () => {
  const apps = testApps();
  afterEach(() => apps.closeAll());

  describe('when ALLOW_ANY_INSTALLED_MODEL is false', () => {
    it('serves the active model and answers 404 for another installed one', async () => {
      const app = await apps.app({ API_KEYS: TEST_API_KEYS, ALLOW_ANY_INSTALLED_MODEL: 'false' });
      await request(app)
        .post('/v1/chat/completions')
        .set(bearer(AGENT_KEY))
        .send(chat('llama3.2:3b'))
        .expect(200);
      const other = await request(app)
        .post('/v1/chat/completions')
        .set(bearer(AGENT_KEY))
        .send(chat('qwen3:8b'));
      assert.equal(other.status, 404);
      assert.deepEqual(other.body, {
        error: {
          message: 'This gateway serves only its active model.',
          type: 'not_found_error',
          param: null,
          code: 'MODEL_NOT_FOUND',
        },
      });
      const native = await request(app)
        .post('/api/chat')
        .set(bearer(AGENT_KEY))
        .send(chat('qwen3:8b'));
      assert.equal(native.status, 404);
      assert.deepEqual(native.body, { error: 'This gateway serves only its active model.' });
    });
  });

  it('answers a body that fails its schema with 400 VALIDATION_FAILED before Ollama sees it', async () => {
    const t = await apps.build({ env: { API_KEYS: TEST_API_KEYS } });
    const res = await request(t.app)
      .post('/v1/chat/completions')
      .set(bearer(AGENT_KEY))
      .send({ model: 'x' });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'VALIDATION_FAILED');
    assert.equal(res.body.error.type, 'invalid_request_error');
    assert.equal(t.sim!.requests.filter((r) => r.path.startsWith('/v1')).length, 0);
    // Which field, as OpenAI's `param` and in the message; Ollama's shape has the message only.
    const field = { model: 'x', messages: [{ role: 'user', content: 'hi' }], stream: 'true' };
    const openai = await request(t.app)
      .post('/v1/chat/completions')
      .set(bearer(AGENT_KEY))
      .send(field);
    assert.equal(openai.status, 400);
    assert.equal(openai.body.error.param, 'stream');
    assert.equal(openai.body.error.message, 'The request is not valid: /stream must be boolean');
    const ollama = await request(t.app).post('/api/chat').set(bearer(AGENT_KEY)).send(field);
    assert.deepEqual(ollama.body, { error: 'The request is not valid: /stream must be boolean' });
    // An option of a type Ollama refuses (with a 500 of its own): a 400 with the reason, here.
    const options = await request(t.app)
      .post('/api/generate')
      .set(bearer(AGENT_KEY))
      .send({ model: 'x', prompt: 'hi', options: { temperature: 'hot', stop: ['\n'], seed: 7 } });
    assert.equal(options.status, 400);
    assert.match(String(options.body.error), /\/options\/temperature must be number/);
    // Paths match without regard to case, and so does the shape of their errors.
    const upper = await request(t.app)
      .post('/V1/chat/completions')
      .set(bearer(AGENT_KEY))
      .send({ model: 1 });
    assert.equal(upper.status, 400);
    assert.equal(upper.body.error.type, 'invalid_request_error');
  });

  it("passes Ollama's 400 reason on (chat with an embedding model)", async () => {
    const app = await apps.app({ API_KEYS: TEST_API_KEYS });
    const res = await request(app)
      .post('/v1/chat/completions')
      .set(bearer(AGENT_KEY))
      .send(chat('nomic-embed-text'));
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'OLLAMA_BAD_REQUEST');
    // Ollama's reason itself, taken out of its /v1 error object, not that object as text.
    assert.match(res.body.error.message, /^[^{].*does not support chat/);
  });

  it('answers a wrong method with 405 and Allow, an unknown /v1 path with 404', async () => {
    const app = await apps.app({ API_KEYS: TEST_API_KEYS });
    const wrong = await request(app).get('/v1/chat/completions').set(bearer(AGENT_KEY));
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.allow, 'POST');
    assert.equal(wrong.body.error.code, 'METHOD_NOT_ALLOWED');
    const unknown = await request(app).post('/v1/audio/speech').set(bearer(AGENT_KEY)).send({});
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.type, 'not_found_error');
    const anonymous = await request(app).get('/v1/models');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers['www-authenticate'], 'Bearer');
    assert.equal(anonymous.body.error.type, 'authentication_error');
  });
});
