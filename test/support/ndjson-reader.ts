/**
 * Reads an NDJSON response line by line as it arrives. `lines` fills up while reading;
 * `next()` resolves with the next line (or null at the end); `done` resolves when the body
 * ended cleanly and rejects if it was cut.
 */
export function readNdjson(res: Response): {
  lines: Array<Record<string, unknown>>;
  next: () => Promise<Record<string, unknown> | null>;
  done: Promise<Array<Record<string, unknown>>>;
} {
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<(line: Record<string, unknown> | null) => void> = [];
  let consumed = 0;
  let ended = false;
  const wake = (): void => {
    while (waiters.length > 0 && (consumed < lines.length || ended)) {
      const line = consumed < lines.length ? lines[consumed++]! : null;
      waiters.shift()!(line);
    }
  };
  const done = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let at: number;
        while ((at = buffer.indexOf('\n')) >= 0) {
          const text = buffer.slice(0, at).trim();
          buffer = buffer.slice(at + 1);
          if (text !== '') lines.push(JSON.parse(text) as Record<string, unknown>);
        }
        wake();
      }
    } finally {
      ended = true;
      wake();
    }
    return lines;
  })();
  done.catch(() => undefined); // observed by the test through `done`
  return {
    lines,
    next: () => new Promise((resolve) => (waiters.push(resolve), wake())),
    done,
  };
}
