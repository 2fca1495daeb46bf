/**
 * The workload a pod belongs to, and the canonical service labels Istio derives from it
 * (GetDeployMetaFromPod and the canonical-name/-revision chains of the injection template).
 */
import type { V1Pod } from '@kubernetes/client-node';
import { LABELS } from '../common/constants.js';

const CRONJOB_JOB_NAME = /^(.+)-\d{8,10}$/;

export function workloadName(pod: V1Pod): string {
  const labels = pod.metadata?.labels ?? {};
  const controller = pod.metadata?.ownerReferences?.find((owner) => owner.controller === true);
  if (controller) {
    const hash = labels['pod-template-hash'];
    if (controller.kind === 'ReplicaSet' && hash && controller.name.endsWith(`-${hash}`)) {
      return controller.name.slice(0, -(hash.length + 1));
    }
    if (controller.kind === 'ReplicationController' && labels.deploymentconfig)
      return labels.deploymentconfig;
    if (controller.kind === 'Job') return CRONJOB_JOB_NAME.exec(controller.name)?.[1] ?? controller.name;
    return controller.name;
  }
  const name = pod.metadata?.name;
  if (name) return name;
  return (pod.metadata?.generateName ?? '').replace(/-+$/, '');
}

/** The workload's type and name, as Istio's GetDeployMetaFromPod derives them (for ISTIO_META_OWNER). */
export function workloadOf(pod: V1Pod): { apiVersion: string; kind: string; name: string } {
  const labels = pod.metadata?.labels ?? {};
  const controller = pod.metadata?.ownerReferences?.find((owner) => owner.controller === true);
  const name = workloadName(pod);
  if (!controller) return { apiVersion: 'v1', kind: 'Pod', name };
  const hash = labels['pod-template-hash'];
  if (controller.kind === 'ReplicaSet' && hash && controller.name.endsWith(`-${hash}`)) {
    return { apiVersion: 'apps/v1', kind: 'Deployment', name };
  }
  if (controller.kind === 'ReplicationController' && labels.deploymentconfig) {
    return { apiVersion: 'apps.openshift.io/v1', kind: 'DeploymentConfig', name };
  }
  if (controller.kind === 'Job' && CRONJOB_JOB_NAME.test(controller.name)) {
    return { apiVersion: 'batch/v1', kind: 'CronJob', name };
  }
  return { apiVersion: controller.apiVersion, kind: controller.kind, name };
}

export function canonicalLabels(pod: V1Pod): Record<string, string> {
  const labels = pod.metadata?.labels ?? {};
  const name =
    labels[LABELS.canonicalName] ?? labels['app.kubernetes.io/name'] ?? labels.app ?? workloadName(pod);
  const revision =
    labels[LABELS.canonicalRevision] ?? labels['app.kubernetes.io/version'] ?? labels.version ?? 'latest';
  return {
    [LABELS.tlsMode]: labels[LABELS.tlsMode] ?? 'istio',
    [LABELS.canonicalName]: name.slice(0, 63).replace(/^[-_.]+|[-_.]+$/g, ''),
    [LABELS.canonicalRevision]: revision,
  };
}
