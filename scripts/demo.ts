/**
 * `npm run demo`: a simulated Ollama with two small models and the real service wired to it,
 * so a newcomer can curl the gateway without a GPU. Every answer is simulated, and the banner
 * says so loudly.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { startOllamaSimulator } from '../test/support/ollama-simulator';

const MODELS = [
  {
    name: 'llama3.2:1b',
    family: 'llama',
    parameterSize: '1.2B',
    quantization: 'Q8_0',
    capabilities: ['completion', 'tools'],
    contextLength: 131072,
  },
  {
    name: 'qwen3:0.6b',
    family: 'qwen3',
    parameterSize: '751.63M',
    quantization: 'Q4_K_M',
    capabilities: ['completion', 'tools', 'thinking'],
    contextLength: 40960,
  },
];

async function main(): Promise<void> {
  const sim = await startOllamaSimulator({ models: MODELS, chunkLatencyMs: 40, loadDelayMs: 300 });
  const port = process.env.PORT ?? '8080';
  const banner = [
    '',
    '#'.repeat(78),
    '#  DEMO MODE — answers come from a SIMULATED Ollama, not a real model.',
    `#  Simulated Ollama: ${sim.url}  (models: ${MODELS.map((m) => m.name).join(', ')})`,
    `#  Gateway:          http://127.0.0.1:${port}`,
    '#  Try:',
    `#    curl -s localhost:${port}/health`,
    `#    curl -s localhost:${port}/ollama/models`,
    `#    curl -s localhost:${port}/agents/run -H 'content-type: application/json' \\`,
    `#         -d '{"agent":"default","input":"Say hello"}'`,
    '#  Stop with Ctrl-C.',
    '#'.repeat(78),
    '',
  ].join('\n');
  process.stdout.write(`${banner}\n`);

  const child = spawn(process.execPath, [path.join(__dirname, '..', 'src', 'server.js')], {
    stdio: 'inherit',
    env: {
      ...process.env,
      PORT: port,
      OLLAMA_HOST: sim.url,
      OLLAMA_MODEL: MODELS[0]!.name,
      LOG_FORMAT: process.env.LOG_FORMAT ?? 'pretty',
      NODE_ENV: 'development',
      // No endpoints to take this process out of: stop without the pre-close delay.
      SHUTDOWN_DELAY_MS: process.env.SHUTDOWN_DELAY_MS ?? '0',
    },
  });
  // Ctrl-C reaches the whole process group, the service included: forwarding SIGINT as well
  // would be a second signal, which makes the service exit at once instead of draining.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('exit', (code) => {
    void sim.close().then(() => process.exit(code ?? 0));
  });
}

void main();
