/**
 * `mesh-injector check --pre`: before installing, as `linkerd check --pre` does. The Kubernetes version, whether
 * the installer may create everything manifests/ holds, and that no other injector already answers for the
 * labels this one selects (Istio's istiod injector, or an earlier install under another name).
 */
import {
  AdmissionregistrationV1Api,
  AuthorizationV1Api,
  type KubeConfig,
  type V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { LABELS, WEBHOOK_CONFIGURATION_NAME } from '../common/constants.js';
import { fetchServerVersion } from '../webhook/cluster.js';
import { kubernetesVersionCheck, type CheckReport, type CheckResult } from './check-report.js';

/** What `kubectl apply -k manifests/` creates: group, resource, namespaced. */
export const INSTALLED_RESOURCES: { group: string; resource: string; namespaced: boolean }[] = [
  { group: '', resource: 'namespaces', namespaced: false },
  { group: '', resource: 'serviceaccounts', namespaced: true },
  { group: '', resource: 'configmaps', namespaced: true },
  { group: '', resource: 'services', namespaced: true },
  { group: '', resource: 'resourcequotas', namespaced: true },
  { group: 'apps', resource: 'deployments', namespaced: true },
  { group: 'policy', resource: 'poddisruptionbudgets', namespaced: true },
  { group: 'rbac.authorization.k8s.io', resource: 'roles', namespaced: true },
  { group: 'rbac.authorization.k8s.io', resource: 'rolebindings', namespaced: true },
  { group: 'rbac.authorization.k8s.io', resource: 'clusterroles', namespaced: false },
  { group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings', namespaced: false },
  { group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations', namespaced: false },
];

export interface PreSnapshot {
  serverVersion?: { major: string; minor: string; gitVersion?: string };
  /** Resources the installer may not create, as `group/resource`. */
  forbidden: string[];
  webhookConfigurations: { name: string; webhooks: { name: string; selectorKeys: string[] }[] }[];
}

export function evaluatePreChecks(snapshot: PreSnapshot, ownName = WEBHOOK_CONFIGURATION_NAME): CheckReport {
  const checks: CheckResult[] = [
    { ...kubernetesVersionCheck(snapshot.serverVersion), id: 'pre-kubernetes-version' },
  ];
  checks.push({
    id: 'pre-installer-rbac',
    description: 'you may create everything the manifests install',
    status: snapshot.forbidden.length === 0 ? 'ok' : 'fail',
    details:
      snapshot.forbidden.length === 0
        ? [`create allowed on ${INSTALLED_RESOURCES.length} resource types`]
        : snapshot.forbidden.map((resource) => `create ${resource} is not allowed`),
    hint: 'install as a cluster administrator, or have one grant these (kubectl auth can-i create RESOURCE)',
  });
  const selectsOurs = new Set<string>([LABELS.injection, LABELS.revision, LABELS.inject]);
  const conflicts = snapshot.webhookConfigurations
    .filter((configuration) => configuration.name !== ownName)
    .flatMap((configuration) =>
      configuration.webhooks
        .filter(
          (webhook) =>
            webhook.name.endsWith('sidecar-injector.istio.io') ||
            webhook.selectorKeys.some((key) => selectsOurs.has(key)),
        )
        .map((webhook) => `MutatingWebhookConfiguration ${configuration.name}: webhook ${webhook.name}`),
    );
  checks.push({
    id: 'pre-no-other-injector',
    description: 'no other sidecar injector selects the same labels',
    status: conflicts.length === 0 ? 'ok' : 'warn',
    details: conflicts.length === 0 ? ['none found'] : conflicts,
    hint:
      "two injectors on the same labels both inject (Istio's istiod selects istio-injection and istio.io/rev too): " +
      'keep one per namespace; see README, "Beside Istio\'s injector"',
  });
  return {
    ok: checks.every((check) => check.status !== 'fail'),
    checks,
    injectionNamespaces: [],
    podsNeedingRestart: [],
  };
}

export async function gatherPreSnapshot(kubeConfig: KubeConfig, namespace: string): Promise<PreSnapshot> {
  const serverVersion = await fetchServerVersion(kubeConfig);
  const authorization = kubeConfig.makeApiClient(AuthorizationV1Api);
  const forbidden: string[] = [];
  for (const { group, resource, namespaced } of INSTALLED_RESOURCES) {
    const review = await authorization.createSelfSubjectAccessReview({
      body: {
        spec: {
          resourceAttributes: { group, resource, verb: 'create', ...(namespaced ? { namespace } : {}) },
        },
      },
    });
    if (!review.status?.allowed) forbidden.push(group ? `${group}/${resource}` : resource);
  }
  const configurations: V1MutatingWebhookConfiguration[] = (
    await kubeConfig.makeApiClient(AdmissionregistrationV1Api).listMutatingWebhookConfiguration()
  ).items;
  return {
    serverVersion,
    forbidden,
    webhookConfigurations: configurations.map((configuration) => ({
      name: configuration.metadata?.name ?? '',
      webhooks: (configuration.webhooks ?? []).map((webhook) => ({
        name: webhook.name,
        selectorKeys: [webhook.namespaceSelector, webhook.objectSelector].flatMap((selector) => [
          ...Object.keys(selector?.matchLabels ?? {}),
          ...(selector?.matchExpressions ?? []).map((expression) => expression.key),
        ]),
      })),
    })),
  };
}
