import type { RequestHandler } from 'express';
import type { Metrics } from '../services/metrics';
import { routeLabel } from './route-label';

/**
 * Counts and times every request: `http_requests_total`, `http_request_duration_seconds`,
 * `http_requests_in_flight`. Labels are read when the response closes (finished or the client
 * went away), once routing has settled, so `route` is the matched template and every unmatched
 * path shares one value. Mount it first so the whole pipeline is timed.
 */
export function createHttpMetrics(options: {
  metrics: Pick<Metrics, 'http'>;
  now?: () => bigint;
}): RequestHandler {
  const { http } = options.metrics;
  const now = options.now ?? process.hrtime.bigint;
  return (req, res, next) => {
    const started = now();
    http.inFlight.inc();
    // 'close' fires once per response, after 'finish' or when the connection dropped first.
    res.once('close', () => {
      http.inFlight.dec();
      const labels = {
        method: http.method(req.method),
        route: routeLabel(req),
        status_code: String(res.statusCode),
      };
      http.requests.inc(labels);
      http.duration.observe(labels, Number(now() - started) / 1e9);
    });
    next();
  };
}
