import assert from 'node:assert/strict';
import path from 'node:path';
import request from 'supertest';
import { listen } from '../support/build-app';
import { buildMetricsApp, healthSnapshot } from '../support/metrics-app';
import { runCommand } from '../support/run-command';

const MONITORING = path.join(__dirname, '..', '..', '..', 'monitoring');

describe('promtool (Debian prometheus package)', () => {
  it('`promtool check metrics` passes a real scrape of the app', async () => {
    const { app, metrics } = buildMetricsApp({
      knownModels: () => ['llama3.2:latest'],
      knownAgents: () => ['support'],
      knownTools: () => ['calculator'],
      state: {
        health: () =>
          healthSnapshot({
            latencyMs: 2,
            loadedModels: [
              { name: 'llama3.2:latest', sizeBytes: 3e9, vramBytes: 3e9, expiresAt: 'x' },
            ],
            installedModels: ['llama3.2:latest'],
          }),
        circuitState: () => 'half-open',
        queueStats: () => ({ inFlight: 1, queued: 2, maxConcurrency: 4, maxQueue: 100 }),
        activeModel: () => 'llama3.2:latest',
      },
    });
    // Every metric gets at least one series, so every family is linted.
    metrics.inference({
      model: 'llama3.2',
      operation: 'chat',
      outcome: 'success',
      durationS: 1,
      queueWaitS: 0.01,
      ttftS: 0.2,
      promptTokens: 5,
      completionTokens: 7,
      evalDurationNs: 2e8,
      loadDurationNs: 2e9,
    });
    metrics.healthCheck({ up: true, durationS: 0.01 });
    metrics.modelSwitch({ outcome: 'success', durationS: 3 });
    metrics.agentRun({
      agent: 'support',
      status: 'completed',
      stopReason: 'end_turn',
      durationS: 2,
    });
    metrics.agentStep({ agent: 'support', kind: 'tool' });
    metrics.toolCall({ tool: 'calculator', outcome: 'ok' });
    metrics.webhook({ outcome: 'delivered', attempts: 1 });
    metrics.rateLimited('/agents/run');
    await request(app).get('/nope').expect(404);

    const served = await listen(app);
    try {
      const res = await fetch(`${served.url}/metrics`);
      assert.equal(res.status, 200);
      const text = await res.text();
      const families = text.split('\n').filter((l) => l.startsWith('# TYPE ')).length;
      assert.ok(families > 50, `${families} metric families`);
      const lint = await runCommand('promtool', ['check', 'metrics'], { input: text });
      assert.equal(lint.code, 0, lint.stdout + lint.stderr);
      assert.equal((lint.stdout + lint.stderr).trim(), '');
    } finally {
      await served.close();
    }
  });

  it('`promtool check rules` passes the alert rules', async () => {
    const r = await runCommand('promtool', ['check', 'rules', 'prometheus-rules.yaml'], {
      cwd: MONITORING,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS: 5 rules found/);
  });

  it('`promtool test rules`: each alert fires on its bad series and not on good ones', async () => {
    const r = await runCommand('promtool', ['test', 'rules', 'prometheus-rules.test.yaml'], {
      cwd: MONITORING,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS/);
  });
});
