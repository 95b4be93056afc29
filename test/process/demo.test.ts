import assert from 'node:assert/strict';
import path from 'node:path';
import { startServerProcess, type ServerProcess } from '../support/server-process';

describe('npm run demo', () => {
  let demo: ServerProcess | undefined;
  afterEach(async () => {
    if (demo && demo.child.exitCode === null) {
      demo.child.kill('SIGTERM'); // the demo forwards it to the service, then closes the simulator
      await demo.exited;
    }
  });

  it('starts a simulated Ollama and the service wired to it, and says loudly that answers are simulated', async () => {
    demo = await startServerProcess(
      { LOG_FORMAT: 'json' },
      { args: [path.resolve(__dirname, '..', '..', 'scripts', 'demo.js')] },
    );
    const banner = demo.lines.map((l) => String(l.message)).join('\n');
    assert.match(banner, /DEMO MODE .* SIMULATED Ollama/);
    const res = await fetch(`${demo.url}/health`);
    assert.equal(res.status, 200);
  });
});
