import { Router } from 'express';
import { createMethodNotAllowed } from '../middleware/error-handler';
import { buildOpenApiDocument } from '../services/openapi';
import type { BuildInfo } from '../services/health';
import type { SchemaRegistry } from '../src/validation';

/** `GET /openapi.json`: the OpenAPI 3.1 document, built once when the app is. */
export function createOpenApiRouter(options: {
  schemas: SchemaRegistry;
  build: BuildInfo;
}): Router {
  const document = JSON.stringify(buildOpenApiDocument(options.schemas, options.build));
  const router = Router();
  router
    .route('/openapi.json')
    .get((_req, res) => {
      res.type('application/json').send(document);
    })
    .all(createMethodNotAllowed(['GET', 'HEAD']));
  return router;
}
