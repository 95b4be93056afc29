import assert from 'node:assert/strict';
import {
  REPO_ROOT,
  SERVER_ENTRY,
  runToExit,
  startServerProcess,
  type ServerProcess,
} from '../support/server-process';

describe('the server process', () => {
  describe('when the configuration is bad', () => {
    it('exits non-zero before listening and names every bad variable (node)', async () => {
      const r = await runToExit(process.execPath, [SERVER_ENTRY], {
        PORT: '70000',
        LOG_LEVEL: 'loud',
      });
      assert.equal(r.code, 78);
      assert.match(r.stderr, /PORT: must be <= 65535/);
      assert.match(r.stderr, /LOG_LEVEL: must be one of/);
      assert.doesNotMatch(r.stdout, /listening/);
    });

    it('PORT=abc npm start exits non-zero and names PORT', async function () {
      this.timeout(60_000); // npm start builds first
      const r = await runToExit(
        'npm',
        ['start', '--silent'],
        { PORT: 'abc', HOME: process.env.HOME ?? '/root' },
        REPO_ROOT,
      );
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /PORT: must be integer \(got "abc"\)/);
    });
  });

  describe('when the configuration is valid', () => {
    let server: ServerProcess | undefined;
    afterEach(() => server?.kill());

    it('serves GET /health', async () => {
      server = await startServerProcess({});
      const res = await fetch(`${server.url}/health`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(body.status, 'ok');
      assert.equal(body.service, 'ollama-agent-gateway');
      assert.match(String(body.version), /^\d+\.\d+\.\d+/);
    });
  });
});
