/**
 * `npm run bench:floor`: how much of the gateway's CPU per answered `/v1/chat/completions` the
 * stack itself costs. These servers in front of one simulator, loaded in turn (each repetition
 * in a new order) with the same answered chat at 16 connections:
 *
 * - the bare proxy (bench/bare-proxy: `node:http` in, undici out), the reference of the budget;
 * - `express` and `stack` (bench/floor-server): the same passthrough on Express 5, then with one
 *   plain pass of each cross-cutting concern on the project's libraries;
 * - the gateway (dist/src/server.js, as `npm run bench` starts it).
 *
 * Prints each server's CPU per request (median of the repetitions) and its ratio to the bare
 * proxy, so "≤ 2× the bare proxy" can be read against what Express and the libraries take
 * before the gateway adds anything.
 *
 * With `--each`, Express plus each concern alone is measured too (`express+helmet`, …), to see
 * which of them the stack's cost comes from.
 *
 *   npm run bench:floor -- [--reps 5 --duration 4 --each]
 */
import { parseArgs } from 'node:util';
import { runLoad } from './load';
import { clockTicksPerSecond } from './proc';
import {
  startBareProxy,
  startFloorServer,
  startService,
  startSim,
  type ServiceProcess,
} from './processes';
import { median, rotation } from './stats';
import { CONCERNS } from './floor-server';

const MODEL = 'llama3.2:3b';
const CHAT = { model: MODEL, messages: [{ role: 'user', content: 'hi' }] };
const HEADERS = { 'accept-encoding': 'gzip, deflate, br' };
const CONNECTIONS = 16;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string', default: '5' },
      duration: { type: 'string', default: '4' },
      each: { type: 'boolean', default: false },
    },
  });
  const reps = Number(values.reps);
  const durationS = Number(values.duration);
  const ticksPerSecond = await clockTicksPerSecond();
  const sim = await startSim(50);
  const levels = ['express', ...(values.each ? CONCERNS : []), 'stack'];
  const started = new Map<string, ServiceProcess>();
  try {
    started.set('bare proxy', await startBareProxy(sim.url));
    for (const level of levels) {
      const name = level === 'express' || level === 'stack' ? level : `express+${level}`;
      started.set(name, await startFloorServer(level, sim.url));
    }
    started.set('gateway', await startService(sim.url, { model: MODEL }));
    const names = [...started.keys()];
    const cpu = new Map<string, number[]>(names.map((name) => [name, []]));
    const load = (name: string) => {
      const server = started.get(name)!;
      return runLoad(
        {
          url: `${server.url}/v1/chat/completions`,
          body: CHAT,
          headers: HEADERS,
          servicePid: server.pid,
          simPid: sim.pid,
          ticksPerSecond,
        },
        CONNECTIONS,
        durationS,
      );
    };
    for (const name of names) await load(name); // warm-up: JIT and pools, not counted
    for (let rep = 0; rep < reps; rep += 1) {
      for (const name of rotation(names, rep)) {
        const figures = await load(name);
        if (figures.errors > 0) throw new Error(`${name}: ${figures.errors} failed requests`);
        cpu.get(name)!.push(figures.cpu_us_per_req);
      }
      process.stderr.write(`rep ${rep + 1}/${reps} done\n`);
    }
    const bare = median(cpu.get('bare proxy')!);
    process.stdout.write(
      `answered /v1/chat/completions, ${CONNECTIONS} connections, ${reps} × ${durationS} s\n\n`,
    );
    process.stdout.write('server              CPU µs/req  × bare proxy  repetitions (µs)\n');
    for (const name of names) {
      const m = median(cpu.get(name)!);
      const each = cpu
        .get(name)!
        .map((v) => Math.round(v))
        .join(', ');
      process.stdout.write(
        `${name.padEnd(18)}  ${String(Math.round(m)).padStart(10)}  ${(m / bare).toFixed(2).padStart(12)}  ${each}\n`,
      );
    }
  } finally {
    await Promise.all([...started.values()].map((s) => s.stop()));
    await sim.stop();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
