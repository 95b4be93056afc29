import assert from 'node:assert/strict';
import { keyId, readCredential } from '../../middleware/auth';
import { ADMIN_KEY, AGENT_KEY } from '../support/security';

describe('auth (middleware/auth)', () => {
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
});
