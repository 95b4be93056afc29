import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { helmTemplate } from '../../../scripts/lib/chart';
import { CHART_DIR, parseManifests, RELEASE } from './render';

/**
 * NOTES.txt as `helm install` would print it. `helm template` never prints NOTES, so a copy
 * of the chart gets one extra template that renders NOTES.txt through `tpl` into a ConfigMap.
 */
export async function renderNotes(valueFiles: readonly string[]): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'oag-notes-'));
  try {
    const chart = path.join(dir, 'chart');
    cpSync(CHART_DIR, chart, { recursive: true });
    cpSync(path.join(chart, 'templates', 'NOTES.txt'), path.join(chart, 'files', 'NOTES.txt'));
    writeFileSync(
      path.join(chart, 'templates', 'zz-notes.yaml'),
      [
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata: {name: notes}',
        'data:',
        '  notes: {{ tpl (.Files.Get "files/NOTES.txt") . | quote }}',
        '',
      ].join('\n'),
    );
    const args = valueFiles.flatMap((f) => ['-f', f]);
    const objs = parseManifests(
      await helmTemplate([RELEASE, chart, '--show-only', 'templates/zz-notes.yaml', ...args]),
    );
    return (objs[0]?.data as { notes: string }).notes;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
