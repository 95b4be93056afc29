import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { Express } from 'express';

/** Serves `app` on a free loopback port; `close()` also ends kept-alive connections. */
export async function listen(
  app: Express,
): Promise<{ server: http.Server; url: string; port: number; close: () => Promise<void> }> {
  const server = http.createServer(app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A loopback port free right now, for tools that cannot report the port they bound to
 * (Prometheus); the OS rarely hands it out again before the tool binds it.
 */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
