import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCommand } from '../support/run-command';

const root = path.join(__dirname, '..', '..', '..');
const depcruise = path.join(root, 'node_modules', '.bin', 'depcruise');
const config = path.join(root, '.dependency-cruiser.cjs');

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

/** Lays out `files` (path → source) in a new directory and cruises it with the repo's rules. */
async function violationsIn(files: Record<string, string>): Promise<Violation[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'depcruise-'));
  try {
    for (const [file, source] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), source);
    }
    const folders = [...new Set(Object.keys(files).map((f) => f.split('/')[0]!))];
    const { code, stdout, stderr } = await runCommand(
      depcruise,
      ['--config', config, '--output-type', 'json', ...folders],
      { cwd: dir },
    );
    assert.ok(code !== null, stderr);
    const result = JSON.parse(stdout) as { summary: { violations: Violation[] } };
    return result.summary.violations;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `rule: from → to` for each violation, sorted, for exact comparisons. */
const named = (violations: Violation[]): string[] =>
  violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort();

// A small tree with the project's layout: one domain with its index and an inner unit.
const layout: Record<string, string> = {
  'src/errors.ts': 'export const code = 1;\n',
  'src/app.ts': "import { route } from '../routers/ok';\nexport const app = route;\n",
  'services/ollama/client.ts': "import { code } from '../../src/errors';\nexport const c = code;\n",
  'services/ollama/index.ts': "export { c } from './client';\n",
  'services/models/index.ts': "import { c } from '../ollama';\nexport const m = c;\n",
  'routers/ok.ts':
    "import { m } from '../services/models';\nimport { code } from '../src/errors';\nexport const route = m + code;\n",
  'middleware/ok.ts': "import { code } from '../src/errors';\nexport const mw = code;\n",
};

describe('the import rule (.dependency-cruiser.cjs, run by npm run lint)', () => {
  it('passes a tree that imports one way, through the domain indexes', async () => {
    assert.deepEqual(named(await violationsIn(layout)), []);
  });

  describe('when an import goes the wrong way', () => {
    const cases: Array<[string, Record<string, string>, string[]]> = [
      [
        'middleware imports a service',
        { 'middleware/bad.ts': "import { m } from '../services/models';\nexport const x = m;\n" },
        ['middleware-imports-only-kernel: middleware/bad.ts → services/models/index.ts'],
      ],
      [
        'the kernel imports middleware',
        {
          'src/logger.ts': "import { mw } from '../middleware/ok';\nexport const l = mw;\n",
        },
        ['kernel-imports-only-kernel: src/logger.ts → middleware/ok.ts'],
      ],
      [
        'a router reaches past a domain index',
        {
          'routers/bad.ts': "import { c } from '../services/ollama/client';\nexport const x = c;\n",
        },
        ['domain-entered-through-index: routers/bad.ts → services/ollama/client.ts'],
      ],
      [
        'a domain reaches past another domain index',
        {
          'services/agents/bad.ts': "import { c } from '../ollama/client';\nexport const x = c;\n",
        },
        ['domain-to-domain-through-index: services/agents/bad.ts → services/ollama/client.ts'],
      ],
      [
        'a service imports a router',
        {
          'services/models/bad.ts':
            "import { route } from '../../routers/ok';\nexport const x = route;\n",
        },
        ['services-import-down: services/models/bad.ts → routers/ok.ts'],
      ],
      [
        'a router imports the composition root',
        { 'routers/bad.ts': "import { app } from '../src/app';\nexport const x = app;\n" },
        ['routers-import-down: routers/bad.ts → src/app.ts'],
      ],
    ];
    for (const [name, extra, expected] of cases) {
      it(`fails: ${name}`, async () => {
        assert.deepEqual(named(await violationsIn({ ...layout, ...extra })), expected);
      });
    }

    it('fails on modules that load each other at run time, not on type-only cycles', async () => {
      const typeOnly = {
        'services/ollama/types.ts': "import type { M } from '../models';\nexport type T = M;\n",
        'services/ollama/index.ts':
          "export { c } from './client';\nexport type { T } from './types';\n",
        'services/models/index.ts':
          "import { c, type T } from '../ollama';\nexport const m = c;\nexport type M = T | number;\n",
      };
      assert.deepEqual(named(await violationsIn({ ...layout, ...typeOnly })), []);
      const runtime = {
        'services/ollama/index.ts':
          "import { m } from '../models';\nexport { c } from './client';\nexport const d = m;\n",
      };
      const found = named(await violationsIn({ ...layout, ...runtime }));
      assert.ok(
        found.length > 0 && found.every((v) => v.startsWith('no-runtime-cycles: ')),
        found.join('\n'),
      );
    });
  });
});
