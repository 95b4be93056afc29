import type { Request, RequestHandler, Response } from 'express';
import helmet from 'helmet';

/** One year, with subdomains: the usual HSTS policy once TLS is in place. */
const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * The headers a helmet middleware sets, captured by running it once against a recording
 * response. Valid because every value of our policy is fixed (no per-request nonce).
 */
function capture(middleware: RequestHandler): ReadonlyArray<readonly [string, string]> {
  const headers: Array<readonly [string, string]> = [];
  const recorder = {
    setHeader(name: string, value: unknown) {
      headers.push([name, String(value)]);
      return recorder;
    },
    // helmet removes X-Powered-By, which the app never sends (`x-powered-by` is disabled).
    removeHeader() {},
  };
  let done = false;
  void middleware({} as Request, recorder as unknown as Response, () => (done = true));
  if (!done) throw new Error('helmet did not finish synchronously');
  return headers;
}

/**
 * helmet with a policy for a JSON API (no page, no script, nothing to frame): CSP
 * `default-src 'none'; frame-ancestors 'none'` (and X-Frame-Options DENY), nosniff, `Referrer-Policy: no-referrer`,
 * same-site resource policy. HSTS is sent only when the request itself arrived over TLS —
 * `req.secure`, which behind an ingress comes from X-Forwarded-Proto and so only counts
 * through TRUST_PROXY hops. Sending it on plain HTTP is meaningless (browsers ignore it) and
 * would pin a host that is served without TLS inside the cluster.
 *
 * helmet computes the headers once, when the middleware is built; each response then only
 * gets them set (running helmet's dozen middlewares per request cost more than the headers).
 */
export function createSecurityHeaders(): RequestHandler {
  const headers = capture(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
      },
      referrerPolicy: { policy: 'no-referrer' },
      xFrameOptions: { action: 'deny' },
      crossOriginResourcePolicy: { policy: 'same-site' },
      strictTransportSecurity: false,
    }),
  );
  return (req, res, next) => {
    for (const [name, value] of headers) res.setHeader(name, value);
    if (req.secure) res.setHeader('Strict-Transport-Security', HSTS);
    next();
  };
}
