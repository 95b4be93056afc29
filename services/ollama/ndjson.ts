import { StringDecoder } from 'node:string_decoder';
import { midStreamError } from './errors';

/**
 * Ollama's NDJSON (one JSON object per line) as its bytes arrive: each `push` returns the
 * objects whose lines the chunk completed, `end` the last one when no newline followed it.
 * Lines may break anywhere, inside a multi-byte character too. A line that is not JSON is
 * Ollama failing mid-answer (OLLAMA_UPSTREAM_ERROR); empty lines are skipped.
 */
export class NdjsonLines {
  private readonly decoder = new StringDecoder('utf8');
  private rest = '';

  push(data: Buffer): unknown[] {
    const lines = (this.rest + this.decoder.write(data)).split('\n');
    this.rest = lines.pop() ?? '';
    const objects: unknown[] = [];
    for (const line of lines) if (line.length > 0) objects.push(parseLine(line));
    return objects;
  }

  end(): unknown[] {
    const last = this.rest + this.decoder.end();
    this.rest = '';
    return last.trim() === '' ? [] : [parseLine(last)];
  }
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch (err) {
    throw midStreamError(err);
  }
}
