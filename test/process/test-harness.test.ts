import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCommand } from '../support/run-command';

const SUPPORT = path.resolve(__dirname, '..', 'support');
const MOCHA = require.resolve('mocha/bin/mocha.js');
const ROOT = path.resolve(__dirname, '..', '..', '..');

/**
 * The suite's own guards, run on a tiny suite in a child mocha with the project's settings:
 * CI must end with an honest count, never hang or pass on less than the whole suite.
 */
describe('the test harness', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'oag-harness-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** Runs `source` as the whole suite under the project's .mocharc.json (its spec replaced). */
  const runSuite = async (source: string) => {
    const file = path.join(dir, 'suite.test.js');
    await writeFile(file, source);
    const settings = JSON.parse(await readFile(path.join(ROOT, '.mocharc.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const config = path.join(dir, 'mocharc.json');
    await writeFile(config, JSON.stringify({ ...settings, spec: [file] }));
    return runCommand(process.execPath, [MOCHA, '--config', config], { cwd: ROOT });
  };

  it('a server that never starts fails its test and mocha still exits with the count', async () => {
    // A "server" that never logs `listening` (sleep), and a test that gives up on it.
    const { code, stdout } = await runSuite(`
      const { startServerProcess } = require(${JSON.stringify(path.join(SUPPORT, 'server-process.js'))});
      it('waits for a server that never listens', async function () {
        this.timeout(300);
        await startServerProcess({}, { command: 'sleep', args: ['60'] });
      });
    `);
    assert.equal(code, 1, stdout);
    assert.match(stdout, /^0 passed, 1 failed$/m);
  });

  it('refuses a committed .only or .skip instead of passing on part of the suite', async () => {
    for (const marker of ['it.only', 'it.skip']) {
      const { code, stdout, stderr } = await runSuite(
        `${marker}('one', () => {}); it('two', () => {});`,
      );
      assert.notEqual(code, 0, `${marker}: ${stdout}${stderr}`);
    }
  });
});
