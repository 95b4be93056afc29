/** Throughput runs: autocannon against one POST endpoint, with the serving process's CPU and RSS. */
import autocannon from 'autocannon';
import { readCpuMicros, readMemory, readSyscalls } from './proc';

export interface LoadFigures {
  rps: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
  /** Service CPU (user + system) per completed request. */
  cpu_us_per_req: number;
  /** The simulator's CPU per request, for scale (what a bare upstream costs). */
  sim_cpu_us_per_req: number;
  rss_mb: number;
  /** Service read/write system calls per request: a noise-free view of I/O work. */
  reads_per_req: number;
  writes_per_req: number;
  /** Non-2xx answers, socket errors and timeouts. */
  errors: number;
}

export interface LoadTarget {
  url: string;
  body: unknown;
  /** Extra request headers (the bench sends what real HTTP clients send, Accept-Encoding). */
  headers?: Record<string, string>;
  servicePid: number;
  simPid: number;
  ticksPerSecond: number;
}

export async function runLoad(
  target: LoadTarget,
  connections: number,
  durationS: number,
): Promise<LoadFigures> {
  const cpu = async () =>
    Promise.all([
      readCpuMicros(target.servicePid, target.ticksPerSecond),
      readCpuMicros(target.simPid, target.ticksPerSecond),
    ]);
  const [service0, sim0] = await cpu();
  const io0 = await readSyscalls(target.servicePid);
  const result = await autocannon({
    url: target.url,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    body: JSON.stringify(target.body),
    connections,
    duration: durationS,
    timeout: 10,
  });
  const [service1, sim1] = await cpu();
  const io1 = await readSyscalls(target.servicePid);
  const { rss } = await readMemory(target.servicePid);
  const completed = result['2xx'] + result.non2xx;
  return {
    rps: completed / durationS,
    latency_p50_ms: result.latency.p50,
    latency_p99_ms: result.latency.p99,
    cpu_us_per_req: (service1 - service0) / Math.max(1, completed),
    sim_cpu_us_per_req: (sim1 - sim0) / Math.max(1, completed),
    rss_mb: rss / 2 ** 20,
    reads_per_req: (io1.reads - io0.reads) / Math.max(1, completed),
    writes_per_req: (io1.writes - io0.writes) / Math.max(1, completed),
    errors: result.non2xx + result.errors + result.timeouts,
  };
}
