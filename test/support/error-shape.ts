import assert from 'node:assert/strict';
import type request from 'supertest';

export /** Asserts the one error shape and that the body's request_id is the header's. */
function assertErrorShape(res: request.Response, status: number, code: string): void {
  assert.equal(res.status, status);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.deepEqual(Object.keys(res.body as object), ['error']);
  const { error } = res.body as { error: Record<string, unknown> };
  assert.equal(error.code, code);
  assert.equal(typeof error.message, 'string');
  assert.equal(error.request_id, res.headers['x-request-id']);
  for (const key of Object.keys(error)) {
    assert.ok(['code', 'message', 'details', 'request_id'].includes(key), `unexpected ${key}`);
  }
}
