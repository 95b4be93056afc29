import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readmeWithTable, renderEnvExample, repoRoot } from '../../scripts/config-docs';

describe('configuration docs', () => {
  const root = repoRoot();

  it('README.md holds the table generated from schemas/config.schema.json (npm run docs:config)', () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    assert.equal(readme, readmeWithTable(readme));
  });

  it('.env.example lists every variable with its default (npm run docs:config)', () => {
    assert.equal(readFileSync(path.join(root, '.env.example'), 'utf8'), renderEnvExample());
  });
});
