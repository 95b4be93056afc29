import type { K8sObject } from './render';

/** Loose views of the pod fields the policy reads. */
export interface Probe {
  httpGet?: { path: string; port: string | number };
  tcpSocket?: { port: string | number };
  periodSeconds?: number;
  failureThreshold?: number;
}
export interface Container {
  name: string;
  image: string;
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string }[];
  envFrom?: { configMapRef?: { name: string } }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string | number> };
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[] } };
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
}
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: Record<string, unknown> & { seccompProfile?: { type: string } };
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  tolerations?: { key?: string }[];
  runtimeClassName?: string;
  volumes?: { name: string; secret?: { secretName: string; items?: { key: string }[] } }[];
}

export const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'Pod'];
/** Components whose containers must run on a read-only root filesystem. */
export const READ_ONLY_COMPONENTS = ['gateway', 'redis'];

export function podSpecOf(obj: K8sObject): PodSpec {
  const spec = obj.spec as { template?: { spec: PodSpec } } & PodSpec;
  return obj.kind === 'Pod' ? spec : (spec.template as { spec: PodSpec }).spec;
}

/**
 * Problems of one workload against the deployment policy: resources, probes present and
 * distinct on long-running containers, non-root, no `latest` images, no mounted token;
 * the gateway and Redis also need a read-only root filesystem.
 */
export function workloadProblems(obj: K8sObject): string[] {
  const where = `${obj.kind} ${obj.metadata.name}`;
  const pod = podSpecOf(obj);
  const problems: string[] = [];
  const podNonRoot = pod.securityContext?.runAsNonRoot === true;
  if (pod.automountServiceAccountToken !== false)
    problems.push(`${where}: mounts a service-account token`);
  if (pod.securityContext?.seccompProfile?.type !== 'RuntimeDefault')
    problems.push(`${where}: seccomp is not RuntimeDefault`);
  const all = [...pod.containers, ...(pod.initContainers ?? [])];
  for (const c of all) {
    const at = `${where} container ${c.name}`;
    const sc = c.securityContext ?? {};
    if (
      !(podNonRoot || sc.runAsNonRoot === true) ||
      sc.runAsUser === 0 ||
      pod.securityContext?.runAsUser === 0
    ) {
      problems.push(`${at}: may run as root`);
    }
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${at}: allows privilege escalation`);
    if (!sc.capabilities?.drop?.includes('ALL'))
      problems.push(`${at}: does not drop all capabilities`);
    if (!c.resources?.requests?.cpu || !c.resources.requests.memory)
      problems.push(`${at}: no cpu/memory requests`);
    if (!c.resources?.limits?.memory) problems.push(`${at}: no memory limit`);
    if (
      !/(@sha256:[a-f0-9]{64}|:[A-Za-z0-9_][A-Za-z0-9._-]*)$/.test(c.image) ||
      /:latest$/.test(c.image)
    ) {
      problems.push(`${at}: image ${c.image} is not pinned`);
    }
    if (
      READ_ONLY_COMPONENTS.includes(obj.metadata.labels?.['app.kubernetes.io/component'] ?? '') &&
      sc.readOnlyRootFilesystem !== true
    ) {
      problems.push(`${at}: root filesystem is writable`);
    }
  }
  if (obj.kind !== 'Pod') {
    for (const c of pod.containers) {
      const at = `${where} container ${c.name}`;
      if (!c.startupProbe || !c.readinessProbe || !c.livenessProbe)
        problems.push(`${at}: a probe is missing`);
      else if (JSON.stringify(c.livenessProbe) === JSON.stringify(c.readinessProbe)) {
        problems.push(`${at}: liveness and readiness probes are the same check`);
      }
    }
  }
  return problems;
}
