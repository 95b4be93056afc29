/** Incremental parsers for the two streaming wire formats the bench reads. */

export interface SseEvent {
  event: string;
  data: string;
}

/**
 * Feeds text as it arrives and returns the events completed by it (an event ends at a blank
 * line). Comment lines (`: ping`) are skipped; `event` defaults to `message`.
 */
export function createSseParser(): (text: string) => SseEvent[] {
  let buffer = '';
  return (text) => {
    buffer += text;
    const events: SseEvent[] = [];
    let end: RegExpExecArray | null;
    while ((end = /\r?\n\r?\n/.exec(buffer)) !== null) {
      const block = buffer.slice(0, end.index);
      buffer = buffer.slice(end.index + end[0].length);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0 || event !== 'message') events.push({ event, data: data.join('\n') });
    }
    return events;
  };
}

/** Feeds NDJSON text as it arrives and returns the complete, parsed lines. */
export function createNdjsonParser(): (text: string) => unknown[] {
  let buffer = '';
  return (text) => {
    buffer += text;
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    return lines.filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown);
  };
}
