import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SERVER_ENTRY, runToExit } from '../support/server-process';

describe('the server process with AGENTS_FILE', () => {
  it('exits 78 before listening when the file is invalid, naming the problems', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'agents-'));
    const file = path.join(dir, 'agents.yaml');
    writeFileSync(file, 'agents:\n  - name: helper\n    tools: [shell]\n');
    const r = await runToExit(process.execPath, [SERVER_ENTRY], {
      AGENTS_FILE: file,
      PORT: '0',
    }).finally(() => rmSync(dir, { recursive: true, force: true }));
    assert.equal(r.code, 78);
    assert.match(r.stderr, /Invalid AGENTS_FILE .*agents\.yaml/);
    assert.match(r.stderr, /tool "shell" is not available/);
    assert.doesNotMatch(r.stdout, /listening/);
  });
});
