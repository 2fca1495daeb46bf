/**
 * Least privilege, against a real kube-apiserver: manifests/ as `kubectl kustomize` renders it is applied, and the
 * apiserver's own authorizer is asked what the webhook's ServiceAccount may do. It may do exactly what
 * webhook/cluster.ts calls (test/certificates.test.ts shows that this is enough), and nothing else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlaneRequirements, startControlPlane, type ControlPlane } from './harness/control-plane.js';
import { applyObjects, renderKustomization } from './harness/manifests.js';
import { missingRequirements } from './harness/requirements.js';

const NAMESPACE = 'mesh-injector';
const SERVICE_ACCOUNT = `system:serviceaccount:${NAMESPACE}:mesh-injector`;
const SECRET = 'mesh-injector-tls';
const CONFIGURATION = 'mesh-injector';

const missing = missingRequirements(controlPlaneRequirements(), 'RBAC of the webhook');

/** [verb, resource (optionally /name), namespace or '' for cluster scope]. */
type Question = [string, string, string];

/**
 * What webhook/cluster.ts does: read, create and replace its Secret; read and replace its webhook configuration;
 * list and watch nodes for their kubelet versions (the native-sidecar rule).
 */
const ALLOWED: Question[] = [
  ['get', `secrets/${SECRET}`, NAMESPACE],
  ['update', `secrets/${SECRET}`, NAMESPACE],
  ['create', 'secrets', NAMESPACE],
  ['get', `mutatingwebhookconfigurations.admissionregistration.k8s.io/${CONFIGURATION}`, ''],
  ['update', `mutatingwebhookconfigurations.admissionregistration.k8s.io/${CONFIGURATION}`, ''],
  ['list', 'nodes', ''],
  ['watch', 'nodes', ''],
];

const DENIED: Question[] = [
  // Its own Secret, beyond what it uses.
  ['patch', `secrets/${SECRET}`, NAMESPACE],
  ['delete', `secrets/${SECRET}`, NAMESPACE],
  // Other Secrets, and Secrets in bulk.
  ['get', 'secrets/other', NAMESPACE],
  ['update', 'secrets/other', NAMESPACE],
  ['delete', 'secrets/other', NAMESPACE],
  ['list', 'secrets', NAMESPACE],
  ['watch', 'secrets', NAMESPACE],
  ['deletecollection', 'secrets', NAMESPACE],
  ['get', `secrets/${SECRET}`, 'default'],
  ['create', 'secrets', 'default'],
  ['list', 'secrets', ''],
  // Other webhook configurations, and its own beyond what it uses.
  ['patch', `mutatingwebhookconfigurations.admissionregistration.k8s.io/${CONFIGURATION}`, ''],
  ['delete', `mutatingwebhookconfigurations.admissionregistration.k8s.io/${CONFIGURATION}`, ''],
  ['get', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/other', ''],
  ['update', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/other', ''],
  ['list', 'mutatingwebhookconfigurations.admissionregistration.k8s.io', ''],
  ['watch', 'mutatingwebhookconfigurations.admissionregistration.k8s.io', ''],
  ['create', 'mutatingwebhookconfigurations.admissionregistration.k8s.io', ''],
  ['get', 'validatingwebhookconfigurations.admissionregistration.k8s.io/mesh-injector', ''],
  ['update', 'validatingwebhookconfigurations.admissionregistration.k8s.io/mesh-injector', ''],
  // Workloads, its own namespace, its configuration and identity.
  ['get', 'pods', NAMESPACE],
  ['list', 'pods', ''],
  ['create', 'pods', 'default'],
  ['create', 'pods/exec', NAMESPACE],
  ['update', 'deployments.apps/mesh-injector', NAMESPACE],
  ['update', 'configmaps/mesh-injector-config', NAMESPACE],
  ['get', 'configmaps/mesh-injector-config', NAMESPACE],
  ['create', 'serviceaccounts/token', NAMESPACE],
  ['get', `namespaces/${NAMESPACE}`, ''],
  ['update', `namespaces/${NAMESPACE}`, ''],
  ['patch', `namespaces/${NAMESPACE}`, ''],
  ['delete', `namespaces/${NAMESPACE}`, ''],
  ['create', 'namespaces', ''],
  // Its own permissions.
  ['update', 'roles.rbac.authorization.k8s.io/mesh-injector', NAMESPACE],
  ['create', 'rolebindings.rbac.authorization.k8s.io', NAMESPACE],
  ['escalate', 'clusterroles.rbac.authorization.k8s.io/mesh-injector', ''],
  ['bind', 'clusterroles.rbac.authorization.k8s.io/cluster-admin', ''],
  ['impersonate', 'users', ''],
  // Nodes beyond reading their versions.
  ['update', 'nodes/node-a', ''],
  ['patch', 'nodes/node-a', ''],
  ['delete', 'nodes/node-a', ''],
  ['update', 'nodes/status', ''],
  ['get', 'nodes/proxy', ''],
  ['create', 'nodes/proxy', ''],
];

/** The rules every authenticated user has (system:basic-user), which say nothing about the webhook's RBAC. */
const EVERYONE = new Set([
  'create selfsubjectaccessreviews.authorization.k8s.io',
  'create selfsubjectrulesreviews.authorization.k8s.io',
]);

describe.skipIf(missing.length > 0)("the webhook's ServiceAccount on a real kube-apiserver", () => {
  let controlPlane: ControlPlane;
  let applied: string;

  beforeAll(async () => {
    controlPlane = await startControlPlane();
    applied = await applyObjects(controlPlane, renderKustomization());
  });

  afterAll(async () => {
    await controlPlane?.stop();
  });

  async function canI([verb, resource, namespace]: Question): Promise<boolean> {
    const scope = namespace ? ['--namespace', namespace] : [];
    const result = await controlPlane.kubectl([
      'auth',
      'can-i',
      verb,
      resource,
      ...scope,
      `--as=${SERVICE_ACCOUNT}`,
    ]);
    if (result.stdout.trim() === 'yes') return true;
    if (result.stdout.trim() === 'no') return false;
    throw new Error(`kubectl auth can-i ${verb} ${resource}: ${result.stdout} ${result.stderr}`);
  }

  /** Each rule as "verb resource[/name]", from a SelfSubjectRulesReview made as the ServiceAccount. */
  async function rules(namespace: string): Promise<string[]> {
    const review = {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectRulesReview',
      spec: { namespace },
    };
    const result = await controlPlane.kubectl(
      ['create', '-f', '-', '-o', 'json', `--as=${SERVICE_ACCOUNT}`],
      {
        input: JSON.stringify(review),
      },
    );
    if (result.exitCode !== 0) throw new Error(`SelfSubjectRulesReview failed: ${result.stderr}`);
    const status = (
      JSON.parse(result.stdout) as {
        status: {
          resourceRules: {
            verbs: string[];
            apiGroups?: string[];
            resources?: string[];
            resourceNames?: string[];
          }[];
        };
      }
    ).status;
    return status.resourceRules
      .flatMap((rule) =>
        rule.verbs.flatMap((verb) =>
          (rule.resources ?? []).flatMap((resource) =>
            (rule.apiGroups ?? ['']).flatMap((group) => {
              const qualified = group ? `${resource}.${group}` : resource;
              const names = rule.resourceNames?.length ? rule.resourceNames : [undefined];
              return names.map((name) => `${verb} ${qualified}${name ? `/${name}` : ''}`);
            }),
          ),
        ),
      )
      .filter((rule) => !EVERYONE.has(rule))
      .sort();
  }

  it('the apiserver accepts every object manifests/ renders', () => {
    const created = applied.split('\n');
    for (const object of renderKustomization()) {
      const group = object.apiVersion.includes('/') ? `.${object.apiVersion.split('/')[0]}` : '';
      expect(created).toContain(`${object.kind.toLowerCase()}${group}/${object.metadata.name} created`);
    }
    expect(created).toHaveLength(renderKustomization().length);
  });

  it.each(ALLOWED)('may %s %s (namespace "%s")', async (...question) => {
    expect(await canI(question)).toBe(true);
  });

  it.each(DENIED)('may not %s %s (namespace "%s")', async (...question) => {
    expect(await canI(question)).toBe(false);
  });

  it('holds exactly these rules in its namespace, and only the cluster-wide rules elsewhere', async () => {
    const webhookRules = [
      `get mutatingwebhookconfigurations.admissionregistration.k8s.io/${CONFIGURATION}`,
      `update mutatingwebhookconfigurations.admissionregistration.k8s.io/${CONFIGURATION}`,
      'list nodes',
      'watch nodes',
    ];
    expect(await rules(NAMESPACE)).toEqual(
      [...webhookRules, 'create secrets', `get secrets/${SECRET}`, `update secrets/${SECRET}`].sort(),
    );
    expect(await rules('default')).toEqual(webhookRules.sort());
  });
});
