/**
 * What `kubectl apply -k manifests` installs, read from `kubectl kustomize` output: every object the injector needs,
 * in its own namespace, with names that agree with each other (the Service the webhooks call, the Secret and
 * configuration the RBAC names, the flags the Deployment passes). Then the cert-manager variant, and, on a real
 * kube-apiserver, a server-side dry run of both.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { V1Deployment, V1PodTemplateSpec } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { INJECT_PATH, WEBHOOK_CONFIGURATION_NAME } from '../common/constants.js';
import { matchesSelector, type LabelSelector } from '../webhook/label-selector.js';
import { findKubectl } from './harness/binaries.js';
import { controlPlaneRequirements, startControlPlane, type ControlPlane } from './harness/control-plane.js';
import { applyObjects, findObject, renderKustomization, type ManifestObject } from './harness/manifests.js';
import { restrictedViolations } from './harness/pod-security.js';
import { repoPath } from './harness/repo.js';
import { missingRequirements } from './harness/requirements.js';

const NAMESPACE = 'mesh-injector';
const CERT_MANAGER_COMPONENT = repoPath('manifests', 'overlays', 'cert-manager');

interface Webhook {
  name: string;
  clientConfig: { service?: { name: string; namespace: string; path?: string; port?: number } };
  namespaceSelector?: LabelSelector;
  objectSelector?: LabelSelector;
  sideEffects?: string;
  admissionReviewVersions?: string[];
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
}

const rendered = (objects: ManifestObject[]) => ({
  get: <T>(kind: string, name: string) => findObject(objects, kind, name) as unknown as T,
  kinds: () => objects.map((object) => `${object.kind}/${object.metadata.name}`).sort(),
});

/** The cert-manager Component used as its comment says: from a kustomization of one's own, outside manifests/. */
async function renderWithCertManager(): Promise<ManifestObject[]> {
  const dir = await mkdtemp(join(tmpdir(), 'mesh-injector-kustomize-'));
  try {
    const kustomization = {
      resources: [relative(dir, repoPath('manifests'))],
      components: [relative(dir, CERT_MANAGER_COMPONENT)],
    };
    await writeFile(join(dir, 'kustomization.yaml'), stringify(kustomization));
    return renderKustomization(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function podTemplate(objects: ManifestObject[]): V1PodTemplateSpec {
  return (findObject(objects, 'Deployment', 'mesh-injector') as unknown as V1Deployment).spec!.template;
}

function webhookContainer(objects: ManifestObject[]) {
  const container = podTemplate(objects).spec!.containers.find((c) => c.name === 'webhook');
  if (!container) throw new Error('the Deployment has no container named webhook');
  return container;
}

const missingKubectl = missingRequirements({ kubectl: findKubectl() !== undefined }, 'kustomize manifests');

describe.skipIf(missingKubectl.length > 0)('kubectl apply -k manifests', () => {
  const objects = renderKustomization();
  const { get, kinds } = rendered(objects);
  const deployment = get<V1Deployment>('Deployment', 'mesh-injector');
  const template = podTemplate(objects);
  const container = webhookContainer(objects);
  const args = container.args ?? [];
  const flag = (name: string) => args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);

  it('installs everything the injector needs, and nothing else', () => {
    expect(kinds()).toEqual(
      [
        'ClusterRole/mesh-injector',
        'ClusterRole/mesh-injector-nodes',
        'ClusterRoleBinding/mesh-injector',
        'ClusterRoleBinding/mesh-injector-nodes',
        'ConfigMap/mesh-injector-config',
        'Deployment/mesh-injector',
        `MutatingWebhookConfiguration/${WEBHOOK_CONFIGURATION_NAME}`,
        'Namespace/mesh-injector',
        'PodDisruptionBudget/mesh-injector',
        'ResourceQuota/mesh-injector-critical-pods',
        'Role/mesh-injector',
        'RoleBinding/mesh-injector',
        'Service/mesh-injector',
        'ServiceAccount/mesh-injector',
      ].sort(),
    );
  });

  it('puts every namespaced object in its own namespace, which enforces the restricted Pod Security Standard', () => {
    const clusterScoped = new Set([
      'Namespace',
      'ClusterRole',
      'ClusterRoleBinding',
      'MutatingWebhookConfiguration',
    ]);
    for (const object of objects.filter((o) => !clusterScoped.has(o.kind))) {
      expect(object.metadata.namespace, `${object.kind}/${object.metadata.name}`).toBe(NAMESPACE);
    }
    const namespace = get<ManifestObject>('Namespace', NAMESPACE);
    expect(namespace.metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
      'istio-injection': 'disabled',
    });
  });

  it('ships the config directory, file for file, as the ConfigMap the Deployment mounts at --config', () => {
    const configMap = get<{ data: Record<string, string> }>('ConfigMap', 'mesh-injector-config');
    for (const file of ['template.yaml', 'values.yaml', 'envoy.yaml']) {
      expect(configMap.data[file]).toBe(readFileSync(repoPath('manifests', 'config', file), 'utf8'));
    }
    const volume = template.spec!.volumes!.find((v) => v.configMap?.name === 'mesh-injector-config');
    const mount = container.volumeMounts!.find((m) => m.name === volume?.name);
    expect(mount?.mountPath).toBe(flag('config'));
    expect(mount?.readOnly).toBe(true);
  });

  it('runs two replicas, spread over nodes, never both down by a voluntary disruption', () => {
    expect(deployment.spec?.replicas).toBe(2);
    expect(deployment.spec?.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
    const labels = template.metadata!.labels!;
    const antiAffinity =
      template.spec!.affinity!.podAntiAffinity!.preferredDuringSchedulingIgnoredDuringExecution!;
    expect(antiAffinity[0]!.podAffinityTerm.topologyKey).toBe('kubernetes.io/hostname');
    expect(matchesSelector(antiAffinity[0]!.podAffinityTerm.labelSelector as LabelSelector, labels)).toBe(
      true,
    );
    const pdb = get<{ spec: { minAvailable: number; selector: LabelSelector } }>(
      'PodDisruptionBudget',
      'mesh-injector',
    );
    expect(pdb.spec.minAvailable).toBe(1);
    expect(matchesSelector(pdb.spec.selector, labels)).toBe(true);
    expect(matchesSelector(deployment.spec!.selector as LabelSelector, labels)).toBe(true);
  });

  it('gives the webhook resources and HTTPS probes on /readyz and /healthz', () => {
    expect(container.resources?.requests).toMatchObject({
      cpu: expect.any(String),
      memory: expect.any(String),
    });
    expect(container.resources?.limits?.memory).toEqual(expect.any(String));
    expect(container.readinessProbe?.httpGet).toMatchObject({
      path: '/readyz',
      port: 'https',
      scheme: 'HTTPS',
    });
    expect(container.livenessProbe?.httpGet).toMatchObject({
      path: '/healthz',
      port: 'https',
      scheme: 'HTTPS',
    });
  });

  it('exposes the webhook port as the Service port 443 that every webhook calls at /inject', () => {
    const service = get<{
      spec: { selector: Record<string, string>; ports: { port: number; targetPort: string }[] };
    }>('Service', 'mesh-injector');
    expect(matchesSelector({ matchLabels: service.spec.selector }, template.metadata!.labels!)).toBe(true);
    expect(service.spec.ports).toContainEqual(expect.objectContaining({ port: 443, targetPort: 'https' }));
    const port = container.ports!.find((p) => p.name === 'https');
    expect(String(port?.containerPort)).toBe(flag('port'));
    const configuration = get<{ webhooks: Webhook[] }>(
      'MutatingWebhookConfiguration',
      WEBHOOK_CONFIGURATION_NAME,
    );
    expect(configuration.webhooks).toHaveLength(4);
    for (const webhook of configuration.webhooks) {
      expect(webhook.clientConfig.service).toEqual({
        name: 'mesh-injector',
        namespace: NAMESPACE,
        path: INJECT_PATH,
        port: 443,
      });
      expect(webhook.sideEffects).toBe('None');
      expect(webhook.admissionReviewVersions).toContain('v1');
    }
  });

  it('never selects its own namespace or kube-system, whatever their labels', () => {
    const configuration = get<{ webhooks: Webhook[] }>(
      'MutatingWebhookConfiguration',
      WEBHOOK_CONFIGURATION_NAME,
    );
    const ownLabels = {
      ...get<ManifestObject>('Namespace', NAMESPACE).metadata.labels,
      'kubernetes.io/metadata.name': NAMESPACE,
    };
    const optIns: Record<string, string>[] = [
      { 'istio-injection': 'enabled' },
      { 'istio.io/rev': 'default' },
      {},
    ];
    for (const webhook of configuration.webhooks) {
      expect(matchesSelector(webhook.namespaceSelector!, ownLabels), webhook.name).toBe(false);
      for (const name of [NAMESPACE, 'kube-system']) {
        for (const optIn of optIns) {
          const labels = { ...optIn, 'kubernetes.io/metadata.name': name };
          expect(matchesSelector(webhook.namespaceSelector!, labels), `${webhook.name} in ${name}`).toBe(
            false,
          );
        }
      }
    }
  });

  it('runs as its ServiceAccount, whose RBAC names the Secret, Service and configuration the flags name', () => {
    expect(args).toContain('--manage-certificates');
    expect(template.spec!.serviceAccountName).toBe('mesh-injector');
    const podNamespace = container.env!.find((e) => e.name === 'POD_NAMESPACE');
    expect(podNamespace?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
    expect(flag('namespace')).toBe('$(POD_NAMESPACE)');
    expect(flag('service')).toBe('mesh-injector');
    expect(flag('webhook-configuration')).toBe(WEBHOOK_CONFIGURATION_NAME);

    const role = get<{ rules: Rule[] }>('Role', 'mesh-injector');
    expect(role.rules).toEqual([
      {
        apiGroups: [''],
        resources: ['secrets'],
        resourceNames: [flag('certificate-secret')],
        verbs: ['get', 'update'],
      },
      { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
    ]);
    const clusterRole = get<{ rules: Rule[] }>('ClusterRole', 'mesh-injector');
    expect(clusterRole.rules).toEqual([
      {
        apiGroups: ['admissionregistration.k8s.io'],
        resources: ['mutatingwebhookconfigurations'],
        resourceNames: [WEBHOOK_CONFIGURATION_NAME],
        verbs: ['get', 'update'],
      },
    ]);
    const nodesRole = get<{ rules: Rule[] }>('ClusterRole', 'mesh-injector-nodes');
    expect(nodesRole.rules).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch'] }]);
    for (const [kind, name] of [
      ['RoleBinding', 'mesh-injector'],
      ['ClusterRoleBinding', 'mesh-injector'],
      ['ClusterRoleBinding', 'mesh-injector-nodes'],
    ] as const) {
      const binding = get<{ subjects: unknown[] }>(kind, name);
      expect(binding.subjects).toEqual([
        { kind: 'ServiceAccount', name: 'mesh-injector', namespace: NAMESPACE },
      ]);
    }
  });

  it("labels every object and the pods with Kubernetes' recommended labels, and selects by name only", () => {
    const version = (JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { version: string })
      .version;
    const recommended = {
      'app.kubernetes.io/name': 'mesh-injector',
      'app.kubernetes.io/instance': 'mesh-injector',
      'app.kubernetes.io/version': version,
      'app.kubernetes.io/component': 'webhook',
      'app.kubernetes.io/part-of': 'mesh-injector',
      'app.kubernetes.io/managed-by': 'kustomize',
    };
    for (const object of [...objects, template]) {
      expect(object.metadata!.labels, `${'kind' in object ? object.kind : 'pod template'}`).toMatchObject(
        recommended,
      );
    }
    // A Deployment's selector is immutable: a version in it would make every upgrade fail.
    expect(deployment.spec!.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'mesh-injector' });
    const pdb = get<{ spec: { selector: { matchLabels: Record<string, string> } } }>(
      'PodDisruptionBudget',
      'mesh-injector',
    );
    expect(pdb.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'mesh-injector' });
  });

  it('runs at system-cluster-critical, with a quota for that class in its namespace', () => {
    expect(template.spec!.priorityClassName).toBe('system-cluster-critical');
    const quota = get<{
      metadata: { namespace: string };
      spec: {
        hard: Record<string, string>;
        scopeSelector: { matchExpressions: { scopeName: string; operator: string; values: string[] }[] };
      };
    }>('ResourceQuota', 'mesh-injector-critical-pods');
    expect(quota.metadata.namespace).toBe(NAMESPACE);
    expect(quota.spec.scopeSelector.matchExpressions).toEqual([
      { scopeName: 'PriorityClass', operator: 'In', values: ['system-cluster-critical'] },
    ]);
    // Room for every replica and a rolling update's surge.
    const surge = Number(deployment.spec!.strategy!.rollingUpdate!.maxSurge);
    expect(Number(quota.spec.hard.pods)).toBeGreaterThanOrEqual(deployment.spec!.replicas! + surge);
  });

  it('serves /metrics on a plain-HTTP monitoring port that Prometheus finds from the pod annotations', () => {
    const monitoring = container.ports!.find((p) => p.name === 'http-monitoring');
    expect(monitoring?.containerPort).toBe(15014);
    expect(flag('monitoring-port')).toBe(String(monitoring?.containerPort));
    expect(template.metadata!.annotations).toEqual({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': String(monitoring?.containerPort),
      'prometheus.io/path': '/metrics',
    });
    // The probes and the apiserver stay on the HTTPS port.
    expect(container.readinessProbe?.httpGet?.port).toBe('https');
    const service = get<{ spec: { ports: { name: string; port: number; targetPort: string }[] } }>(
      'Service',
      'mesh-injector',
    );
    expect(service.spec.ports).toContainEqual(
      expect.objectContaining({ name: 'http-monitoring', port: 15014, targetPort: 'http-monitoring' }),
    );
  });

  it('writes the serving pair the certificate manager keeps into a memory-backed volume at --tls-cert', () => {
    const mount = container.volumeMounts!.find((m) => flag('tls-cert')!.startsWith(`${m.mountPath}/`));
    const volume = template.spec!.volumes!.find((v) => v.name === mount?.name);
    expect(volume?.emptyDir?.medium).toBe('Memory');
    expect(flag('tls-key')!.startsWith(`${mount!.mountPath}/`)).toBe(true);
  });
});

describe.skipIf(missingKubectl.length > 0)(
  'the cert-manager variant (manifests/overlays/cert-manager)',
  () => {
    let objects: ManifestObject[];
    beforeAll(async () => {
      objects = await renderWithCertManager();
    });

    it('adds an Issuer and a Certificate for the Service name, and drops the RBAC the webhook no longer needs', () => {
      const { kinds, get } = rendered(objects);
      expect(kinds()).toEqual(
        [
          'Certificate/mesh-injector-tls',
          // Reading the nodes' kubelet versions (nativeSidecars: auto) is still needed.
          'ClusterRole/mesh-injector-nodes',
          'ClusterRoleBinding/mesh-injector-nodes',
          'ConfigMap/mesh-injector-config',
          'Deployment/mesh-injector',
          'Issuer/mesh-injector-selfsigned',
          `MutatingWebhookConfiguration/${WEBHOOK_CONFIGURATION_NAME}`,
          'Namespace/mesh-injector',
          'PodDisruptionBudget/mesh-injector',
          'ResourceQuota/mesh-injector-critical-pods',
          'Service/mesh-injector',
          'ServiceAccount/mesh-injector',
        ].sort(),
      );
      const certificate = get<{
        metadata: { namespace: string };
        spec: { dnsNames: string[]; issuerRef: { kind: string; name: string }; secretName: string };
      }>('Certificate', 'mesh-injector-tls');
      expect(certificate.metadata.namespace).toBe(NAMESPACE);
      expect(certificate.spec.dnsNames).toContain(`mesh-injector.${NAMESPACE}.svc`);
      expect(
        findObject(objects, certificate.spec.issuerRef.kind, certificate.spec.issuerRef.name),
      ).toBeDefined();
    });

    it("has cert-manager inject the Certificate's CA into the webhook configuration", () => {
      const configuration = findObject(objects, 'MutatingWebhookConfiguration', WEBHOOK_CONFIGURATION_NAME);
      expect(configuration.metadata.annotations?.['cert-manager.io/inject-ca-from']).toBe(
        `${NAMESPACE}/mesh-injector-tls`,
      );
    });

    it("serves the Certificate's Secret, read-only, and no longer manages certificates", () => {
      const container = webhookContainer(objects);
      const args = container.args ?? [];
      for (const managed of [
        '--manage-certificates',
        '--namespace',
        '--service',
        '--certificate-secret',
        '--webhook',
      ]) {
        expect(args.filter((arg) => arg.startsWith(managed))).toEqual([]);
      }
      const certPath = args.find((arg) => arg.startsWith('--tls-cert='))!.slice('--tls-cert='.length);
      const mount = container.volumeMounts!.find((m) => certPath.startsWith(`${m.mountPath}/`));
      expect(mount?.readOnly).toBe(true);
      const volume = podTemplate(objects).spec!.volumes!.find((v) => v.name === mount?.name);
      expect(volume).toEqual({
        name: mount?.name,
        secret: expect.objectContaining({ secretName: 'mesh-injector-tls' }),
      });
      expect(args).toContain('serve');
    });

    it('still passes the restricted Pod Security Standard', () => {
      expect(restrictedViolations(podTemplate(objects).spec!)).toEqual([]);
    });
  },
);

const missingControlPlane = missingRequirements(controlPlaneRequirements(), 'manifests on kube-apiserver');

describe.skipIf(missingControlPlane.length > 0)(
  'the manifests on a real kube-apiserver (server-side dry run)',
  () => {
    let controlPlane: ControlPlane;

    beforeAll(async () => {
      controlPlane = await startControlPlane();
      // A dry-run namespace is not stored, so the namespaced objects' dry run needs the namespace for real.
      await applyObjects(controlPlane, [findObject(renderKustomization(), 'Namespace', NAMESPACE)]);
    });

    afterAll(async () => {
      await controlPlane?.stop();
    });

    it('accepts every object manifests/ renders', async () => {
      const objects = renderKustomization();
      const output = await applyObjects(controlPlane, objects, ['--dry-run=server']);
      expect(output.trim().split('\n')).toHaveLength(objects.length);
    });

    it("accepts the cert-manager variant's Kubernetes objects (its Issuer and Certificate need cert-manager's CRDs)", async () => {
      const objects = (await renderWithCertManager()).filter(
        (o) => !o.apiVersion.startsWith('cert-manager.io/'),
      );
      const output = await applyObjects(controlPlane, objects, ['--dry-run=server']);
      expect(output).toContain('deployment.apps/mesh-injector');
      expect(output.trim().split('\n')).toHaveLength(objects.length);
    });
  },
);
