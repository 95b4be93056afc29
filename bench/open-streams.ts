/**
 * Many streamed runs held open at once: the simulator's hold() gate pauses every stream after
 * its first chunk, so each run is mid-answer with its Ollama call, SSE response and run state
 * alive. Measures the service's resident memory in that state.
 */
import http from 'node:http';
import { timedPost, type Timed } from './client';
import type { SimProcess } from './processes';
import { readMemory } from './proc';

export interface OpenStreamFigures {
  streams: number;
  /** Streams that had received their first delta when memory was read. */
  open: number;
  rss_idle_mb: number;
  rss_open_mb: number;
  /** Streams that did not finish with run.completed after release. */
  failed: number;
}

export async function runOpenStreams(
  target: { serviceUrl: string; servicePid: number; sim: SimProcess; runBody: unknown },
  streams: number,
): Promise<OpenStreamFigures> {
  const { sim, servicePid } = target;
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const idle = await readMemory(servicePid);
  await sim.command('hold');
  let open = 0;
  let allOpen: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (allOpen = resolve));
  const body = { ...(target.runBody as Record<string, unknown>), stream: true };
  const runs: Array<Promise<Timed | undefined>> = [];
  for (let i = 0; i < streams; i += 1) {
    const onFirst = () => {
      open += 1;
      if (open === streams) allOpen();
    };
    runs.push(
      timedPost(agent, `${target.serviceUrl}/agents/run`, body, 'sse', onFirst).catch(
        () => undefined,
      ),
    );
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([opened, new Promise((r) => (timer = setTimeout(r, 30_000)))]);
  clearTimeout(timer);
  const loaded = await readMemory(servicePid);
  const counted = open;
  await sim.command('release');
  const finished = await Promise.all(runs);
  agent.destroy();
  return {
    streams,
    open: counted,
    rss_idle_mb: idle.rss / 2 ** 20,
    rss_open_mb: loaded.rss / 2 ** 20,
    failed: finished.filter((t) => t?.lastEvent !== 'run.completed').length,
  };
}
