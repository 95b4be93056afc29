import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../support/listen';
import { listen } from '../support/build-app';
import { buildMetricsApp, healthSnapshot } from '../support/metrics-app';

const TOKEN = 'scrape-token-123';

interface PromVector {
  status: string;
  data: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

/**
 * A real Prometheus (Debian package) on loopback, scraping the running app every second with
 * the metrics Bearer token; the test waits on the app's own scrape events, never on a timer.
 */
describe('a real Prometheus server scraping the service', function () {
  this.timeout(20_000);
  let dir: string;
  let prometheus: ChildProcess | undefined;
  let served: Awaited<ReturnType<typeof listen>>;
  let promUrl: string;
  let promLog = '';
  const scrapes = new EventEmitter();

  before(async () => {
    const { app, metrics } = buildMetricsApp({
      env: { METRICS_TOKEN: TOKEN },
      knownModels: () => ['llama3.2:latest'],
      state: {
        health: () =>
          healthSnapshot({
            latencyMs: 2,
            installedModels: ['llama3.2:latest'],
          }),
      },
    });
    metrics.inference({ model: 'llama3.2', operation: 'chat', outcome: 'success', durationS: 1 });
    metrics.inference({ model: 'llama3.2', operation: 'chat', outcome: 'success', durationS: 2 });
    served = await listen(app);
    served.server.on('request', (req, res) => {
      if (req.url === '/metrics') res.once('finish', () => scrapes.emit('scrape', res.statusCode));
    });

    dir = mkdtempSync(path.join(tmpdir(), 'oag-prometheus-'));
    const config = [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: gateway',
      '    authorization:',
      '      type: Bearer',
      `      credentials: ${TOKEN}`,
      '    static_configs:',
      `      - targets: ['127.0.0.1:${served.port}']`,
    ].join('\n');
    writeFileSync(path.join(dir, 'prometheus.yml'), `${config}\n`);
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prometheus.stderr?.setEncoding('utf8').on('data', (d: string) => (promLog += d));
    prometheus.once('exit', (code) =>
      scrapes.emit('error', new Error(`prometheus exited ${code}: ${promLog}`)),
    );
  });

  after(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.removeAllListeners('exit');
      prometheus.kill('SIGTERM');
      await once(prometheus, 'exit');
    }
    await served?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function query(expr: string): Promise<PromVector['data']['result']> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    if (res.status !== 200) return []; // still starting
    const body = (await res.json()) as PromVector;
    return body.status === 'success' ? body.data.result : [];
  }

  it('finds ollama_up and inference_requests_total through its query API', async () => {
    // Each attempt waits for Prometheus' next scrape of the app (1 s apart), then asks.
    const MAX_SCRAPES = 12;
    let up: PromVector['data']['result'] = [];
    let inference: PromVector['data']['result'] = [];
    for (let i = 0; i < MAX_SCRAPES && (up.length === 0 || inference.length === 0); i += 1) {
      const [status] = (await once(scrapes, 'scrape')) as [number];
      assert.equal(status, 200, 'Prometheus sends the Bearer token');
      up = await query('ollama_up{job="gateway"}');
      inference = await query('inference_requests_total{job="gateway"}');
    }
    assert.equal(up.length, 1, `ollama_up not found after ${MAX_SCRAPES} scrapes; ${promLog}`);
    assert.equal(up[0]?.value[1], '1');
    assert.equal(up[0]?.metric.instance, `127.0.0.1:${served.port}`);
    assert.deepEqual(
      inference.map((r) => [r.metric.model, r.metric.operation, r.metric.outcome, r.value[1]]),
      [['llama3.2:latest', 'chat', 'success', '2']],
    );
    const target = await query('up{job="gateway"}');
    assert.equal(target[0]?.value[1], '1');
  });
});
