import { ToolError, type ToolDefinition } from './types';

/** The offset of `zone` at `date` as `+HH:MM`, read from Intl (no time-zone database of our own). */
function utcOffset(date: Date, zone: string): string {
  const part = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' })
    .formatToParts(date)
    .find((p) => p.type === 'timeZoneName')?.value;
  // `GMT` alone means offset zero; otherwise `GMT+05:30`.
  return !part || part === 'GMT' ? '+00:00' : part.replace('GMT', '');
}

/** Local wall-clock time in `zone` as `YYYY-MM-DDTHH:MM:SS`. */
function localTime(date: Date, zone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
      .formatToParts(date)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}`;
}

/** Checks an IANA zone name with Intl; a ToolError for an unknown zone. */
function checkZone(zone: string): string {
  try {
    // Intl may report a legacy alias (Asia/Kolkata → Asia/Calcutta); keep the caller's spelling.
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return zone;
  } catch {
    throw new ToolError(
      `Unknown time zone "${zone}". Use an IANA name such as "Europe/Paris" or "UTC".`,
    );
  }
}

/** `current_time`: the current date and time in an IANA time zone (UTC by default). */
export function createCurrentTimeTool(options: { now: () => number }): ToolDefinition {
  const { now } = options;
  return {
    name: 'current_time',
    description:
      'Returns the current date and time in an IANA time zone (default UTC): ISO instant, local time, weekday and UTC offset.',
    parameters: {
      type: 'object',
      properties: {
        timezone: {
          type: 'string',
          minLength: 1,
          maxLength: 64,
          description: 'IANA time zone name, e.g. "Europe/Paris", "America/New_York" or "UTC".',
        },
      },
      additionalProperties: false,
    },
    idempotent: true,
    timeoutMs: 1000,
    async run(args) {
      const zone = checkZone(typeof args.timezone === 'string' ? args.timezone : 'UTC');
      const date = new Date(now());
      return {
        timezone: zone,
        iso: date.toISOString(),
        local: localTime(date, zone),
        weekday: new Intl.DateTimeFormat('en-US', { timeZone: zone, weekday: 'long' }).format(date),
        utc_offset: utcOffset(date, zone),
      };
    },
  };
}
