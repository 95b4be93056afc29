#!/usr/bin/env node
// Installs what the test suite needs beyond npm packages (redis-server, prometheus, …).
// Each tool has its own idempotent script in scripts/prereqs/; this runs them in order.
// Runs before `npm test`, so the README's test command works on a fresh machine.
'use strict';
const { readdirSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const dir = path.join(__dirname, 'prereqs');
const scripts = readdirSync(dir)
  .filter((f) => f.endsWith('.sh') && f !== 'lib.sh')
  .sort();
for (const file of scripts) {
  const r = spawnSync('bash', [path.join(dir, file)], { stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`prerequisite ${file} failed (exit ${r.status})\n`);
    process.exit(r.status ?? 1);
  }
}
