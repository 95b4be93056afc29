import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import type { AgentRun } from '../../services/agents/types';
import { createMemoryIdempotencyRepository } from '../../services/agents/idempotency';
import { AppError } from '../../src/errors';
import { startAgentsHarness, type AgentsHarness } from '../support/agents-harness';

const MODEL = 'llama3.2:3b';
const KEY = randomBytes(24);
const SECRET = `whsec_${KEY.toString('base64')}`;

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver that answers each delivery with the next status of `statuses` (then 200). */
async function startReceiver(
  statuses: number[],
): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.statusCode = statuses.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    server,
  };
}

describe('background runs, cancel, webhooks and idempotency', () => {
  let h: AgentsHarness;
  beforeEach(async () => {
    h = await startAgentsHarness({
      env: { WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOWLIST: '127.0.0.1' },
    });
  });
  afterEach(() => h.close());

  it('answers 202 with a Location, and the run can be polled until it completes', async () => {
    h.sim.script(MODEL, { chunks: ['Done', '.'] });
    const gate = h.sim.hold();
    const res = await request(h.url)
      .post('/agents/run')
      .send({ input: 'bg', background: true })
      .expect(202);
    const run = res.body as AgentRun;
    assert.equal(res.headers.location, `/agents/runs/${run.id}`);
    assert.ok(['queued', 'in_progress'].includes(run.status));
    await h.sim.waitFor('chunk');
    const polled = await request(h.url)
      .get(res.headers.location as string)
      .expect(200);
    assert.equal((polled.body as AgentRun).status, 'in_progress');
    gate.release();
    await (await h.agents.service.find(run.id, undefined)).wait();
    const final = await request(h.url).get(`/agents/runs/${run.id}`).expect(200);
    assert.equal((final.body as AgentRun).status, 'completed');
    assert.equal((final.body as AgentRun).output.text, 'Done.');
    await request(h.url).get('/agents/runs/run_doesnotexist123').expect(404);
  });

  it('cancels a running run (idempotently) and aborts its Ollama request', async () => {
    h.sim.script(MODEL, { chunks: ['a', 'b', 'c'] });
    h.sim.hold();
    const res = await request(h.url)
      .post('/agents/run')
      .send({ input: 'bg', background: true })
      .expect(202);
    const id = (res.body as AgentRun).id;
    await h.sim.waitFor('chunk');
    const aborted = h.sim.waitFor('aborted');
    const cancelled = await request(h.url).post(`/agents/runs/${id}/cancel`).expect(200);
    assert.equal((cancelled.body as AgentRun).status, 'cancelled');
    assert.equal((cancelled.body as AgentRun).stop_reason, 'cancelled');
    await aborted;
    const again = await request(h.url).post(`/agents/runs/${id}/cancel`).expect(200);
    assert.equal((again.body as AgentRun).status, 'cancelled');
    await request(h.url).get(`/agents/runs/${id}/cancel`).expect(405);
  });

  it('POSTs a signed webhook, retrying after a 500, and records the delivery on the run', async () => {
    const receiver = await startReceiver([500]);
    try {
      h.sim.script(MODEL, { content: 'Webhook answer.' });
      const res = await request(h.url)
        .post('/agents/run')
        .send({ input: 'hook', webhook: { url: receiver.url }, metadata: { job: '7' } })
        .expect(202);
      const id = (res.body as AgentRun).id;
      await (await h.agents.service.find(id, undefined)).settled();
      assert.equal(receiver.received.length, 2, 'one failed attempt, one retry');
      const [first, second] = receiver.received;
      assert.equal(
        first?.headers['webhook-id'],
        second?.headers['webhook-id'],
        'retries keep the message id',
      );
      for (const delivery of receiver.received) {
        const msgId = String(delivery.headers['webhook-id']);
        const ts = String(delivery.headers['webhook-timestamp']);
        // Verified the way a receiver would, independently of the gateway's own helper.
        const expected = createHmac('sha256', KEY)
          .update(`${msgId}.${ts}.${delivery.body}`)
          .digest('base64');
        assert.equal(delivery.headers['webhook-signature'], `v1,${expected}`);
        assert.ok(Math.abs(Number(ts) - Date.now() / 1000) < 60);
      }
      const payload = JSON.parse(second?.body ?? '{}') as { type: string; data: AgentRun };
      assert.equal(payload.type, 'run.completed');
      assert.equal(payload.data.id, id);
      assert.equal(payload.data.output.text, 'Webhook answer.');
      assert.deepEqual(payload.data.metadata, { job: '7' });
      const run = (await request(h.url).get(`/agents/runs/${id}`).expect(200)).body as AgentRun;
      assert.deepEqual(run.webhook, {
        url: receiver.url,
        events: [
          'run.completed',
          'run.incomplete',
          'run.failed',
          'run.cancelled',
          'run.requires_action',
        ],
        last_delivery_status: 'delivered',
        last_status_code: 200,
        attempts: 2,
      });
    } finally {
      await new Promise<void>((r) => receiver.server.close(() => r()));
    }
  });

  it('records a failed delivery after WEBHOOK_MAX_ATTEMPTS', async () => {
    const receiver = await startReceiver([503, 503, 503, 503, 503, 503]);
    try {
      h.sim.script(MODEL, { content: 'x' });
      const res = await request(h.url)
        .post('/agents/run')
        .send({ input: 'hook', webhook: { url: receiver.url } });
      const record = await h.agents.service.find((res.body as AgentRun).id, undefined);
      await record.settled();
      assert.equal(receiver.received.length, 5);
      assert.equal(record.run.webhook?.last_delivery_status, 'failed');
      assert.equal(record.run.webhook?.attempts, 5);
      assert.equal(record.run.webhook?.last_status_code, 503);
    } finally {
      await new Promise<void>((r) => receiver.server.close(() => r()));
    }
  });

  /** POSTs a run with a webhook to `url`, expects 400 and returns the error's code and first detail. */
  const refusedWebhook = async (url: string) => {
    const res = await request(h.url)
      .post('/agents/run')
      .send({ input: 'x', webhook: { url } })
      .expect(400);
    const { error } = res.body as {
      error: { code: string; details: Array<{ path: string; message: string }> };
    };
    return { code: error.code, detail: error.details[0] };
  };

  it('refuses webhook URLs that fail the SSRF guard', async () => {
    for (const url of [
      'https://10.0.0.1/hook',
      'https://169.254.169.254/',
      'http://example.com/hook',
    ]) {
      assert.equal((await refusedWebhook(url)).code, 'VALIDATION_FAILED');
    }
  });

  it('gives one message for a webhook host that does not resolve and one that is loopback or private', async () => {
    const messages = new Set<string>();
    for (const url of [
      'https://localhost/h',
      'https://no-such-host.invalid/h',
      'https://10.0.0.1/h',
      'https://[::7f00:1]:8080/h',
    ]) {
      const { detail } = await refusedWebhook(url);
      assert.equal(detail?.path, '/webhook/url');
      messages.add(String(detail?.message));
    }
    assert.equal(messages.size, 1, [...messages].join(' | '));
  });

  /** A background run started with Idempotency-Key `k-1`, waited for until it ended. */
  async function keyedRunDone(on: AgentsHarness) {
    on.sim.script(MODEL, { content: 'once' });
    const body = { input: 'pay invoice 12', background: true };
    const first = await request(on.url)
      .post('/agents/run')
      .set('Idempotency-Key', 'k-1')
      .send(body)
      .expect(202);
    const id = (first.body as AgentRun).id;
    await (await on.agents.service.find(id, undefined)).wait();
    return { body, id };
  }

  it('replays the original run for a repeated Idempotency-Key, and answers 409 for another body', async () => {
    const { body, id } = await keyedRunDone(h);
    const again = await request(h.url)
      .post('/agents/run')
      .set('Idempotency-Key', 'k-1')
      .send(body)
      .expect(202);
    assert.equal((again.body as AgentRun).id, id);
    assert.equal(again.headers['idempotency-replayed'], 'true');
    assert.equal((again.body as AgentRun).status, 'completed');
    assert.equal(
      h.sim.requests.filter(
        (r) =>
          r.path === '/api/chat' &&
          ((r.body as { messages?: unknown[] }).messages ?? []).length > 0,
      ).length,
      1,
      'the agent ran once',
    );
    const conflict = await request(h.url)
      .post('/agents/run')
      .set('Idempotency-Key', 'k-1')
      .send({ ...body, input: 'pay invoice 13' })
      .expect(409);
    assert.equal((conflict.body as { error: { code: string } }).error.code, 'IDEMPOTENCY_CONFLICT');
  });

  it('answers 409 IDEMPOTENCY_RUN_EXPIRED, and runs nothing, once the key’s run is no longer kept', async () => {
    const small = await startAgentsHarness({ env: { RUNS_MAX: '1' } });
    try {
      const { body, id } = await keyedRunDone(small);
      // Another run takes the one place RUNS_MAX leaves: the keyed run is evicted.
      await request(small.url).post('/agents/run').send({ input: 'x' }).expect(200);
      const keyed = () =>
        small.sim.requests.filter(
          (r) => r.path === '/api/chat' && JSON.stringify(r.body).includes('invoice 12'),
        ).length;
      assert.equal(keyed(), 1);
      const again = await Promise.all(
        [1, 2].map(() =>
          request(small.url).post('/agents/run').set('Idempotency-Key', 'k-1').send(body),
        ),
      );
      for (const res of again) {
        assert.equal(res.status, 409);
        const { error } = res.body as { error: { code: string; details: { run_id: string } } };
        assert.deepEqual([error.code, error.details.run_id], ['IDEMPOTENCY_RUN_EXPIRED', id]);
      }
      assert.equal(keyed(), 1, 'the agent did not run again');
    } finally {
      await small.close();
    }
  });

  it('cancels the run and frees the key when its key cannot be recorded: a retry runs it once', async () => {
    const keys = createMemoryIdempotencyRepository({ ttlMs: 60_000, max: 100, now: Date.now });
    let failures = 1;
    const flaky: typeof keys = {
      ...keys,
      remember: (...args) =>
        failures-- > 0
          ? Promise.reject(new AppError('REDIS_UNAVAILABLE', undefined, { retryAfterS: 1 }))
          : keys.remember(...args),
    };
    const own = await startAgentsHarness({ idempotency: flaky });
    try {
      const gate = own.sim.hold();
      const body = { input: 'pay invoice 14', background: true };
      const failed = await request(own.url)
        .post('/agents/run')
        .set('Idempotency-Key', 'k-2')
        .send(body)
        .expect(503);
      assert.equal((failed.body as { error: { code: string } }).error.code, 'REDIS_UNAVAILABLE');
      gate.release();
      // The run the key missed was stopped: it ends cancelled, and no answer of it is kept.
      const runsByStatus = async (): Promise<string> =>
        (await own.metrics.registry.getSingleMetricAsString('agent_runs_total'))
          .split('\n')
          .filter((line) => line.startsWith('agent_runs_total{'))
          .map((line) => /status="(\w+)"/.exec(line)?.[1] + ' ' + line.split(' ').at(-1))
          .join(', ');
      for (let i = 0; i < 1000 && !(await runsByStatus()).includes('cancelled 1'); i += 1) {
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(await runsByStatus(), 'cancelled 1');
      const retried = await request(own.url)
        .post('/agents/run')
        .set('Idempotency-Key', 'k-2')
        .send(body)
        .expect(202);
      await (await own.agents.service.find((retried.body as AgentRun).id, undefined)).wait();
      const again = await request(own.url)
        .post('/agents/run')
        .set('Idempotency-Key', 'k-2')
        .send(body)
        .expect(202);
      assert.equal(again.headers['idempotency-replayed'], 'true');
    } finally {
      await own.close();
    }
  });

  it('hides runs from other principals', async () => {
    h.sim.script(MODEL, { content: 'mine' });
    const res = await request(h.url).post('/agents/run').send({ input: 'x' }).expect(200);
    const id = (res.body as AgentRun).id;
    await assert.rejects(
      h.agents.service.find(id, { id: 'someone-else', role: 'agent' }),
      (err: { code?: string }) => err.code === 'RUN_NOT_FOUND',
    );
    assert.equal((await h.agents.service.find(id, { id: 'anonymous', role: 'agent' })).run.id, id);
  });

  it('lists agents and shows one', async () => {
    const list = await request(h.url).get('/agents').expect(200);
    assert.deepEqual(h.schemas.check('agent-list.response', list.body, 'response'), []);
    assert.ok(
      (list.body as { data: Array<{ name: string }> }).data.some((a) => a.name === 'default'),
    );
    const one = await request(h.url).get('/agents/default').expect(200);
    assert.deepEqual((one.body as { tools: string[] }).tools, ['current_time', 'calculator']);
    await request(h.url).get('/agents/missing').expect(404);
    await request(h.url).get('/agents/run').expect(405);
  });
});
