import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { createApiKeyStore, loadApiKeys } from '../../src/api-keys';
import { ConfigError } from '../../src/config';
import { createSchemaRegistry } from '../../src/validation';
import { createCaptureLogger } from '../support/capture-logger';
import { createManualClock } from '../support/manual-clock';
import { createSecretMount } from '../support/secret-mount';
import { ADMIN_KEY, AGENT_KEY, AGENT_KEY_2, testConfig } from '../support/security';

const schemas = createSchemaRegistry();

/** A YAML key file with two keys: an admin and a limited agent. */
const YAML_FILE = `# mounted Secret
keys:
  - id: ops
    role: admin
    key: ${ADMIN_KEY}
  - id: team-search
    role: agent
    key: "${AGENT_KEY}"
    limits: { maxConcurrency: 4, weight: 2, priority: interactive }
    budgets:
      tokensPerDay: 100000
      tokensPerMonth: 2000000
`;

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

  describe('the YAML form', () => {
    const config = testConfig({ API_KEYS_FILE: '/k' }, schemas);
    it('gives each key its id, role, limits and budgets; keyFile reads the secret from a file', () => {
      const file = `${YAML_FILE}  - id: batch.jobs\n    role: agent\n    keyFile: /s/batch\n`;
      const keys = loadApiKeys(
        config,
        (p) => (p === '/k' ? file : p === '/s/batch' ? `${AGENT_KEY_2}\n` : assert.fail(p)),
        schemas,
      );
      assert.deepEqual(keys, [
        { key: ADMIN_KEY, role: 'admin', id: 'ops' },
        {
          key: AGENT_KEY,
          role: 'agent',
          id: 'team-search',
          limits: { maxConcurrency: 4, weight: 2, priority: 'interactive' },
          budgets: { tokensPerDay: 100000, tokensPerMonth: 2000000 },
        },
        { key: AGENT_KEY_2, role: 'agent', id: 'batch.jobs' },
      ]);
      assert.ok(Object.isFrozen(keys[1]) && Object.isFrozen(keys[1]?.limits));
    });

    it('names every problem of a bad file at once, and never a key', () => {
      const file = `keys:
  - id: ops
    role: root
    key: ${ADMIN_KEY}
  - id: ops
    role: agent
    key: ${ADMIN_KEY}
  - id: Bad_Id
    role: agent
    key: short
    limits: { weight: 0, priority: urgent }
    budgets: { tokensPerDay: -1 }
    extra: 1
  - id: other
    role: agent
  - id: both
    role: agent
    key: ${AGENT_KEY}
    keyFile: /s/x
  - id: missing
    role: agent
    keyFile: /s/missing
`;
      const read = (p: string): string => {
        if (p === '/k') return file;
        throw Object.assign(new Error('no'), { code: 'ENOENT' });
      };
      let problems: readonly string[] = [];
      assert.throws(
        () => loadApiKeys(config, read, schemas),
        (err: unknown) => err instanceof ConfigError && ((problems = err.problems), true),
      );
      const text = problems.join('\n');
      for (const expected of [
        '/keys/0/role must be one of: agent, admin',
        '/keys/2/id must match pattern',
        '/keys/2/key must NOT have fewer than 16 characters',
        '/keys/2/limits/weight must be >= 1',
        '/keys/2/limits/priority must be one of: interactive, batch',
        '/keys/2/budgets/tokensPerDay must be >= 1',
        '/keys/2/extra is not an allowed property',
      ]) {
        assert.ok(text.includes(expected), `${expected} in\n${text}`);
      }
      assert.ok(!text.includes(ADMIN_KEY) && !text.includes('short'));
      // The schema problems come first: the checks after it run on a file that passed.
      const checked = `keys:
  - { id: ops, role: admin, key: ${ADMIN_KEY} }
  - { id: ops, role: agent, key: ${ADMIN_KEY} }
  - { id: other, role: agent }
  - { id: both, role: agent, key: ${AGENT_KEY}, keyFile: /s/x }
  - { id: missing, role: agent, keyFile: /s/missing }
`;
      assert.throws(
        () => loadApiKeys(config, (p) => (p === '/k' ? checked : read(p)), schemas),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.deepEqual(err.problems, [
            'API_KEYS_FILE: /keys/1/id "ops" is already the id of /keys/0',
            'API_KEYS_FILE: /keys/1 has the same key as /keys/0',
            'API_KEYS_FILE: /keys/2/id "other" is reserved',
            'API_KEYS_FILE: /keys/2 needs exactly one of key and keyFile',
            'API_KEYS_FILE: /keys/3 needs exactly one of key and keyFile',
            'API_KEYS_FILE: /keys/4/keyFile cannot read /s/missing (ENOENT)',
          ]);
          assert.ok(!err.message.includes(ADMIN_KEY));
          return true;
        },
      );
    });

    it('refuses YAML that does not parse, naming the line but not quoting it', () => {
      assert.throws(
        () => loadApiKeys(config, () => `keys:\n  - id: a\n    key: ${ADMIN_KEY}: x\n`, schemas),
        (err: unknown) =>
          err instanceof ConfigError &&
          /not valid YAML: .* at line 3, column \d+$/.test(err.problems[0] ?? '') &&
          !err.message.includes(ADMIN_KEY),
      );
    });

    it('refuses a key given in API_KEYS and again, with an id, in the file', () => {
      const both = testConfig({ API_KEYS: `${ADMIN_KEY}:admin`, API_KEYS_FILE: '/k' }, schemas);
      assert.throws(
        () => loadApiKeys(both, () => YAML_FILE, schemas),
        /the key of id "ops" is also given in API_KEYS/,
      );
    });
  });

  describe('the key store (reload)', () => {
    it('takes a new version of a mounted Secret (..data swapped) on the next check, refuses a bad one and keeps the keys in force', async () => {
      const mount = await createSecretMount();
      await mount.write(YAML_FILE);
      const config = testConfig({ API_KEYS_FILE: mount.file }, schemas);
      const clock = createManualClock();
      const log = createCaptureLogger();
      const initial = loadApiKeys(config, undefined, schemas);
      const store = createApiKeyStore({
        config,
        initial,
        schemas,
        clock,
        logger: log.logger,
        intervalMs: 10_000,
      });
      try {
        store.start();
        assert.deepEqual(clock.pending(), [10_000]);
        assert.equal(await store.check(), false, 'the version read at start is in force');

        await mount.write(YAML_FILE.replace('team-search', 'team-find'));
        clock.advance(10_000);
        assert.equal(await store.check(), true, 'joins the check the timer started');
        assert.equal(await store.check(), false, 'nothing new since');
        assert.deepEqual(
          store.current().map((k) => k.id),
          ['ops', 'team-find'],
        );
        assert.ok(log.lines().some((l) => l.message === 'API keys reloaded'));

        const before = store.current();
        await mount.write('keys:\n  - id: ops\n    role: admin\n    key: short\n');
        assert.equal(await store.check(), false);
        assert.equal(store.current(), before, 'the keys in force stay');
        const refused = log.lines().find((l) => String(l.message).includes('refused'));
        assert.deepEqual(refused?.problems, [
          'API_KEYS_FILE: /keys/0/key must NOT have fewer than 16 characters',
        ]);
        assert.equal(refused?.level, 'error');

        await mount.write('# every key removed\n');
        assert.equal(await store.check(), false, 'no version without keys: auth would turn off');
        assert.equal(store.current(), before);

        await mount.write(`${AGENT_KEY_2}:agent\n`);
        assert.equal(await store.check(), true, 'the line form reloads too');
        assert.equal(store.current()[0]?.key, AGENT_KEY_2);
        assert.ok(!log.text().includes(AGENT_KEY_2) && !log.text().includes(ADMIN_KEY));
      } finally {
        store.stop();
        await rm(mount.dir, { recursive: true, force: true });
      }
      assert.deepEqual(clock.pending(), []);
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
