import type { K8sObject } from './render';
import { podSpecOf, type Container } from './policy';

/**
 * Facts about the pinned `ollama/ollama` image that decide where it can write, read in
 * ollama/ollama at tag v0.32.15 (commit b7871fc0d1d82fe109536efa3e0e8e411c766c75, the release
 * whose behaviour /work/shared/ollama-api.md describes). Paraphrased, not copied.
 *
 * - Dockerfile, final stage: `FROM ubuntu:24.04`; no `USER` (the process runs as root unless
 *   the pod says otherwise); `ENV` sets PATH, LD_LIBRARY_PATH, NVIDIA_DRIVER_CAPABILITIES,
 *   NVIDIA_VISIBLE_DEVICES=all and OLLAMA_HOST=0.0.0.0:11434 — no HOME, no OLLAMA_MODELS, no
 *   TMPDIR; `ENTRYPOINT ["/bin/ollama"]`, `CMD ["serve"]`.
 * - cmd/cmd.go:2015-2016 RunServer calls initializeKeypair first; cmd/cmd.go:2033-2075 creates
 *   `$HOME/.ollama` (MkdirAll) and writes `id_ed25519` and `id_ed25519.pub` there when the
 *   key is missing; an error stops `ollama serve`.
 * - envconfig/config.go:113-124 Models(): `OLLAMA_MODELS`, else `$HOME/.ollama/models`.
 * - server/model_recommendations.go:270-311: a cache file under `$HOME/.ollama/cache/`.
 * - server/inference_request_log.go:25 `os.MkdirTemp("", …)`: Go's temp dir, `$TMPDIR` or /tmp.
 * - api/client.go:113-127: the client signs requests (reading the key) only for ollama.com or
 *   with OLLAMA_AUTH, so `ollama pull` against a server elsewhere writes nothing itself.
 *
 * The base image (ubuntu:24.04) gives UID 0 the home /root (mode 0700) and UID 1000 the user
 * `ubuntu` with home /home/ubuntu; a container with no HOME gets its user's home from
 * /etc/passwd (otwld/ollama-helm#130, kubeai#397, ollama/ollama#5986 hit exactly this).
 */
export const OLLAMA_IMAGE = {
  repository: 'ollama/ollama',
  tag: '0.32.15',
  env: {
    NVIDIA_VISIBLE_DEVICES: 'all',
    NVIDIA_DRIVER_CAPABILITIES: 'compute,utility',
    OLLAMA_HOST: '0.0.0.0:11434',
  } as Record<string, string>,
  /** Home directories of the base image's users. */
  homes: { 0: '/root', 1000: '/home/ubuntu' } as Record<number, string>,
  /** Directories of the image whose mode keeps other users out. */
  closedDirs: { '/root': { uid: 0, mode: 0o700 } } as Record<string, { uid: number; mode: number }>,
};

/** Paths `ollama serve` writes, for a given environment. */
export function serverWritePaths(env: Record<string, string>): Array<[string, string]> {
  const home = env.HOME as string;
  const models = env.OLLAMA_MODELS || `${home}/.ollama/models`;
  return [
    ['its key file', `${home}/.ollama/id_ed25519`],
    ['OLLAMA_MODELS', `${models}/manifests`],
    ['its cache', `${home}/.ollama/cache/model-recommendations.json`],
    ['its temp dir', `${env.TMPDIR || '/tmp'}/ollama-request-logs-x`],
  ];
}

interface Mount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
}
type FullContainer = Container & {
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  volumeMounts?: Mount[];
};
interface PodVolume {
  name: string;
  emptyDir?: object;
  persistentVolumeClaim?: object;
}

/** Containers of a workload that run `ollama serve` (the image's CMD, or a script that starts it). */
export function ollamaServers(obj: K8sObject): FullContainer[] {
  const pod = podSpecOf(obj);
  return [...(pod.initContainers ?? []), ...pod.containers].filter((c) => {
    const full = c as FullContainer;
    if (!c.image.includes(`${OLLAMA_IMAGE.repository}:`)) return false;
    if (!full.command && !full.args) return true;
    return [...(full.command ?? []), ...(full.args ?? [])].some((a) => a.includes('ollama serve'));
  });
}

/**
 * Problems of every path the pinned image writes, for each container that runs the server:
 * each must land on a writable mounted volume the container's user can reach, and the models
 * on the persistent `models` volume (not the container layer, not a scratch emptyDir).
 */
export function ollamaWriteProblems(obj: K8sObject): string[] {
  const pod = podSpecOf(obj);
  const volumes = pod.volumes as PodVolume[] | undefined;
  const claims = (
    (obj.spec as { volumeClaimTemplates?: { metadata: { name: string } }[] })
      .volumeClaimTemplates ?? []
  ).map((c) => c.metadata.name);
  const problems: string[] = [];
  for (const c of ollamaServers(obj)) {
    const sc = (c.securityContext ?? {}) as { runAsUser?: number };
    const uid = sc.runAsUser ?? (pod.securityContext?.runAsUser as number | undefined) ?? 0;
    const fsGroup = pod.securityContext?.fsGroup as number | undefined;
    const env: Record<string, string> = { ...OLLAMA_IMAGE.env };
    for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
    env.HOME ??= OLLAMA_IMAGE.homes[uid] ?? '/';
    for (const [what, file] of serverWritePaths(env)) {
      const at = `${obj.kind} ${obj.metadata.name} container ${c.name} (uid ${uid}): ${what} ${file}`;
      const mount = (c.volumeMounts ?? [])
        .filter((m) => file.startsWith(`${m.mountPath.replace(/\/$/, '')}/`))
        .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
      if (!mount) {
        problems.push(`${at} is on no volume (the root filesystem)`);
        continue;
      }
      if (mount.readOnly || mount.subPath) problems.push(`${at}: mount ${mount.name} is read-only`);
      const volume = volumes?.find((v) => v.name === mount.name);
      const persistent = claims.includes(mount.name) || Boolean(volume?.persistentVolumeClaim);
      if (!persistent && !volume?.emptyDir) {
        problems.push(`${at}: volume ${mount.name} is not a writable volume`);
      } else if (persistent && uid !== 0 && fsGroup === undefined) {
        problems.push(`${at}: claim ${mount.name} is not writable for uid ${uid} without fsGroup`);
      }
      if (what === 'OLLAMA_MODELS' && mount.name !== 'models')
        problems.push(`${at}: models land on ${mount.name}, not the models volume`);
      for (const [dir, { uid: owner, mode }] of Object.entries(OLLAMA_IMAGE.closedDirs)) {
        if (mount.mountPath.startsWith(`${dir}/`) && uid !== owner && !(mode & 0o001))
          problems.push(`${at}: uid ${uid} cannot pass ${dir} (mode ${mode.toString(8)})`);
      }
    }
  }
  return problems;
}
