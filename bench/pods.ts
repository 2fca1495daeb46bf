/**
 * The two pods the bench sends, and the AdmissionReview the apiserver would wrap them in. Built here, not taken
 * from test/fixtures, because the bench runs from dist/ where test fixtures are not compiled.
 */
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';

export type PodKind = 'typical' | 'large';

export const POD_KINDS: readonly PodKind[] = ['typical', 'large'];

/** One container with a port, probes and resources: what most Deployments create. */
export function typicalPod(name = 'web'): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', labels: { app: 'web', version: 'v1' } },
    spec: {
      containers: [
        {
          name: 'web',
          image: 'registry.example.com/shop/web:1.4.2',
          ports: [{ containerPort: 8080, name: 'http' }],
          readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 5 },
          livenessProbe: { httpGet: { path: '/live', port: 8080 }, initialDelaySeconds: 10 },
          resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
        },
      ],
    },
  };
}

const LARGE_CONTAINERS = 30;
const LARGE_ENV_PER_CONTAINER = 240;
const LARGE_VOLUMES = 60;
const LARGE_MOUNTS_PER_CONTAINER = 20;

/**
 * 30 containers with 240 env vars and 20 volume mounts each, over 60 volumes: an AdmissionReview of about 1 MiB,
 * close to the largest pod an apiserver stores (etcd's default request limit is 1.5 MiB).
 */
export function largePod(name = 'batch'): V1Pod {
  const volumes: V1Volume[] = Array.from({ length: LARGE_VOLUMES }, (_, v) =>
    v % 2 === 0
      ? { name: `config-${v}`, configMap: { name: `batch-settings-${v}`, defaultMode: 0o444 } }
      : { name: `secret-${v}`, secret: { secretName: `batch-credentials-${v}`, optional: true } },
  );
  const containers: V1Container[] = Array.from({ length: LARGE_CONTAINERS }, (_, c) => ({
    name: `worker-${c}`,
    image: `registry.example.com/batch/worker-${c}:2.7.${c}`,
    ports: [{ containerPort: 9000 + c, name: `metrics-${c}` }],
    env: Array.from({ length: LARGE_ENV_PER_CONTAINER }, (_, e) => ({
      name: `WORKER_${c}_SETTING_${e}_WITH_A_DESCRIPTIVE_NAME`,
      value: `value-${e}-for-worker-${c}-${'x'.repeat(50)}`,
    })),
    volumeMounts: Array.from({ length: LARGE_MOUNTS_PER_CONTAINER }, (_, m) => {
      const volume = volumes[(c + m) % LARGE_VOLUMES]!;
      return { name: volume.name, mountPath: `/etc/worker-${c}/${volume.name}`, readOnly: true };
    }),
    readinessProbe: { httpGet: { path: '/ready', port: 9000 + c } },
    resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { cpu: '200m', memory: '128Mi' } },
  }));
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'batch', labels: { app: 'batch', tier: 'workers' } },
    spec: { containers, volumes },
  };
}

export function podOfKind(kind: PodKind): V1Pod {
  return kind === 'typical' ? typicalPod() : largePod();
}

/** An admission.k8s.io/v1 AdmissionReview for a pod CREATE, as kube-apiserver sends it. */
export function admissionReview(pod: V1Pod, uid = '6d1c1a8e-5f55-4c8e-9a2e-3f0b8f2b7a11') {
  const namespace = pod.metadata?.namespace ?? 'default';
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      name: pod.metadata?.name,
      namespace,
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: [] },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}

export function admissionReviewBody(kind: PodKind): string {
  return JSON.stringify(admissionReview(podOfKind(kind)));
}
