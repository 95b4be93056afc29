#!/usr/bin/env node
// Supply-chain gate for .ci/run: `npm audit --omit=dev`, failing on high or critical
// advisories. When the registry's advisory service cannot be reached (some mirrors answer
// 405 to the bulk-advisory POST), the check did not run: say so loudly and do not pretend
// it passed — the line "NOT CHECKED" is printed, and the exit code stays 0 so that an
// unreachable service does not block every landing.
'use strict';
const { spawnSync } = require('node:child_process');

const r = spawnSync('npm', ['audit', '--omit=dev', '--json'], { encoding: 'utf8' });
let report;
try {
  report = JSON.parse(r.stdout);
} catch {
  process.stderr.write(`npm audit printed no JSON (exit ${r.status}):\n${r.stderr}\n`);
  process.exit(1);
}
if (!report.metadata) {
  const why = report.message || (report.error && report.error.summary) || 'no report';
  process.stdout.write(`npm audit: advisory service unreachable (${why}) — NOT CHECKED\n`);
  process.exit(0);
}
const v = report.metadata.vulnerabilities || {};
const high = (v.high || 0) + (v.critical || 0);
process.stdout.write(
  `npm audit (production dependencies): ${v.critical || 0} critical, ${v.high || 0} high, ` +
    `${v.moderate || 0} moderate, ${v.low || 0} low\n`,
);
if (high > 0) {
  for (const [name, info] of Object.entries(report.vulnerabilities || {})) {
    if (info.severity === 'high' || info.severity === 'critical') {
      process.stdout.write(`  ${info.severity}: ${name} ${info.range || ''}\n`);
    }
  }
  process.exit(1);
}
