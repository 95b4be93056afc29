/** Ollama names `llama3.2` and `llama3.2:latest` the same model. */
export function sameModel(a: string, b: string): boolean {
  const canonical = (n: string): string => (n.includes(':') ? n : `${n}:latest`).toLowerCase();
  return canonical(a) === canonical(b);
}
