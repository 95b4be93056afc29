import assert from 'node:assert/strict';
import { createAuthPolicy, AUTH_POLICY } from '../../middleware/auth-policy';

describe('the auth policy (middleware/auth-policy)', () => {
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
        // `/` has no case and its trailing slash is itself.
        if (rule.pattern.includes(':') || rule.pattern.includes('*') || rule.pattern === '/')
          continue;
        const method = rule.method === '*' ? 'GET' : rule.method;
        const odd = `${rule.pattern.toUpperCase()}/`;
        assert.equal(policy.match(method, odd)?.access, policy.match(method, rule.pattern)?.access);
      }
    });
  });
});
