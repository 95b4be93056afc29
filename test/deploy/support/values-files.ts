import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { runHelm } from '../../../scripts/lib/chart';
import { CHART_DIR, DEFAULTS_FILE, renderChart, type K8sObject } from './render';

export interface ValuesFiles {
  /** Writes `text` as a new values file in the folder `dir()` names; returns its path. */
  valuesFile(text: string): string;
  /** The chart rendered with the defaults file plus `text` (and extra helm arguments). */
  render(text?: string, extra?: readonly string[]): Promise<K8sObject[]>;
  /** Asserts that the defaults plus `text` fail to render with `message`. */
  refused(text: string, message: RegExp): Promise<void>;
}

/** Values files written into a test's temporary folder, rendered on top of the defaults. */
export function valuesFiles(dir: () => string): ValuesFiles {
  const valuesFile = (text: string) => {
    const file = path.join(dir(), `v${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, text);
    return file;
  };
  return {
    valuesFile,
    render: (text = '', extra = []) =>
      renderChart(['-f', DEFAULTS_FILE, '-f', valuesFile(text), ...extra]),
    async refused(text, message) {
      const r = await runHelm([
        'template',
        'oag',
        CHART_DIR,
        '-f',
        DEFAULTS_FILE,
        '-f',
        valuesFile(text),
      ]);
      assert.notEqual(r.status, 0, 'the render must fail');
      assert.match(r.stderr, message);
    },
  };
}
