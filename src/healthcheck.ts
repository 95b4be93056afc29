import { request } from 'node:http';
import { loadProcessConfig } from './config';
import { createSchemaRegistry } from './validation';

/**
 * The container's HEALTHCHECK: asks this process's own `/health/live` and exits 0 on a 2xx,
 * 1 on anything else (a refused connection, a 503, no answer within the deadline). It reads
 * PORT and HOST from the same validated configuration as the service, so it asks where the
 * service listens; a wildcard bind is asked on loopback. Plain `node:http`: the runtime image
 * needs no curl or wget.
 */
const DEADLINE_MS = 3_000;

function loopbackFor(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

function main(): void {
  const config = loadProcessConfig(createSchemaRegistry());
  const req = request(
    {
      host: loopbackFor(config.HOST),
      port: config.PORT,
      path: '/health/live',
      method: 'GET',
      timeout: DEADLINE_MS,
      headers: { 'User-Agent': 'docker-healthcheck' },
    },
    (res) => {
      res.resume();
      const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300;
      res.on('end', () => process.exit(ok ? 0 : 1));
    },
  );
  req.on('timeout', () => req.destroy(new Error(`no answer within ${DEADLINE_MS} ms`)));
  req.on('error', (err) => {
    process.stderr.write(`healthcheck: ${err.message}\n`);
    process.exit(1);
  });
  req.end();
}

main();
