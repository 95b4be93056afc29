/**
 * `npm run bench:profile -- --scenario run`: one load against the built service started with
 * `--cpu-prof`, then the profile's self time summed by function and by where the code lives
 * (this project's folders, each npm package, Node's internals, GC), so a hot spot has a name.
 *
 *   npm run bench:profile -- --scenario run|stream|v1|v1-stream [--duration 8] [--redis] [--top 40]
 *   npm run bench:profile -- --scenario v1 --gc   # the load's garbage collections instead
 *   npm run bench:profile -- --scenario v1 --gc --entry ../other/dist/src/server.js   # another build
 *   npm run bench:profile -- --scenario run --gc --set COMPRESSION_MIN_BYTES=1   # with a setting
 *
 * The .cpuprofile stays in the printed directory for Chrome DevTools or speedscope.
 *
 * With --gc the service runs with `--trace-gc-nvp` instead of the profiler, and the collections
 * during the load are summed per request: bytes allocated, bytes the young-generation
 * collections promoted to the old generation, and pause time. Unlike CPU time these barely move
 * with the host's load: what a request keeps alive across two young collections (promoted) is
 * garbage the old generation holds until a full collection, and the main cost of a scavenge.
 */
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { gcReport, sumGcLines } from './gc-trace';
import { runLoad } from './load';
import { clockTicksPerSecond } from './proc';
import { parseSettings, startService, startSim } from './processes';
import { freePort } from '../test/support/listen';
import { startRedis, stopRedis } from '../test/support/redis-server';

const MODEL = 'llama3.2:3b';
const HEADERS = { 'accept-encoding': 'gzip, deflate, br' };
const CHAT = { model: MODEL, messages: [{ role: 'user', content: 'hi' }] };
const SCENARIOS: Record<string, { path: string; body: unknown }> = {
  run: { path: '/agents/run', body: { agent: 'default', input: 'hi' } },
  stream: { path: '/agents/run', body: { agent: 'default', input: 'hi', stream: true } },
  v1: { path: '/v1/chat/completions', body: CHAT },
  'v1-stream': { path: '/v1/chat/completions', body: { ...CHAT, stream: true } },
};

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a script lives: a folder of this project, an npm package, or Node's own code. */
function place(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node:internal';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/dist\/([^/]+(?:\/[^/]+)?)\//.exec(url);
  return own ? own[1]! : url;
}

function summarise(profile: Profile, top: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) =>
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)),
  );
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const file = url.replace(/^.*\/(node_modules|dist)\//, '$1/');
    const key = `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const where = place(url, functionName);
    byPlace.set(where, (byPlace.get(where) ?? 0) + us);
  }
  // Inclusive time: each sample counts once for every distinct function on its stack.
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (id: number) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const file = url.replace(/^.*\/(node_modules|dist)\//, '$1/');
    return `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
  };
  const inclusive = new Map<string, number>();
  profile.samples.forEach((leaf, i) => {
    const seen = new Set<string>();
    for (let id: number | undefined = leaf; id !== undefined; id = parent.get(id)) {
      const key = keyOf(id);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
    }
  });
  // Each sample charged to the nearest function of this project on its stack: what that code
  // costs with the library and Node code it calls, but not its own callees in this project.
  const isOwn = (id: number) =>
    /\/dist\/(services|middleware|routers|src)\//.test(byId.get(id)!.callFrame.url);
  const owned = new Map<string, number>();
  profile.samples.forEach((leaf, i) => {
    let id: number | undefined = leaf;
    while (id !== undefined && !isOwn(id)) id = parent.get(id);
    const key = id === undefined ? '(outside this project)' : keyOf(id);
    owned.set(key, (owned.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const rows = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n');
  return `self time by place:\n${rows(byPlace, 25)}\n\nself time by function:\n${rows(byFunction, top)}\n\ntotal time (self and callees) by function:\n${rows(inclusive, top)}\n\nby this project's functions (each with the library code it calls):\n${rows(owned, top)}\n`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', default: 'run' },
      duration: { type: 'string', default: '8' },
      connections: { type: 'string', default: '16' },
      top: { type: 'string', default: '40' },
      redis: { type: 'boolean', default: false },
      gc: { type: 'boolean', default: false },
      entry: { type: 'string' },
      set: { type: 'string', multiple: true, default: [] },
    },
  });
  const scenario = SCENARIOS[values.scenario];
  if (!scenario) throw new Error(`--scenario ${Object.keys(SCENARIOS).join('|')}`);
  const dir = values.gc ? '' : await mkdtemp(path.join(tmpdir(), 'gateway-profile-'));
  const redisPort = values.redis ? await freePort() : undefined;
  const redis: ChildProcess | undefined =
    redisPort !== undefined ? await startRedis(redisPort) : undefined;
  const sim = await startSim(50);
  let gcText = '';
  let recording = false;
  try {
    const service = await startService(sim.url, {
      model: MODEL,
      ...(values.entry ? { entry: values.entry } : {}),
      nodeArgs: values.gc ? ['--trace-gc-nvp'] : ['--cpu-prof', `--cpu-prof-dir=${dir}`],
      env: {
        ...parseSettings(values.set, '--set'),
        ...(redis ? { REDIS_URL: `redis://127.0.0.1:${redisPort}` } : {}),
      },
      onOutput: (text) => {
        if (recording) gcText += text;
      },
    });
    let figures;
    try {
      const target = {
        url: `${service.url}${scenario.path}`,
        body: scenario.body,
        headers: HEADERS,
        servicePid: service.pid,
        simPid: sim.pid,
        ticksPerSecond: clockTicksPerSecond(),
      };
      await runLoad(target, Number(values.connections), 2);
      recording = true;
      figures = await runLoad(target, Number(values.connections), Number(values.duration));
      recording = false;
    } finally {
      await service.stop();
    }
    if (values.gc) {
      const requests = figures.rps * Number(values.duration);
      process.stdout.write(
        `${values.scenario}: ${figures.rps.toFixed(0)} req/s, ${figures.cpu_us_per_req.toFixed(0)} µs CPU/req, ` +
          `RSS ${figures.rss_mb.toFixed(0)} MB after the load\n\n${gcReport(sumGcLines(gcText), requests)}`,
      );
      return;
    }
    const [file] = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no profile written in ${dir}:\n${service.output()}`);
    const profile = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as Profile;
    process.stdout.write(
      `${values.scenario}: ${figures.rps.toFixed(0)} req/s, ${figures.cpu_us_per_req.toFixed(0)} µs CPU/req (profiled: slower than unprofiled)\n` +
        `profile: ${path.join(dir, file)}\n\n${summarise(profile, Number(values.top))}`,
    );
  } finally {
    await sim.stop();
    if (redis) await stopRedis(redis);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench:profile failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
