import type { RequestHandler } from 'express';
import { routeLabel } from './route-label';

type HttpLabels = Readonly<Record<'method' | 'route' | 'status_code', string>>;

/** Where the middleware records: the metrics module's HTTP instruments have this shape. */
export interface HttpRecorder {
  requests: { inc(labels: HttpLabels): void };
  duration: { observe(labels: HttpLabels, seconds: number): void };
  inFlight: { inc(): void; dec(): void };
  /** The label a request method gets (a bounded set). */
  method(method: string): string;
}

/**
 * Counts and times every request: `http_requests_total`, `http_request_duration_seconds`,
 * `http_requests_in_flight`. Labels are read when the response closes (finished or the client
 * went away), once routing has settled, so `route` is the matched template and every unmatched
 * path shares one value. Mount it first so the whole pipeline is timed.
 */
export function createHttpMetrics(options: {
  http: HttpRecorder;
  now?: () => bigint;
}): RequestHandler {
  const { http } = options;
  const now = options.now ?? process.hrtime.bigint;
  // One frozen label object per series (the three values are bounded sets), not one per request.
  const series = new Map<string, HttpLabels>();
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
