import assert from 'node:assert/strict';
import { createAuthPolicy, AUTH_POLICY } from '../../middleware/auth-policy';
import { keyId, readCredential } from '../../middleware/auth';
import { loadApiKeys } from '../../src/api-keys';
import { ConfigError } from '../../src/config';
import { ADMIN_KEY, AGENT_KEY, testConfig } from '../support/security';

describe('auth (unit)', () => {
  describe('keyId', () => {
    it('is a short, stable digest id that does not contain the key', () => {
      const id = keyId(ADMIN_KEY);
      assert.match(id, /^key_[0-9a-f]{16}$/);
      assert.equal(keyId(ADMIN_KEY), id);
      assert.notEqual(keyId(AGENT_KEY), id);
      assert.ok(!id.includes(ADMIN_KEY.slice(0, 8)));
    });
  });

  describe('readCredential', () => {
    it('reads a Bearer token, with any case of the scheme', () => {
      assert.equal(readCredential({ authorization: `Bearer ${ADMIN_KEY}` }), ADMIN_KEY);
      assert.equal(readCredential({ authorization: `bearer  ${ADMIN_KEY} ` }), ADMIN_KEY);
    });
    it('reads X-API-Key', () => {
      assert.equal(readCredential({ 'x-api-key': ADMIN_KEY }), ADMIN_KEY);
    });
    it('counts a non-Bearer Authorization as a (bad) credential, and nothing as none', () => {
      assert.equal(readCredential({ authorization: 'Basic Zm9vOmJhcg==' }), 'Basic Zm9vOmJhcg==');
      assert.equal(readCredential({}), undefined);
    });
  });

  describe('loadApiKeys', () => {
    const base = testConfig({ API_KEYS: `${ADMIN_KEY}:admin` });
    it('adds the lines of API_KEYS_FILE (comments and blank lines ignored) to API_KEYS', () => {
      const file = `# mounted Secret\n${AGENT_KEY}:agent\r\n\n`;
      const keys = loadApiKeys({ ...base, API_KEYS_FILE: '/secret/keys' }, (p) => {
        assert.equal(p, '/secret/keys');
        return file;
      });
      assert.deepEqual(
        keys.map((k) => k.role),
        ['admin', 'agent'],
      );
      assert.ok(Object.isFrozen(keys));
    });
    it('refuses an unreadable file, naming the file but no key', () => {
      assert.throws(
        () =>
          loadApiKeys({ ...base, API_KEYS_FILE: '/nope' }, () => {
            throw Object.assign(new Error('x'), { code: 'ENOENT' });
          }),
        (err: unknown) => err instanceof ConfigError && /\/nope \(ENOENT\)/.test(err.message),
      );
    });
    it('refuses bad lines and a key given twice with two roles, without quoting keys', () => {
      const file = `short:agent\n${ADMIN_KEY}:agent\n`;
      assert.throws(
        () => loadApiKeys({ ...base, API_KEYS_FILE: '/k' }, () => file),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.problems.length === 2 &&
          !err.message.includes(ADMIN_KEY) &&
          !err.message.includes('short'),
      );
      assert.throws(
        () => loadApiKeys({ ...base, API_KEYS_FILE: '/k' }, () => `${ADMIN_KEY}:agent`),
        (err: unknown) =>
          err instanceof ConfigError &&
          /different roles/.test(err.message) &&
          !err.message.includes(ADMIN_KEY),
      );
    });
  });

  describe('the production refusal', () => {
    it('refuses NODE_ENV=production without keys unless AUTH_DISABLED=true', () => {
      assert.throws(() => testConfig({ NODE_ENV: 'production' }), /AUTH_DISABLED=true/);
      assert.doesNotThrow(() => testConfig({ NODE_ENV: 'production', AUTH_DISABLED: 'true' }));
      assert.doesNotThrow(() =>
        testConfig({ NODE_ENV: 'production', API_KEYS: `${ADMIN_KEY}:admin` }),
      );
    });
    it('with API_KEYS_FILE, decides once the file is read: an empty file is refused', () => {
      const config = testConfig({ NODE_ENV: 'production', API_KEYS_FILE: '/k' });
      assert.throws(() => loadApiKeys(config, () => '# no keys yet\n'), /AUTH_DISABLED=true/);
      assert.equal(loadApiKeys(config, () => `${AGENT_KEY}:agent`).length, 1);
      const off = testConfig({
        NODE_ENV: 'production',
        API_KEYS_FILE: '/k',
        AUTH_DISABLED: 'true',
      });
      assert.deepEqual(
        loadApiKeys(off, () => ''),
        [],
      );
    });
  });

  describe('the policy table', () => {
    const policy = createAuthPolicy();
    // What each request needs: its row's access, or admin when no row covers it (fail closed).
    const rows: Array<[string, string, string]> = [
      ['GET', '/health', 'open'],
      ['HEAD', '/health/ready', 'open'],
      ['POST', '/health', 'open'],
      ['GET', '/health/detailed', 'admin'],
      ['GET', '/HEALTH/DETAILED/', 'admin'],
      ['POST', '/agents/run', 'agent'],
      ['POST', '/Agents/Run/', 'agent'],
      ['DELETE', '/agents/run', 'admin'],
      ['POST', '/ollama/model/switch', 'admin'],
      ['POST', '/OLLAMA/model/SWITCH/', 'admin'],
      ['DELETE', '/ollama/models/library/qwen3:0.6b', 'admin'],
      ['GET', '/ollama/models', 'agent'],
      ['GET', '/ollama/something-new', 'admin'],
      ['GET', '/ollama', 'admin'],
      ['GET', '/agents/runs/r1', 'agent'],
      ['GET', '/agents/runs/r1/steps', 'admin'],
      ['GET', '/nothing-here', 'admin'],
      ['GET', '/health/nothing', 'admin'],
    ];
    for (const [method, path, access] of rows) {
      it(`${method} ${path} → ${access}`, () => {
        assert.equal(policy.match(method, path)?.access ?? 'admin', access);
      });
    }
    it('gives each request the rate-limit budget of its row: runs, unlimited for open rows, else api', () => {
      assert.equal(policy.match('POST', '/agents/run')?.budget, 'runs');
      assert.equal(policy.match('POST', '/Agents/Run/')?.budget, 'runs');
      assert.equal(policy.match('GET', '/agents/run')?.budget, 'api');
      assert.equal(policy.match('GET', '/ollama/models')?.budget, 'api');
      for (const path of [
        '/health',
        '/health/live',
        '/health/ready',
        '/health/startup',
        '/metrics',
      ]) {
        assert.equal(policy.match('GET', path)?.budget, 'unlimited', path);
      }
      for (const rule of AUTH_POLICY) {
        assert.equal(rule.budget === 'unlimited', rule.access === 'open', rule.pattern);
      }
    });
    it('matches the way Express routes do, so case and trailing slashes cannot dodge it', () => {
      for (const rule of AUTH_POLICY) {
        if (rule.pattern.includes(':') || rule.pattern.includes('*') || rule.pattern === '/') {
          continue;
        }
        const method = rule.method === '*' ? 'GET' : rule.method;
        const odd = `${rule.pattern.toUpperCase()}/`;
        assert.equal(policy.match(method, odd)?.access, policy.match(method, rule.pattern)?.access);
      }
    });
  });
});
