import assert from 'node:assert/strict';
import { podSpecOf, type Container } from './policy';
import type { K8sObject } from './render';

export const byKind = (objs: K8sObject[], kind: string): K8sObject[] =>
  objs.filter((o) => o.kind === kind);

/** The one object of a kind (and component label); fails when there is none or several. */
export const one = (objs: K8sObject[], kind: string, component?: string): K8sObject => {
  const found = byKind(objs, kind).filter(
    (o) => !component || o.metadata.labels?.['app.kubernetes.io/component'] === component,
  );
  assert.equal(found.length, 1, `expected one ${kind} ${component ?? ''}, got ${found.length}`);
  return found[0] as K8sObject;
};

/** A container (init containers included) of a workload, by name. */
export const container = (obj: K8sObject, name: string): Container => {
  const pod = podSpecOf(obj);
  const c = [...pod.containers, ...(pod.initContainers ?? [])].find((x) => x.name === name);
  assert.ok(c, `${obj.kind} has no container ${name}`);
  return c;
};
