import assert from 'node:assert/strict';
import request from 'supertest';
import { keyId } from '../../middleware/auth';
import { createAuthPolicy } from '../../middleware/auth-policy';
import { ANONYMOUS, canAccess } from '../../src/principal';
import { buildTestApp, testApps, type RunningApp, type TestApp } from '../support/build-app';
import { createCaptureLogger } from '../support/capture-logger';
import { ENDPOINTS, PLACEHOLDER_RUN } from '../support/endpoints';
import {
  ADMIN_KEY,
  AGENT_KEY,
  AGENT_KEY_2,
  TEST_API_KEYS,
  bearer,
  isErrorShape,
  send,
} from '../support/security';

const KEYED = { API_KEYS: TEST_API_KEYS, RATE_LIMIT_PER_MINUTE: '100000' };

describe('auth (HTTP)', () => {
  const apps = testApps();
  afterEach(() => apps.closeAll());

  describe('when API keys are configured', () => {
    let t: TestApp;
    let app: TestApp['app'];
    before(async () => {
      t = await buildTestApp({ env: KEYED });
      app = t.app;
    });
    after(() => t.close());

    it('answers 401 UNAUTHENTICATED without a key, with WWW-Authenticate', async () => {
      const res = await request(app).get('/ollama/models');
      assert.equal(res.status, 401);
      assert.ok(isErrorShape(res.body));
      assert.equal(res.body.error.code, 'UNAUTHENTICATED');
      assert.equal(res.headers['www-authenticate'], 'Bearer');
    });

    it('answers 401 for a wrong key, a truncated key, an over-long key and a Basic header', async () => {
      for (const headers of [
        bearer('wrong-key-0123456789abcdef'),
        bearer(ADMIN_KEY.slice(0, -1)),
        bearer(`${ADMIN_KEY}x`),
        bearer('k'.repeat(5000)),
        { 'x-api-key': `${AGENT_KEY} ` + 'x' },
        { authorization: `Basic ${Buffer.from(`admin:${ADMIN_KEY}`).toString('base64')}` },
      ]) {
        const res = await request(app).get('/ollama/models').set(headers);
        assert.equal(res.status, 401, JSON.stringify(headers).slice(0, 60));
        assert.equal(res.body.error.code, 'UNAUTHENTICATED');
        assert.equal(res.body.error.message, 'The API key is not valid.');
      }
    });

    it('accepts Authorization: Bearer and X-API-Key alike', async () => {
      const a = await request(app).get('/ollama/models').set(bearer(AGENT_KEY));
      const b = await request(app).get('/ollama/models').set('X-API-Key', AGENT_KEY);
      assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.equal(b.status, 200, JSON.stringify(b.body));
    });

    it('answers 403 FORBIDDEN when an agent key calls an admin route', async () => {
      const res = await request(app)
        .post('/ollama/model/switch')
        .set(bearer(AGENT_KEY))
        .send({ model: 'x' });
      assert.equal(res.status, 403);
      assert.ok(isErrorShape(res.body));
      assert.equal(res.body.error.code, 'FORBIDDEN');
      assert.deepEqual(res.body.error.details, { required_role: 'admin' });
    });

    it('cannot be dodged with case or a trailing slash (Express routes match both)', async () => {
      for (const path of [
        '/OLLAMA/MODEL/SWITCH',
        '/ollama/model/switch/',
        '/Ollama/Model/Switch/',
      ]) {
        const res = await request(app).post(path).set(bearer(AGENT_KEY)).send({});
        assert.equal(res.status, 403, path);
      }
    });

    it('reads no body before authorising: an unauthenticated 2 MB body gets 401, not 413', async () => {
      const res = await request(app)
        .post('/agents/run')
        .set('content-type', 'application/json')
        .send(`{"input":"${'a'.repeat(2 * 1024 * 1024)}"}`);
      assert.equal(res.status, 401);
    });

    it('fails closed on a path without a policy row: 401 without a key, 403 for an agent key, 404 for admin', async () => {
      const anon = await request(app).get('/no/such/path');
      assert.equal(anon.status, 401);
      const agent = await request(app).get('/no/such/path').set(bearer(AGENT_KEY));
      assert.equal(agent.status, 403);
      assert.equal(agent.body.error.code, 'FORBIDDEN');
      const admin = await request(app).get('/no/such/path').set(bearer(ADMIN_KEY));
      assert.equal(admin.status, 404);
      assert.equal(admin.body.error.code, 'NOT_FOUND');
    });

    it('keeps probes open, and ignores even a bad key on them', async () => {
      assert.equal((await request(app).get('/health')).status, 200);
      assert.equal(
        (await request(app).get('/health').set(bearer('bad-key-0123456789abc'))).status,
        200,
      );
    });

    it('never logs a key, only its digest id', async () => {
      const { logger, lines } = createCaptureLogger();
      const { app: logged } = await apps.build({
        env: { API_KEYS: TEST_API_KEYS },
        deps: { logger },
      });
      await request(logged).get('/ollama/models').set(bearer(AGENT_KEY));
      await request(logged).post('/ollama/model/switch').set(bearer(AGENT_KEY)).send({});
      await request(logged)
        .get('/ollama/models')
        .set(bearer(`${ADMIN_KEY}-wrong`));
      await request(logged).get('/ollama/models').set('x-api-key', ADMIN_KEY);
      const text = JSON.stringify(lines());
      assert.ok(lines().length > 0);
      for (const key of [ADMIN_KEY, AGENT_KEY])
        assert.ok(!text.includes(key), 'a key reached the log');
      assert.ok(text.includes(keyId(AGENT_KEY)), 'the 403 line names the key id');
    });
  });

  describe('when no keys are configured', () => {
    it('lets every caller in as the anonymous admin and warns loudly once at start', async () => {
      const { logger, lines } = createCaptureLogger();
      const { app } = await apps.build({ deps: { logger } });
      const warnings = lines().filter((l) => l.level === 'warn');
      assert.equal(warnings.length, 1);
      assert.match(String(warnings[0]?.message), /AUTHENTICATION OFF/);
      // Past auth and the admin policy, the router validates the body.
      const res = await request(app).post('/ollama/model/switch').send({});
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'VALIDATION_FAILED');
    });

    it('says AUTH_DISABLED in the warning when that is why', async () => {
      const { logger, lines } = createCaptureLogger();
      await apps.build({ env: { AUTH_DISABLED: 'true' }, deps: { logger } });
      assert.match(String(lines()[0]?.message), /AUTH_DISABLED=true/);
    });
  });

  describe('the role matrix (each endpoint × no key / agent / admin, real routers)', () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp({ env: KEYED });
    });
    after(() => t.close());
    const policy = createAuthPolicy();
    const callers = [
      { name: 'no key', headers: {}, rank: 0 },
      { name: 'agent', headers: bearer(AGENT_KEY), rank: 1 },
      { name: 'admin', headers: bearer(ADMIN_KEY), rank: 2 },
    ];
    const needed = { open: 0, agent: 1, admin: 2 } as const;
    for (const row of ENDPOINTS) {
      it(`${row.method} ${row.path} is ${row.access}`, async () => {
        assert.equal(
          policy.match(row.method, row.path)?.access,
          row.access,
          'policy table drifted',
        );
        for (const caller of callers) {
          const call = request(t.app)
            [row.method === 'DELETE' ? 'delete' : row.method === 'POST' ? 'post' : 'get'](row.path)
            .set(caller.headers);
          const res = await (row.validBody === undefined
            ? call
            : call.send(row.validBody as object));
          const allowed = caller.rank >= needed[row.access];
          const label = `${caller.name}: ${res.status} ${JSON.stringify(res.body)}`;
          if (allowed) {
            assert.ok(res.status !== 401 && res.status !== 403, label);
            // A real router answered: not the JSON 404 for an unknown path, not a 405.
            assert.ok(res.status !== 405 && res.body?.error?.code !== 'NOT_FOUND', label);
            if (row.validBody !== undefined && !row.path.includes('/runs/')) {
              assert.ok(res.status >= 200 && res.status < 300, label);
            }
          } else {
            assert.equal(res.status, caller.rank === 0 ? 401 : 403, label);
            assert.ok(isErrorShape(res.body), label);
          }
        }
      });
    }
  });

  describe('run ownership', () => {
    it('canAccess: the owner key and any admin, never another agent key', () => {
      const a = { id: keyId(AGENT_KEY), role: 'agent' as const };
      const b = { id: keyId(AGENT_KEY_2), role: 'agent' as const };
      const admin = { id: keyId(ADMIN_KEY), role: 'admin' as const };
      assert.equal(canAccess(a, a.id), true);
      assert.equal(canAccess(b, a.id), false);
      assert.equal(canAccess(admin, a.id), true);
      assert.equal(canAccess(ANONYMOUS, a.id), true);
    });

    describe('over HTTP', () => {
      let t: TestApp;
      let running: RunningApp;
      let run: string;
      before(async () => {
        t = await buildTestApp({ env: KEYED });
        running = await t.listen();
        const created = await send(running, 'POST', '/agents/run', {
          headers: { ...bearer(AGENT_KEY), 'content-type': 'application/json' },
          body: JSON.stringify({ input: 'hi', background: true }),
        });
        assert.equal(created.status, 202, created.text);
        run = `/agents/runs/${encodeURIComponent(String((created.json as { id: string }).id))}`;
      });
      after(() => t.close());
      const get = (path: string, key: string) => request(t.app).get(path).set(bearer(key));
      const cancel = (key: string) =>
        request(t.app).post(`${run}/cancel`).set(bearer(key)).send({});

      it("key B cannot read, follow or cancel key A's run: 404 RUN_NOT_FOUND, as for no run", async () => {
        for (const res of [
          await get(run, AGENT_KEY_2),
          await get(`${run}/events`, AGENT_KEY_2),
          await cancel(AGENT_KEY_2),
        ]) {
          assert.equal(res.status, 404, JSON.stringify(res.body));
          assert.ok(isErrorShape(res.body));
          assert.equal(res.body.error.code, 'RUN_NOT_FOUND');
        }
        // Nothing tells B the run exists: the answer for a run that does not exist is the same.
        const none = await get(`/agents/runs/${PLACEHOLDER_RUN}`, AGENT_KEY_2);
        assert.equal(none.body.error.message, (await get(run, AGENT_KEY_2)).body.error.message);
        assert.equal((await request(t.app).get(run)).status, 401);
      });

      it('key A and an admin key can read, follow and cancel it', async () => {
        for (const key of [AGENT_KEY, ADMIN_KEY]) {
          const read = await get(run, key);
          assert.equal(read.status, 200, JSON.stringify(read.body));
          assert.equal(read.body.object, 'agent.run');
          // The run is over (or ends soon): its stream replays every event and ends.
          const events = await send(running, 'GET', `${run}/events`, { headers: bearer(key) });
          assert.equal(events.status, 200, events.text);
          assert.match(String(events.headers['content-type']), /^text\/event-stream/);
          assert.match(events.text, /event: run\.created/);
        }
        for (const key of [AGENT_KEY, ADMIN_KEY]) {
          const res = await cancel(key);
          assert.equal(res.status, 200, JSON.stringify(res.body));
        }
      });
    });
  });
});
