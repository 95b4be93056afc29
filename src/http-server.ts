import http from 'node:http';
import type { Express } from 'express';
import { createClientErrorHandler, createProtocolErrors } from '../middleware/client-error';
import type { Config } from './config';
import type { Logger } from './logger';

const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;

/**
 * The HTTP server around the app, with the transport limits against slow or abusive
 * clients (see README, "Security" and "Health probes and the pod lifecycle"):
 * MAX_HEADER_SIZE (431 in the error shape); HEADERS_TIMEOUT_MS and REQUEST_TIMEOUT_MS bound
 * how long a client may take to *send* its request (slow-loris), never how long a response
 * or a stream may run; KEEP_ALIVE_TIMEOUT_MS stays above the load balancer's idle timeout so
 * the proxy, never the service, closes an idle connection (no race with a request sent on a
 * socket being closed). It does not listen: server.ts does, tests listen on port 0.
 */
export function createHttpServer(
  app: Express,
  config: Pick<
    Config,
    'MAX_HEADER_SIZE' | 'KEEP_ALIVE_TIMEOUT_MS' | 'HEADERS_TIMEOUT_MS' | 'REQUEST_TIMEOUT_MS'
  >,
  logger: Logger,
): http.Server {
  const protocol = createProtocolErrors({ logger });
  const server = http.createServer(
    {
      maxHeaderSize: config.MAX_HEADER_SIZE,
      // Node checks the headers and request timeouts on this interval (30 s by default), so
      // HEADERS_TIMEOUT_MS of 20 s would act after up to 30 s; checked every second, the
      // documented timeouts hold within a second.
      connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
      // Checked below instead, to answer in the error shape rather than Node's bare 400.
      requireHostHeader: false,
    },
    (req, res) => {
      if (!protocol.missingHost(req, res)) void app(req, res);
    },
  );
  server.keepAliveTimeout = config.KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = config.HEADERS_TIMEOUT_MS;
  server.requestTimeout = config.REQUEST_TIMEOUT_MS;
  server.on('clientError', createClientErrorHandler({ logger }));
  server.on('checkExpectation', protocol.expectation);
  server.on('connect', protocol.connect);
  return server;
}
