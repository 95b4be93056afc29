import { once } from 'node:events';
import net from 'node:net';

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
