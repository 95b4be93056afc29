import { startOllamaSimulator } from './support/ollama-simulator';
import { createOllamaService } from '../services/ollama-client';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { createNoopTelemetry } from '../services/telemetry';

async function main() {
  const sim = await startOllamaSimulator();
  const config = loadConfig({ OLLAMA_HOST: sim.url, LOG_LEVEL: 'silent' });
  const svc = createOllamaService({
    config,
    telemetry: createNoopTelemetry(),
    logger: createLogger({ level: 'silent', format: 'json' }),
  });
  sim.dropMidStream(2);
  try {
    const s2 = await svc.chatStream({
      model: 'llama3.2:3b',
      messages: [{ role: 'user', content: 'hi' }],
    });
    for await (const c of s2) console.log(JSON.stringify(c));
    console.log('ended ok');
  } catch (e) {
    console.log(
      'drop',
      (e as Error & { code: string }).code,
      (e as Error).message,
      (e as Error).cause,
    );
  }
  await svc.close();
  await sim.close();
}
main().catch((e) => {
  console.error('FAIL', e);
  process.exit(1);
});
