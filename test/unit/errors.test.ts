import assert from 'node:assert/strict';
import { AppError, ERROR_CATALOG, errorBody, toAppError } from '../../src/errors';

describe('the error rule (src/errors)', () => {
  it('gives each catalogued code its status and message', () => {
    for (const [code, entry] of Object.entries(ERROR_CATALOG)) {
      const err = new AppError(code as keyof typeof ERROR_CATALOG);
      assert.equal(err.status, entry.status, code);
      assert.equal(err.message, entry.message, code);
      assert.match(code, /^[A-Z][A-Z_]+$/);
    }
  });

  const rows: Array<[string, unknown, string, number]> = [
    ['an AppError stays as it is', new AppError('MODEL_NOT_FOUND'), 'MODEL_NOT_FOUND', 404],
    ['a body that is not JSON', { type: 'entity.parse.failed' }, 'INVALID_JSON', 400],
    ['a body over the limit', { type: 'entity.too.large', limit: 10 }, 'PAYLOAD_TOO_LARGE', 413],
    ['an unsupported charset', { type: 'charset.unsupported' }, 'UNSUPPORTED_MEDIA_TYPE', 415],
    ['an aborted body', { type: 'request.aborted' }, 'VALIDATION_FAILED', 400],
    ['an exposed 400 (a bad gzip body)', { status: 400, expose: true }, 'VALIDATION_FAILED', 400],
    ['anything else', new Error('secret internals'), 'INTERNAL_ERROR', 500],
    ['a thrown string', 'boom', 'INTERNAL_ERROR', 500],
  ];
  for (const [name, thrown, code, status] of rows) {
    it(`maps ${name} to ${status} ${code}`, () => {
      const err = toAppError(thrown);
      assert.equal(err.code, code);
      assert.equal(err.status, status);
    });
  }

  it('never shows what it hides: the original is only the cause', () => {
    const original = new Error('password=hunter2');
    const err = toAppError(original);
    assert.equal(err.cause, original);
    assert.doesNotMatch(JSON.stringify(errorBody(err, 'r1')), /hunter2/);
    assert.deepEqual(errorBody(err, 'r1'), {
      error: { code: 'INTERNAL_ERROR', message: 'Internal error.', request_id: 'r1' },
    });
  });

  it('puts the limit of a too-large body in details', () => {
    assert.deepEqual(toAppError({ type: 'entity.too.large', limit: 1024 }).details, {
      limit_bytes: 1024,
    });
  });
});
