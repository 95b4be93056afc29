import http from 'node:http';
import net from 'node:net';
import { loadConfig, type Config } from '../../src/config';
import { createSchemaRegistry, type SchemaRegistry } from '../../src/validation';
import type { RunningApp } from './build-app';

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
