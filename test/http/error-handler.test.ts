import assert from 'node:assert/strict';
import express from 'express';
import request from 'supertest';
import { createErrorHandler, createNotFound } from '../../middleware/error-handler';
import { createJsonBody } from '../../middleware/json-body';
import { createRequestContext } from '../../middleware/request-context';
import { createRequestContextStore } from '../../src/request-context';
import { createCaptureLogger } from '../support/capture-logger';
import { assertErrorShape } from '../support/error-shape';

describe('the error handler', () => {
  function appWith(route: express.RequestHandler) {
    const store = createRequestContextStore();
    const capture = createCaptureLogger({ context: store });
    const app = express();
    app.use(createRequestContext({ store }));
    app.use(createJsonBody({ limit: 1024 }));
    app.get('/boom', route);
    app.use(createNotFound());
    app.use(createErrorHandler({ logger: capture.logger }));
    return { app, ...capture };
  }

  describe('when a handler throws an unexpected error', () => {
    it('answers 500 with a generic message; the stack goes to the log with the request id', async () => {
      const { app, lines } = appWith(() => {
        throw new Error('db password=hunter2 at /srv/internal.ts');
      });
      const res = await request(app).get('/boom').set('X-Request-ID', 'r-500');
      assertErrorShape(res, 500, 'INTERNAL_ERROR');
      assert.equal((res.body as { error: { message: string } }).error.message, 'Internal error.');
      assert.doesNotMatch(JSON.stringify(res.body), /hunter2|internal\.ts|at /);
      const logged = lines().find((l) => l.message === 'request failed');
      assert.ok(logged);
      assert.equal(logged.request_id, 'r-500');
      assert.match(JSON.stringify(logged.error), /hunter2/);
      assert.match(JSON.stringify(logged.error), /stack/);
    });

    it('catches rejected promises of async handlers (Express 5)', async () => {
      const { app } = appWith(async () => {
        await Promise.resolve();
        throw new TypeError('x is undefined');
      });
      assertErrorShape(await request(app).get('/boom'), 500, 'INTERNAL_ERROR');
    });
  });
});
