/**
 * What the gateway's stack costs before any of the gateway's own logic: the answered
 * `/v1/chat/completions` passthrough written the shortest way on the libraries this project is
 * built on (`npm run bench:floor` measures it beside the bare proxy and the gateway):
 *
 * - `express`: Express 5 with `express.json()`; the body forwarded with undici over a keep-alive
 *   pool (as the gateway forwards it: parsed, then serialised again) and the answer read whole
 *   and sent in one piece with its length (as the gateway sends an answered `/v1` chat). The
 *   upstream call is aborted when the client goes away, at every level.
 * - `stack`: the same, plus each cross-cutting concern every request of the gateway passes
 *   through, done once, the plain way, with the library the project uses for it (CONCERNS): a
 *   request id in AsyncLocalStorage echoed in `X-Request-ID`; prom-client's request counter and
 *   duration histogram with a winston access-log call (at `warn`, as the bench runs the gateway,
 *   so not written); helmet's headers; express-rate-limit's memory store; ajv on the body; a
 *   deadline timer on the upstream call. No admission queue, routing, circuit breaker, usage
 *   counting or token metrics: the gateway does those on top.
 * - a comma-separated list of concerns: Express with those only.
 *
 * Prints one JSON line `{"url":…}` once listening.
 * Usage: node dist/bench/floor-server.js express|stack|<concern,…> <simUrl>
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import Ajv from 'ajv';
import express, { type RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import helmet from 'helmet';
import { Counter, Histogram, Registry } from 'prom-client';
import { Pool } from 'undici';
import winston from 'winston';
import { listenAndAnnounce } from './announce';

const PATH = '/v1/chat/completions';

/** The cross-cutting concerns of `stack`, each one plain pass with the project's library. */
export const CONCERNS = [
  'context',
  'metrics',
  'helmet',
  'ratelimit',
  'validate',
  'deadline',
] as const;
export type Concern = (typeof CONCERNS)[number];

function crossCutting(concerns: ReadonlySet<Concern>): RequestHandler[] {
  const context = new AsyncLocalStorage<{ requestId: string }>();
  const registry = new Registry();
  const labelNames = ['method', 'route', 'status_code'] as const;
  const requests = new Counter({
    name: 'requests_total',
    help: 'x',
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'request_duration_seconds',
    help: 'x',
    labelNames,
    registers: [registry],
  });
  const logger = winston.createLogger({
    level: 'warn',
    format: winston.format.json(),
    transports: [new winston.transports.Console()],
  });
  const validate = new Ajv({ allErrors: true }).compile({
    type: 'object',
    required: ['model', 'messages'],
    properties: {
      model: { type: 'string', minLength: 1 },
      messages: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['role'],
          properties: { role: { type: 'string' }, content: { type: 'string' } },
        },
      },
      stream: { type: 'boolean' },
    },
  });
  // The concerns that are middleware (the deadline is the upstream call's, in main()).
  const handlers: Record<Exclude<Concern, 'deadline'>, RequestHandler> = {
    context: (req, res, next) => {
      const requestId = randomUUID();
      res.setHeader('X-Request-ID', requestId);
      context.run({ requestId }, next);
    },
    metrics: (req, res, next) => {
      const started = process.hrtime.bigint();
      res.once('close', () => {
        const labels = { method: req.method, route: PATH, status_code: String(res.statusCode) };
        requests.inc(labels);
        duration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
        logger.info('request', {
          request_id: context.getStore()?.requestId,
          method: req.method,
          status: res.statusCode,
        });
      });
      next();
    },
    helmet: helmet(),
    ratelimit: rateLimit({
      windowMs: 60_000,
      limit: 1_000_000,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
    }),
    validate: (req, res, next) => {
      if (validate(req.body)) return next();
      res.status(400).json({ error: { message: 'invalid body' } });
    },
  };
  const before = (['context', 'metrics', 'helmet', 'ratelimit'] as const)
    .filter((c) => concerns.has(c))
    .map((c) => handlers[c]);
  return [
    ...before,
    express.json({ limit: '1mb' }),
    ...(concerns.has('validate') ? [handlers.validate] : []),
  ];
}

/** `express` (none), `stack` (all) or a comma-separated list of concerns. */
export function parseLevel(level: string): Set<Concern> {
  if (level === 'express') return new Set();
  if (level === 'stack') return new Set(CONCERNS);
  const concerns = level.split(',');
  const unknown = concerns.filter((c) => !(CONCERNS as readonly string[]).includes(c));
  if (unknown.length > 0) throw new Error(`unknown concern: ${unknown.join(', ')}`);
  return new Set(concerns as Concern[]);
}

function main(): void {
  const [level, upstream] = process.argv.slice(2);
  if (!level || !upstream) {
    throw new Error('usage: floor-server express|stack|<concern,…> <simulator url>');
  }
  const concerns = parseLevel(level);
  const pool = new Pool(upstream, { connections: 256, pipelining: 1 });
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const before = crossCutting(concerns);
  app.post(PATH, ...before, async (req, res) => {
    const left = new AbortController();
    res.once('close', () => left.abort());
    // The deadline the plain way: one timer per request, cleared when the answer is in.
    const deadline = concerns.has('deadline')
      ? setTimeout(() => left.abort(new Error('deadline')), 60_000)
      : undefined;
    const { signal } = left;
    try {
      const answer = await pool.request({
        method: 'POST',
        path: PATH,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(req.body),
        signal,
      });
      const chunks: Buffer[] = [];
      for await (const chunk of answer.body) chunks.push(chunk as Buffer);
      const type = answer.headers['content-type'];
      res.status(answer.statusCode);
      if (typeof type === 'string') res.type(type);
      res.end(Buffer.concat(chunks));
    } catch {
      if (!res.headersSent) res.status(502);
      res.end();
    } finally {
      clearTimeout(deadline);
    }
  });
  const server = http.createServer(app);
  listenAndAnnounce(server);
}

if (require.main === module) main();
