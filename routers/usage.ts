import { Router } from 'express';
import { clientSignal } from '../middleware/client-signal';
import { createMethodNotAllowed } from '../middleware/error-handler';
import type { Validate } from '../middleware/validate';
import type { UsageQuery, UsageService } from '../services/usage';
import { ANONYMOUS } from '../src/principal';

export interface UsageRouterOptions {
  usage: UsageService;
  validate: Validate;
}

/**
 * `GET /usage`: tokens counted per key id and model over a UTC day or month, with each listed
 * key's budget for that period. An agent key sees its own usage; an admin key every key's, or
 * one (`key_id`). Filterable by `period`, `date` and `model`.
 */
export function createUsageRouter(options: UsageRouterOptions): Router {
  const { usage, validate } = options;
  const router = Router();
  router
    .route('/usage')
    .get(validate({ query: 'usage.query' }), async (req, res) => {
      const query = req.query as unknown as UsageQuery;
      res.json(await usage.report(query, req.principal ?? ANONYMOUS, clientSignal(res)));
    })
    .all(createMethodNotAllowed(['GET', 'HEAD']));
  return router;
}
