import type { RequestHandler } from 'express';
import helmet from 'helmet';

/** One year, with subdomains: the usual HSTS policy once TLS is in place. */
const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * helmet with a policy for a JSON API (no page, no script, nothing to frame): CSP
 * `default-src 'none'; frame-ancestors 'none'` (and X-Frame-Options DENY), nosniff, `Referrer-Policy: no-referrer`,
 * same-site resource policy. HSTS is sent only when the request itself arrived over TLS —
 * `req.secure`, which behind an ingress comes from X-Forwarded-Proto and so only counts
 * through TRUST_PROXY hops. Sending it on plain HTTP is meaningless (browsers ignore it) and
 * would pin a host that is served without TLS inside the cluster.
 */
export function createSecurityHeaders(): RequestHandler {
  const base = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    },
    referrerPolicy: { policy: 'no-referrer' },
    xFrameOptions: { action: 'deny' },
    crossOriginResourcePolicy: { policy: 'same-site' },
    strictTransportSecurity: false,
  });
  return (req, res, next) => {
    if (req.secure) res.setHeader('Strict-Transport-Security', HSTS);
    base(req, res, next);
  };
}
