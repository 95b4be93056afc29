#!/usr/bin/env node
// Before `npm test`: deletes compiled test files under dist/test whose TypeScript source is
// gone. tsc never deletes an output, and mocha runs every dist/test/**/*.test.js, so a test
// deleted or renamed in test/ would otherwise keep running on a developer's tree.
'use strict';
const { existsSync, readdirSync, rmSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dist = path.join(root, 'dist', 'test');

function walk(dir) {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      walk(file);
      continue;
    }
    const match = /^(.*)\.js$/.exec(entry.name);
    if (!match) continue;
    const stem = path.join(root, path.relative(path.join(root, 'dist'), dir), match[1]);
    if (['.ts', '.js'].some((ext) => existsSync(`${stem}${ext}`))) continue;
    rmSync(file);
    rmSync(`${file}.map`, { force: true });
    process.stdout.write(`removed ${path.relative(root, file)} (its source is gone)\n`);
  }
}

walk(dist);
