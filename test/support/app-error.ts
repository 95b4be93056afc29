import assert from 'node:assert/strict';
import { isAppError, type AppError, type ErrorCode } from '../../src/errors';

/** An assert.rejects validator matching an AppError by code (never by message text). */
export function appError(code: ErrorCode, check?: (e: AppError) => void) {
  return (err: unknown) => {
    assert.ok(isAppError(err), `expected AppError ${code}, got ${String(err)}`);
    assert.equal(err.code, code);
    check?.(err);
    return true;
  };
}
