import { startOllamaSimulator } from './support/ollama-simulator';
import { createOllamaService } from '../services/ollama-client';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { createNoopTelemetry } from '../services/telemetry';

async function main() {
  const sim = await startOllamaSimulator();
  const config = loadConfig({ OLLAMA_HOST: sim.url, LOG_LEVEL: 'silent' });
  const events: unknown[] = [];
  const telemetry = { ...createNoopTelemetry(), inference: (e: unknown) => void events.push(e) };
  const svc = createOllamaService({
    config,
    telemetry,
    logger: createLogger({ level: 'silent', format: 'json' }),
  });
  console.log(await svc.version());
  console.log((await svc.list()).models.map((m) => m.name));
  const r = await svc.chat({ model: 'llama3.2:3b', messages: [{ role: 'user', content: 'hi' }] });
  console.log(r.response.message.content, r.timings);
  const s = await svc.chatStream({
    model: 'llama3.2:3b',
    messages: [{ role: 'user', content: 'hi' }],
  });
  for await (const c of s) process.stdout.write(JSON.stringify(c.message.content) + ' ');
  console.log(s.timings);
  try {
    await svc.show('nope');
  } catch (e) {
    console.log('show nope', (e as Error & { code: string }).code);
  }
  sim.errorMidStream(2);
  try {
    const s2 = await svc.chatStream({
      model: 'llama3.2:3b',
      messages: [{ role: 'user', content: 'hi' }],
    });
    for await (const _ of s2);
  } catch (e) {
    console.log('mid', (e as Error & { code: string }).code, (e as Error).message);
  }
  sim.dropMidStream(2);
  try {
    const s2 = await svc.chatStream({
      model: 'llama3.2:3b',
      messages: [{ role: 'user', content: 'hi' }],
    });
    for await (const _ of s2);
  } catch (e) {
    console.log('drop', (e as Error & { code: string }).code, (e as Error).message);
  }
  sim.failNext(5, 503);
  try {
    await svc.chat({ model: 'llama3.2:3b', messages: [{ role: 'user', content: 'hi' }] });
  } catch (e) {
    console.log(
      'busy',
      (e as Error & { code: string; retryAfterS: number }).code,
      (e as { retryAfterS: number }).retryAfterS,
    );
  }
  for await (const p of svc.pull('tinyllama')) console.log('pull', JSON.stringify(p));
  console.log(await svc.preload('qwen3:8b'));
  console.log(sim.loaded());
  await svc.unload('qwen3:8b');
  console.log(sim.loaded());
  console.log(events.length, JSON.stringify(events.slice(0, 3)));
  await sim.stop();
  try {
    await svc.version();
  } catch (e) {
    console.log('stopped', (e as Error & { code: string }).code);
  }
  await svc.close();
  await sim.close();
}
main().catch((e) => {
  console.error('FAIL', e);
  process.exit(1);
});
