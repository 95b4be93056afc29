/**
 * Renders the configuration table for README.md and the whole of .env.example from
 * schemas/config.schema.json, so the docs cannot drift from what the service validates.
 * `npm run docs:config` writes both; `test/unit/config-docs.test.ts` fails when they differ.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { schemasDir } from '../src/validation';

interface PropertySchema {
  type?: string;
  default?: unknown;
  description?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  pattern?: string;
  writeOnly?: boolean;
}

const START = '<!-- config-table:start -->';
const END = '<!-- config-table:end -->';

function properties(): Array<[string, PropertySchema]> {
  const schema = JSON.parse(
    readFileSync(path.join(schemasDir(), 'config.schema.json'), 'utf8'),
  ) as {
    properties: Record<string, PropertySchema>;
  };
  return Object.entries(schema.properties);
}

function allowed(p: PropertySchema): string {
  if (p.enum) return p.enum.map((v) => `\`${String(v)}\``).join(', ');
  if (p.type === 'integer' || p.type === 'number')
    return `${p.minimum ?? '…'} – ${p.maximum ?? '…'}`;
  if (p.type === 'boolean') return '`true`, `false`';
  return 'text';
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function renderConfigTable(): string {
  const rows = properties().map(([name, p]) => {
    const def =
      p.default === '' || p.default === undefined ? '(empty)' : `\`${String(p.default)}\``;
    const secret = p.writeOnly ? ' Secret: never logged.' : '';
    return `| \`${name}\` | ${p.type ?? ''} | ${def} | ${cell(allowed(p))} | ${cell(p.description ?? '')}${secret} |`;
  });
  return [
    '| variable | type | default | allowed | meaning |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

export function renderEnvExample(): string {
  const lines = [
    '# Every variable the service reads, with its default. Generated from',
    '# schemas/config.schema.json by `npm run docs:config`; a test checks it.',
    '',
  ];
  for (const [name, p] of properties()) {
    lines.push(`# ${p.description ?? ''}`);
    lines.push(`${name}=${p.default === undefined ? '' : String(p.default)}`);
    lines.push('');
  }
  return lines.join('\n');
}

/** README.md with its config table replaced by a fresh render. */
export function readmeWithTable(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error('README.md lacks the config-table markers');
  return `${readme.slice(0, start + START.length)}\n${renderConfigTable()}\n${readme.slice(end)}`;
}

export function repoRoot(): string {
  return path.dirname(schemasDir());
}

if (require.main === module) {
  const root = repoRoot();
  const readmePath = path.join(root, 'README.md');
  writeFileSync(readmePath, readmeWithTable(readFileSync(readmePath, 'utf8')));
  writeFileSync(path.join(root, '.env.example'), renderEnvExample());
  process.stdout.write('README.md configuration table and .env.example regenerated\n');
}
