import type http from 'node:http';

/**
 * Runs a reference server of the bench (bare-proxy, floor-server) as bench/processes expects:
 * listens on a free loopback port, prints one JSON line `{"url":…}` once listening, and exits
 * on SIGTERM.
 */
export function listenAndAnnounce(server: http.Server): void {
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}
