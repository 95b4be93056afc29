import type { OllamaSimulator } from './ollama-simulator';

/**
 * The ways an operator can point the gateway at Ollama through OLLAMA_HOST alone. Suites run
 * once per variant, so the same behaviour holds for another host name and address form.
 */
export const OLLAMA_HOST_VARIANTS: ReadonlyArray<{
  name: string;
  host: (sim: OllamaSimulator) => string;
}> = [
  { name: 'OLLAMA_HOST=http://127.0.0.1:PORT', host: (sim) => sim.url },
  {
    name: 'OLLAMA_HOST=localhost:PORT (no scheme, another host name)',
    host: (sim) => `localhost:${sim.port}`,
  },
];
