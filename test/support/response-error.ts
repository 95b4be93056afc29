import assert from 'node:assert/strict';

/**
 * An `assert.rejects` validator for ollama-js's ResponseError, which the package does not
 * export: recognised by name, HTTP status and message.
 */
export function responseError(status: number, message: string) {
  return (err: unknown) => {
    const e = err as { name?: string; status_code?: number; message?: string };
    assert.equal(e.name, 'ResponseError');
    assert.equal(e.status_code, status);
    assert.equal(e.message, message);
    return true;
  };
}
