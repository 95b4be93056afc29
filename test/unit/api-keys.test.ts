import assert from 'node:assert/strict';
import { loadApiKeys } from '../../src/api-keys';
import { ConfigError } from '../../src/config';
import { ADMIN_KEY, AGENT_KEY, testConfig } from '../support/security';

describe('API keys (src/api-keys)', () => {
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
});
