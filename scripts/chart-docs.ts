/**
 * Generates the parameter table of helm/ollama-agent-gateway/README.md from the `# --`
 * comments in values.yaml (the helm-docs convention). A key with a `# --` comment is one row
 * (a map or list documented that way is shown whole); a map without one is descended into.
 * A leaf without a comment is an error: every value is documented.
 * Usage: npm run chart:docs
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isMap, isPair, isScalar, parseDocument, type Node, type Pair } from 'yaml';
import { CHART_PATH, repoRoot } from './lib/chart';

export interface ParameterRow {
  key: string;
  default: string;
  description: string;
}

const START = '<!-- parameters:start -->';
const END = '<!-- parameters:end -->';

function descriptionOf(comment: string | null | undefined): string | undefined {
  if (!comment) return undefined;
  const lines = comment.split('\n').map((l) => l.replace(/^ ?/, ''));
  const at = lines.findIndex((l) => l.startsWith('-- '));
  if (at < 0) return undefined;
  return lines.slice(at).join(' ').replace(/^-- /, '').replace(/\s+/g, ' ').trim();
}

/** Rows for every documented value; throws naming each undocumented leaf. */
export function parameterRows(valuesYaml: string): ParameterRow[] {
  const doc = parseDocument(valuesYaml);
  const rows: ParameterRow[] = [];
  const missing: string[] = [];
  const walk = (node: Node | null, prefix: string, inherited: string | null | undefined): void => {
    if (!isMap(node)) return;
    node.items.forEach((pair: Pair, i: number) => {
      if (!isPair(pair) || !isScalar(pair.key)) return;
      const key = `${prefix}${String(pair.key.value)}`;
      // The first pair's comment is attached to the map itself by the parser.
      const comment = (pair.key as Node).commentBefore ?? (i === 0 ? inherited : undefined);
      const description = descriptionOf(comment);
      const value = pair.value as Node | null;
      if (description !== undefined) {
        rows.push({
          key,
          default: JSON.stringify(value === null ? null : value.toJSON()),
          description,
        });
      } else if (isMap(value) && value.items.length > 0) {
        walk(value, `${key}.`, value.commentBefore);
      } else {
        missing.push(key);
      }
    });
  };
  walk(doc.contents as Node, '', (doc.contents as Node | null)?.commentBefore ?? doc.commentBefore);
  if (missing.length > 0) throw new Error(`values.yaml: undocumented keys: ${missing.join(', ')}`);
  return rows;
}

export function parameterTable(valuesYaml: string): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  return [
    '| Key | Default | Description |',
    '| --- | --- | --- |',
    ...parameterRows(valuesYaml).map(
      (r) => `| \`${r.key}\` | \`${cell(r.default)}\` | ${cell(r.description)} |`,
    ),
  ].join('\n');
}

/** The README with its table between the markers replaced. */
export function withTable(readme: string, table: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README has no ${START} … ${END} markers`);
  return `${readme.slice(0, start + START.length)}\n\n${table}\n\n${readme.slice(end)}`;
}

export function chartReadmePaths(root: string = repoRoot()): { values: string; readme: string } {
  return {
    values: path.join(root, CHART_PATH, 'values.yaml'),
    readme: path.join(root, CHART_PATH, 'README.md'),
  };
}

if (require.main === module) {
  const { values, readme } = chartReadmePaths();
  const table = parameterTable(readFileSync(values, 'utf8'));
  writeFileSync(readme, withTable(readFileSync(readme, 'utf8'), table));
  console.log(`wrote the parameter table of ${readme}`);
}
