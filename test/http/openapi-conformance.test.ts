import assert from 'node:assert/strict';
import { buildTestApp, type RunningApp, type TestApp } from '../support/build-app';

const ADMIN = 'admin-0123456789abcdef';
const AGENT = 'agent-0123456789abcdef';
const MODEL = 'llama3.2:3b';

interface Answer {
  content?: Record<string, { schema?: { $ref?: string } }>;
  headers?: Record<string, unknown>;
}
interface Document {
  paths: Record<string, Record<string, { responses: Record<string, Answer> }>>;
}

/**
 * Real answers held to `/openapi.json`: for each request, the document must list its status
 * (exactly, or its `4XX`/`5XX` range) and content type, and the body must be valid against the
 * schema the document names for them. A client generated from the document reads what the
 * gateway sends, errors and failed probes included.
 */
describe('answers as /openapi.json describes them', function () {
  this.timeout(30_000);
  let t: TestApp;
  let running: RunningApp;
  let doc: Document;

  before(async () => {
    t = await buildTestApp({
      env: {
        API_KEYS: `${ADMIN}:admin,${AGENT}:agent`,
        OLLAMA_MODEL: MODEL,
        OLLAMA_RETRY_MAX: '0',
      },
    });
    running = await t.listen();
    doc = (await (await fetch(`${running.url}/openapi.json`)).json()) as Document;
  });
  after(async () => {
    await running.close();
    await t.close();
  });

  /** Sends the request and returns what in its answer the document does not describe. */
  async function mismatches(
    template: string,
    method: string,
    url: string,
    options: { key?: string; body?: unknown } = {},
  ): Promise<{ status: number; problems: string[] }> {
    const headers: Record<string, string> = {};
    if (options.key) headers.authorization = `Bearer ${options.key}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${running.url}${url}`, {
      method,
      headers,
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
    const text = await res.text();
    const op = doc.paths[template]?.[method.toLowerCase()];
    if (!op) return { status: res.status, problems: [`no operation ${method} ${template}`] };
    const answer = op.responses[String(res.status)] ?? op.responses[`${String(res.status)[0]}XX`];
    if (!answer) return { status: res.status, problems: [`status ${res.status} not listed`] };
    // Every header the document lists is sent (Retry-After only on a 429 or 503).
    const missing = Object.keys(answer.headers ?? {}).filter(
      (name) =>
        !res.headers.has(name) && !(name === 'Retry-After' && ![429, 503].includes(res.status)),
    );
    if (missing.length > 0) return { status: res.status, problems: [`headers ${missing}`] };
    const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    const media = answer.content?.[type];
    if (!media) return { status: res.status, problems: [`content type ${type} not listed`] };
    const ref = media.schema?.$ref;
    if (ref === undefined || type !== 'application/json')
      return { status: res.status, problems: [] };
    const id = ref.replace('#/components/schemas/', '');
    const problems = t.schemas
      .check(id, JSON.parse(text) as unknown, 'body')
      .map((p) => `${id}${p.path} ${p.message}`);
    return { status: res.status, problems };
  }

  it('a failing probe: the same report with 503, not the error shape', async () => {
    // Before startup has run and before the first Ollama health check.
    for (const [path, key] of [
      ['/health/ready', undefined],
      ['/health/startup', undefined],
      ['/ollama/health', AGENT],
    ] as const) {
      const { status, problems } = await mismatches(path, 'GET', path, key ? { key } : {});
      assert.equal(status, 503, path);
      assert.deepEqual(problems, [], path);
    }
  });

  it('a /v1 validation error names the bad field in param', async () => {
    const { status, problems } = await mismatches(
      '/v1/chat/completions',
      'POST',
      '/v1/chat/completions',
      { key: AGENT, body: { model: MODEL } },
    );
    assert.equal(status, 400);
    assert.deepEqual(problems, []);
  });

  it('answers and errors across the APIs', async () => {
    await t.ollamaHealth.refresh();
    await t.startup.run();
    const chat = { model: MODEL, messages: [{ role: 'user', content: 'hi' }] };
    const cases: Array<[string, string, string, { key?: string; body?: unknown }, number]> = [
      ['/health/ready', 'GET', '/health/ready', {}, 200],
      ['/health/live', 'GET', '/health/live', {}, 200],
      ['/ollama/health', 'GET', '/ollama/health', { key: AGENT }, 200],
      ['/agents/run', 'POST', '/agents/run', { key: AGENT, body: { input: 'hi' } }, 200],
      [
        '/agents/run',
        'POST',
        '/agents/run',
        { key: AGENT, body: { input: 'hi', background: true } },
        202,
      ],
      ['/agents/run', 'POST', '/agents/run', { key: AGENT, body: { input: 3 } }, 400],
      ['/agents/run', 'POST', '/agents/run', { body: { input: 'hi' } }, 401],
      ['/agents/runs/{id}', 'GET', '/agents/runs/run_nosuchrun01', { key: AGENT }, 404],
      ['/ollama/model/switch', 'POST', '/ollama/model/switch', { key: AGENT, body: chat }, 403],
      ['/v1/chat/completions', 'POST', '/v1/chat/completions', { key: AGENT, body: chat }, 200],
      ['/v1/models/{model}', 'GET', '/v1/models/nope:1b', { key: AGENT }, 404],
      ['/api/chat', 'POST', '/api/chat', { key: AGENT, body: { ...chat, stream: false } }, 200],
      ['/api/tags', 'GET', '/api/tags', { key: AGENT }, 200],
      ['/usage', 'GET', '/usage', { key: AGENT }, 200],
    ];
    for (const [template, method, url, options, expected] of cases) {
      const { status, problems } = await mismatches(template, method, url, options);
      assert.equal(status, expected, `${method} ${url}`);
      assert.deepEqual(problems, [], `${method} ${url}`);
    }
  });
});
