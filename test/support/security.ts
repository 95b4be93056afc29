import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { Express } from 'express';
import { Registry } from 'prom-client';
import { createRequestContextStore } from '../../middleware/request-context';
import { createMetrics } from '../../services/metrics';
import { createApp, type AppDeps } from '../../src/app';
import { loadConfig, type Config } from '../../src/config';
import { createHttpServer } from '../../src/http-server';
import { createLogger, type Logger } from '../../src/logger';
import { createSchemaRegistry, type SchemaRegistry } from '../../src/validation';
import { createCaptureLogger } from './capture-logger';

/** Test keys (never real ones): 16+ characters, as the config requires. */
export const ADMIN_KEY = 'admin-key-0123456789abcdef';
export const AGENT_KEY = 'agent-key-0123456789abcdef';
export const AGENT_KEY_2 = 'agent-key-2-0123456789abcd';
export const TEST_API_KEYS = `${ADMIN_KEY}:admin,${AGENT_KEY}:agent,${AGENT_KEY_2}:agent`;

export function testConfig(
  env: Record<string, string> = {},
  schemas: SchemaRegistry = createSchemaRegistry(),
): Readonly<Config> {
  return loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', ...env }, schemas);
}

/** A logger whose JSON lines the test can read back (`lines()`), at `debug` level. */
export function captureLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const { logger, lines } = createCaptureLogger();
  return { logger, lines };
}

export function silentLogger(): Logger {
  return createLogger({ level: 'silent', format: 'json' });
}

/** Builds an app as server.ts does, from env-style config plus any dependency override. */
export function buildTestApp(
  env: Record<string, string> = {},
  overrides: Partial<AppDeps> = {},
): Express {
  const schemas = overrides.schemas ?? createSchemaRegistry();
  const config = overrides.config ?? testConfig(env, schemas);
  const build = { name: 'ollama-agent-gateway', version: '0.0.0-test' };
  return createApp({
    config,
    logger: silentLogger(),
    schemas,
    context: createRequestContextStore(),
    build,
    metrics: createMetrics({ registry: new Registry(), build, defaultMetrics: false }),
    startedAt: Date.now(),
    now: Date.now,
    ...overrides,
  });
}

export interface RunningApp {
  url: string;
  port: number;
  server: http.Server;
  /** A keep-alive agent for this server: many requests, few connections. */
  agent: http.Agent;
  close(): Promise<void>;
}

/** Listens on port 0 with the real HTTP server settings (createHttpServer). */
export async function listen(app: Express, config?: Readonly<Config>): Promise<RunningApp> {
  const server = createHttpServer(app, config ?? testConfig(), silentLogger());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    agent,
    async close() {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface SimpleResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The parsed body, or undefined when it is not JSON. */
  json: unknown;
}

/** One request over the app's keep-alive agent. */
export function send(
  app: RunningApp,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: app.port,
        method,
        path,
        headers: options.headers,
        agent: app.agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** True when `body` is the one error shape: {"error":{"code","message","request_id",...}}. */
export function isErrorShape(body: unknown): boolean {
  if (typeof body !== 'object' || body === null) return false;
  const error = (body as { error?: unknown }).error;
  if (typeof error !== 'object' || error === null) return false;
  const e = error as Record<string, unknown>;
  return (
    typeof e.code === 'string' &&
    /^[A-Z][A-Z0-9_]*$/.test(e.code) &&
    typeof e.message === 'string' &&
    typeof e.request_id === 'string' &&
    Object.keys(e).every((k) => ['code', 'message', 'details', 'request_id'].includes(k))
  );
}

export function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

/** Writes raw bytes on a new connection (as no client library would) and returns all the server sent. */
export function rawHttp(port: number, bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.end(bytes);
  });
}

/** The first response in raw HTTP text: status line, header block and its Content-Length body. */
export function firstResponse(text: string): { status: number; head: string; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const head = text.slice(0, end);
  const length = Number(/\r\nContent-Length: (\d+)/i.exec(head)?.[1] ?? 0);
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
    head,
    body: text.slice(end + 4, end + 4 + length),
  };
}
