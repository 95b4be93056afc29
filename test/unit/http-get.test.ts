import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSsrfGuard } from '../../services/net/ssrf-guard';
import { createHttpGetTool } from '../../services/tools/http-get';
import { ToolError } from '../../services/tools/types';

const ctx = () => ({ signal: new AbortController().signal });

describe('http_get tool', () => {
  let server: Server;
  let base: string;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/hello') {
        res.setHeader('content-type', 'text/plain');
        res.end('hello world');
      } else if (req.url === '/big') {
        res.setHeader('content-type', 'text/plain');
        res.end('x'.repeat(5000));
      } else if (req.url === '/bounce') {
        res.writeHead(302, { location: 'https://169.254.169.254/latest/meta-data/' });
        res.end();
      } else if (req.url === '/local-bounce') {
        res.writeHead(301, { location: '/hello' });
        res.end();
      } else {
        res.setHeader('content-type', 'application/octet-stream');
        res.end(Buffer.from([0, 1, 2]));
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const allowlisted = createHttpGetTool({
    guard: createSsrfGuard({ allowHosts: ['example.com'] }),
  });

  for (const url of [
    'https://127.0.0.1/',
    'https://10.1.1.1/',
    'https://169.254.169.254/latest/meta-data/',
    'https://evil.example.net/',
  ]) {
    it(`refuses ${url}`, async () => {
      await assert.rejects(allowlisted.run({ url }, ctx()), (err: unknown) => {
        assert.ok(err instanceof ToolError);
        assert.match(err.message, /^Refused: /);
        assert.equal(err.retryable, false);
        return true;
      });
    });
  }

  // The operator trusts 127.0.0.1 here so the fetching logic can be checked against a local server.
  const local = createHttpGetTool({
    guard: createSsrfGuard({ allowHosts: [], trustedHosts: ['127.0.0.1'] }),
    maxBytes: 1000,
  });

  it('fetches text from an allowed host', async () => {
    const out = (await local.run({ url: `${base}/hello` }, ctx())) as Record<string, unknown>;
    assert.equal(out.status, 200);
    assert.equal(out.body, 'hello world');
    assert.equal(out.truncated, false);
  });

  it('cuts the body at the size limit', async () => {
    const out = (await local.run({ url: `${base}/big` }, ctx())) as Record<string, unknown>;
    assert.equal((out.body as string).length, 1000);
    assert.equal(out.truncated, true);
  });

  it('follows a redirect only after checking its target', async () => {
    const ok = (await local.run({ url: `${base}/local-bounce` }, ctx())) as Record<string, unknown>;
    assert.equal(ok.body, 'hello world');
    await assert.rejects(
      local.run({ url: `${base}/bounce` }, ctx()),
      /Refused: .*169\.254\.169\.254/,
    );
  });

  it('refuses binary content', async () => {
    await assert.rejects(local.run({ url: `${base}/bin` }, ctx()), /not text/);
  });
});
