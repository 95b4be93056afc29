import type { RequestHandler } from 'express';
import type { HttpLabel, Metrics } from '../services/metrics';
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
  // One frozen label object per series (the three values are bounded sets), not one per request.
  const series = new Map<string, Readonly<Record<HttpLabel, string>>>();
  const labelsOf = (method: string, route: string, status: number) => {
    const key = `${method} ${status} ${route}`;
    let labels = series.get(key);
    if (!labels) {
      labels = Object.freeze({ method, route, status_code: String(status) });
      series.set(key, labels);
    }
    return labels;
  };
  return (req, res, next) => {
    const started = now();
    http.inFlight.inc();
    // 'close' fires once per response, after 'finish' or when the connection dropped first.
    res.once('close', () => {
      http.inFlight.dec();
      const labels = labelsOf(http.method(req.method), routeLabel(req), res.statusCode);
      http.requests.inc(labels);
      http.duration.observe(labels, Number(now() - started) / 1e9);
    });
    next();
  };
}
