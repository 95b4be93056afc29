import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  devDependencies: Record<string, string>;
};

describe('the Node.js runtime of the test suite', () => {
  it('is Node 24, the release package.json installs for npm scripts', () => {
    const [major] = process.versions.node.split('.');
    assert.equal(major, '24', `the suite runs on Node ${process.version}`);
    assert.equal(process.versions.node, pkg.devDependencies.node);
  });
});
