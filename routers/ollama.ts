import { Router } from 'express';
import { clientSignal, streamSignals } from '../middleware/client-signal';
import { createMethodNotAllowed } from '../middleware/error-handler';
import type { Validate } from '../middleware/validate';
import { ollamaHealthDetails, ollamaHealthSummary, type Lifecycle } from '../services/health';
import type { ModelService, SwitchRequest } from '../services/models';
import type { OllamaHealth, OllamaService } from '../services/ollama';
import { sendJson, sendNdjson, wantsNdjson } from './ndjson';

export interface OllamaRouterOptions {
  ollama: Pick<OllamaService, 'circuitState' | 'queueStats'>;
  health: Pick<OllamaHealth, 'snapshot'>;
  models: ModelService;
  validate: Validate;
  now: () => number;
  /** Registry of open streams, so a shutdown ends NDJSON progress cleanly. */
  lifecycle?: Pick<Lifecycle, 'trackStream'>;
}

/**
 * `/ollama/*`: cached Ollama health, the installed models, model facts, switching the active
 * model, pulling and deleting models. Mount at `/ollama`. Every Ollama call made here is
 * aborted when the HTTP client goes away.
 */
export function createOllamaRouter(options: OllamaRouterOptions): Router {
  const { ollama, health, models, validate, now, lifecycle } = options;
  const router = Router();
  const only = (...methods: string[]) => createMethodNotAllowed(methods);

  router
    .route('/health')
    .get((_req, res) => {
      const view = ollamaHealthSummary(health.snapshot(), now());
      res.status(view.status === 'up' ? 200 : 503).json(view);
    })
    .all(only('GET', 'HEAD'));

  router
    .route('/health/detailed')
    .get((_req, res) => {
      res.json(
        ollamaHealthDetails({
          snapshot: health.snapshot(),
          ollama,
          activeModel: models.active(),
          switchingTo: models.switching(),
          recentSwitches: models.recentSwitches(),
          now: now(),
        }),
      );
    })
    .all(only('GET', 'HEAD'));

  router
    .route('/models')
    .get(validate({ query: 'ollama-models.query' }), async (req, res) => {
      const fresh = (req.query as { refresh?: boolean }).refresh === true;
      const list = await models.catalog.list({ signal: clientSignal(res), fresh });
      res.json({ active: models.active(), models: list });
    })
    .all(only('GET', 'HEAD'));

  router
    .route('/model-info')
    .get(validate({ query: 'ollama-model-info.query' }), async (req, res) => {
      const query = req.query as { model?: string; refresh?: boolean };
      const model = query.model ?? models.active();
      res.json(
        await models.catalog.info(model, { signal: clientSignal(res), fresh: query.refresh }),
      );
    })
    .all(only('GET', 'HEAD'));

  router
    .route('/model/switch')
    .post(validate({ body: 'ollama-switch.request' }), async (req, res) => {
      const body = req.body as SwitchRequest;
      // Aborts the upstream call when the client goes away or a shutdown ends the answer.
      const { stop } = streamSignals(res);
      const { signal } = stop;
      if (!wantsNdjson(req)) {
        await sendJson(res, () => models.switchModel(body, { signal }), { lifecycle, stop });
        return;
      }
      const produce = async (write: (line: object) => void) => {
        const result = await models.switchModel(body, { signal, onProgress: write });
        write({ phase: 'done', status: 'success', ...result });
      };
      await sendNdjson(req, res, produce, { lifecycle, stop });
    })
    .all(only('POST'));

  router
    .route('/models/pull')
    .post(validate({ body: 'ollama-pull.request' }), async (req, res) => {
      const { model } = req.body as { model: string };
      // Aborts the upstream call when the client goes away or a shutdown ends the answer.
      const { stop } = streamSignals(res);
      const { signal } = stop;
      const progress = models.pull(model, { signal });
      if (!wantsNdjson(req)) {
        const pulled = async () => {
          for await (const _ of progress); // wait for the end; errors are thrown here
          return { model, status: 'success' };
        };
        await sendJson(res, pulled, { lifecycle, stop });
        return;
      }
      const produce = async (write: (line: object) => void) => {
        for await (const p of progress) write(p);
      };
      await sendNdjson(req, res, produce, { lifecycle, stop });
    })
    .all(only('POST'));

  router
    .route('/models/:name')
    .delete(validate({ params: 'ollama-model.params' }), async (req, res) => {
      await models.remove(String(req.params.name), { signal: clientSignal(res) });
      res.status(204).end();
    })
    .all(only('DELETE'));

  return router;
}
