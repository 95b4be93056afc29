import assert from 'node:assert/strict';
import { ConfigError, loadConfig, normalizeOllamaHost } from '../../src/config';
import { createSchemaRegistry } from '../../src/validation';

describe('loadConfig', () => {
  const schemas = createSchemaRegistry();
  const load = (env: Record<string, string>) => loadConfig(env, schemas);

  describe('several Ollama backends', () => {
    it('normalises each OLLAMA_HOSTS entry and the OLLAMA_DISCOVERY name like OLLAMA_HOST', () => {
      const c = load({
        OLLAMA_HOSTS: ' gpu-0:11434, https://gpu-1.example ,:9000',
        OLLAMA_DISCOVERY: 'ollama-headless.ai.svc',
      });
      assert.deepEqual(c.OLLAMA_HOSTS, [
        'http://gpu-0:11434',
        'https://gpu-1.example:443',
        'http://127.0.0.1:9000',
      ]);
      assert.equal(c.OLLAMA_DISCOVERY, 'http://ollama-headless.ai.svc:11434');
      assert.ok(Object.isFrozen(c.OLLAMA_HOSTS));
      const none = load({});
      assert.deepEqual(none.OLLAMA_HOSTS, []);
      assert.equal(none.OLLAMA_DISCOVERY, '');
      assert.equal(none.OLLAMA_MODEL_REPLICAS, 0);
    });

    it('names the bad entry of OLLAMA_HOSTS and a bad OLLAMA_DISCOVERY', () => {
      assert.throws(
        () => load({ OLLAMA_HOSTS: 'gpu-0,ftp://gpu-1', OLLAMA_DISCOVERY: 'ftp://x' }),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.problems.some((p) => /OLLAMA_HOSTS: "ftp:\/\/gpu-1" scheme must be http/.test(p)) &&
          err.problems.some((p) => /OLLAMA_DISCOVERY: scheme must be http or https/.test(p)),
      );
    });
  });

  describe('when the environment is empty', () => {
    it('applies every documented default and freezes the result', () => {
      const c = load({});
      assert.equal(c.PORT, 8080);
      assert.equal(c.HOST, '0.0.0.0');
      assert.equal(c.OLLAMA_HOST, 'http://127.0.0.1:11434');
      assert.equal(c.LOG_LEVEL, 'info');
      assert.equal(c.LOG_FORMAT, 'json');
      assert.equal(c.BODY_LIMIT, 1024 * 1024);
      assert.deepEqual(c.ALLOWED_ORIGINS, []);
      assert.equal(c.READY_REQUIRES_OLLAMA, true);
      assert.equal(c.OLLAMA_KEEP_ALIVE, '5m');
      assert.ok(Object.isFrozen(c));
      assert.ok(Object.isFrozen(c.ALLOWED_ORIGINS));
      assert.throws(() => {
        (c as { PORT: number }).PORT = 1;
      }, TypeError);
    });

    it('has a value for every variable the schema declares', () => {
      const c = load({}) as unknown as Record<string, unknown>;
      const declared = Object.keys(schemas.schema('config').properties as object);
      for (const key of declared) assert.notEqual(c[key], undefined, key);
    });
  });

  describe('when values are given as strings', () => {
    it('converts them by the schema types', () => {
      const c = load({
        PORT: '9000',
        READY_REQUIRES_OLLAMA: 'false',
        ALLOWED_ORIGINS: 'https://a.example, https://b.example',
        BODY_LIMIT: '256kb',
        OLLAMA_KEEP_ALIVE: '-1',
      });
      assert.equal(c.PORT, 9000);
      assert.equal(c.READY_REQUIRES_OLLAMA, false);
      assert.deepEqual(c.ALLOWED_ORIGINS, ['https://a.example', 'https://b.example']);
      assert.equal(c.BODY_LIMIT, 256 * 1024);
      assert.equal(c.OLLAMA_KEEP_ALIVE, -1);
    });

    it('treats an empty value as unset', () => {
      assert.equal(load({ PORT: '' }).PORT, 8080);
    });

    it('does not read process.env', () => {
      process.env.PORT = '1234';
      try {
        assert.equal(load({}).PORT, 8080);
      } finally {
        delete process.env.PORT;
      }
    });
  });

  describe('when values are bad', () => {
    const rows: Array<[Record<string, string>, RegExp]> = [
      [{ PORT: 'abc' }, /PORT: must be integer \(got "abc"\)/],
      [{ PORT: '70000' }, /PORT: must be <= 65535/],
      [{ PORT: '-1' }, /PORT: must be >= 0/],
      [{ PORT: '80.5' }, /PORT: must be integer/],
      [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL: must be one of: error, warn, info/],
      [{ LOG_FORMAT: 'xml' }, /LOG_FORMAT: must be one of: json, pretty/],
      [{ BODY_LIMIT: 'lots' }, /BODY_LIMIT: must match pattern/],
      [{ ALLOWED_ORIGINS: '*' }, /ALLOWED_ORIGINS: must match pattern/],
      [{ OLLAMA_HOST: 'ftp://x' }, /OLLAMA_HOST: scheme must be http or https/],
      [{ OLLAMA_MODEL: '../etc' }, /OLLAMA_MODEL: must match pattern/],
      [{ OLLAMA_KEEP_ALIVE: 'soon' }, /OLLAMA_KEEP_ALIVE: must match pattern/],
      [{ READY_REQUIRES_OLLAMA: 'yes' }, /READY_REQUIRES_OLLAMA: must be boolean/],
      [{ QUEUE_TIMEOUT_MS: '0' }, /QUEUE_TIMEOUT_MS: must be >= 1/],
      [{ API_KEYS: 'short:agent' }, /API_KEYS: entry 1 key must be at least 16 characters/],
      [{ API_KEYS: 'abcdefghijklmnopqrst:root' }, /API_KEYS: entry 1 must be key:role/],
      [{ REDIS_URL: 'http://redis' }, /REDIS_URL: must match pattern/],
    ];
    for (const [env, expected] of rows) {
      it(`rejects ${JSON.stringify(env)}`, () => {
        assert.throws(
          () => load(env),
          (err: unknown) => {
            assert.ok(err instanceof ConfigError);
            assert.match(err.message, expected);
            return true;
          },
        );
      });
    }

    it('names every bad variable in one message', () => {
      assert.throws(
        () => load({ PORT: 'abc', LOG_LEVEL: 'loud', OLLAMA_HOST: 'ftp://x', QUEUE_MAX: '-5' }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.problems.length, 4);
          for (const name of ['PORT', 'LOG_LEVEL', 'OLLAMA_HOST', 'QUEUE_MAX']) {
            assert.match(err.message, new RegExp(`^  - ${name}: `, 'm'));
          }
          return true;
        },
      );
    });

    it('never echoes a secret value', () => {
      const secret = 'supersecretvalue-but-bad:root';
      assert.throws(
        () => load({ API_KEYS: secret }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.doesNotMatch(err.message, /supersecret/);
          return true;
        },
      );
    });

    it('refuses production without keys unless AUTH_DISABLED=true', () => {
      assert.throws(() => load({ NODE_ENV: 'production' }), /API_KEYS: production/);
      assert.equal(load({ NODE_ENV: 'production', AUTH_DISABLED: 'true' }).AUTH_DISABLED, true);
      const c = load({ NODE_ENV: 'production', API_KEYS: 'k'.repeat(20) + ':admin' });
      assert.deepEqual(c.API_KEYS, [{ key: 'k'.repeat(20), role: 'admin' }]);
    });
  });
});

describe('normalizeOllamaHost', () => {
  // The forms Ollama's envconfig and ollama-js accept (shared/ollama-api.md §0 and §7).
  const rows: Array<[string, string]> = [
    ['http://127.0.0.1:11434', 'http://127.0.0.1:11434'],
    ['127.0.0.1:11434', 'http://127.0.0.1:11434'],
    ['ollama:11434', 'http://ollama:11434'],
    ['ollama', 'http://ollama:11434'],
    ['http://ollama', 'http://ollama:80'],
    ['https://ollama.example.com', 'https://ollama.example.com:443'],
    ['https://ollama.example.com/', 'https://ollama.example.com:443'],
    [':5000', 'http://127.0.0.1:5000'],
    ['0.0.0.0', 'http://0.0.0.0:11434'],
    ['[::1]:9000', 'http://[::1]:9000'],
    ['[::1]', 'http://[::1]:11434'],
    ['http://user:pw@proxy:8080/ollama/', 'http://user:pw@proxy:8080/ollama'],
    ['OLLAMA:11434', 'http://ollama:11434'],
  ];
  for (const [input, expected] of rows) {
    it(`reads ${input} as ${expected}`, () => assert.equal(normalizeOllamaHost(input), expected));
  }
  for (const bad of ['ftp://x', 'http://', '://x', 'http://a b']) {
    it(`refuses ${JSON.stringify(bad)}`, () => assert.throws(() => normalizeOllamaHost(bad)));
  }
});
