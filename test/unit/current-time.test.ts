import assert from 'node:assert/strict';
import { createCurrentTimeTool } from '../../services/tools/current-time';

const ctx = () => ({ signal: new AbortController().signal });

describe('current_time tool', () => {
  const tool = createCurrentTimeTool({ now: () => Date.UTC(2026, 0, 5, 10, 30, 0) });

  it('gives the time in an IANA zone with its offset', async () => {
    const out = (await tool.run({ timezone: 'Asia/Kolkata' }, ctx())) as Record<string, string>;
    assert.equal(out.timezone, 'Asia/Kolkata');
    assert.equal(out.iso, '2026-01-05T10:30:00.000Z');
    assert.equal(out.local, '2026-01-05T16:00:00');
    assert.equal(out.utc_offset, '+05:30');
    assert.equal(out.weekday, 'Monday');
  });

  it('defaults to UTC', async () => {
    const out = (await tool.run({}, ctx())) as Record<string, string>;
    assert.equal(out.timezone, 'UTC');
    assert.equal(out.utc_offset, '+00:00');
  });

  it('refuses an unknown zone with a message for the model', async () => {
    await assert.rejects(tool.run({ timezone: 'Mars/Olympus' }, ctx()), /Unknown time zone/);
  });
});
