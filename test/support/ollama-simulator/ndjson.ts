/**
 * Read a fetch Response's NDJSON body to the end and parse every non-empty line. For tests that
 * look at the wire without the ollama client (which hides `error` lines and stops at `done`).
 */
export async function collectNdjson(res: Response): Promise<Array<Record<string, unknown>>> {
  const text = await res.text();
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
