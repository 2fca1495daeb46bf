/**
 * A user's overlay on a real kube-apiserver (server-side apply, dry run): images mirrored, replicas raised, a label
 * of their own. The apiserver is configured as clusters that keep the critical priority classes for system
 * namespaces are (GKE's ResourceQuota admission `limitedResources`), so the webhook's system-cluster-critical pods
 * are admitted only because the manifests bring a ResourceQuota for that class.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { V1Deployment } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { controlPlaneRequirements, startControlPlane, type ControlPlane } from './harness/control-plane.js';
import { applyObjects, findObject, renderKustomization, type ManifestObject } from './harness/manifests.js';
import { repoPath } from './harness/repo.js';
import { missingRequirements } from './harness/requirements.js';

const NAMESPACE = 'mesh-injector';
const QUOTA = 'mesh-injector-critical-pods';

/** The Kubernetes docs' "limit Priority Class consumption by default", as GKE configures it. */
const ADMISSION_CONFIGURATION = {
  apiVersion: 'apiserver.config.k8s.io/v1',
  kind: 'AdmissionConfiguration',
  plugins: [
    {
      name: 'ResourceQuota',
      configuration: {
        apiVersion: 'apiserver.config.k8s.io/v1',
        kind: 'ResourceQuotaConfiguration',
        limitedResources: [
          {
            resource: 'pods',
            matchScopes: [
              {
                scopeName: 'PriorityClass',
                operator: 'In',
                values: ['system-node-critical', 'system-cluster-critical'],
              },
            ],
          },
        ],
      },
    },
  ],
};

const USER_OVERLAY = {
  images: [
    { name: 'ghcr.io/mesh-injector/webhook', newName: 'registry.example.com/mesh/webhook' },
    { name: 'ghcr.io/mesh-injector/mesh-iptables', newName: 'registry.example.com/mesh/mesh-iptables' },
    { name: 'docker.io/envoyproxy/envoy', newName: 'registry.example.com/mirror/envoy' },
  ],
  labels: [{ pairs: { 'example.com/team': 'platform' } }],
  patches: [
    {
      target: { kind: 'Deployment', name: 'mesh-injector' },
      patch: stringify([{ op: 'replace', path: '/spec/replicas', value: 3 }]),
    },
  ],
};

const missing = missingRequirements(controlPlaneRequirements(), "a user's overlay on kube-apiserver");

describe.skipIf(missing.length > 0)("a user's overlay on a real kube-apiserver (server-side dry run)", () => {
  let dir: string;
  let controlPlane: ControlPlane;
  let objects: ManifestObject[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mesh-injector-user-overlay-'));
    const admissionConfig = join(dir, 'admission.yaml');
    await writeFile(admissionConfig, stringify(ADMISSION_CONFIGURATION));
    const overlay = join(dir, 'overlay');
    await mkdir(overlay);
    await writeFile(
      join(overlay, 'kustomization.yaml'),
      stringify({ resources: [relative(overlay, repoPath('manifests'))], ...USER_OVERLAY }),
    );
    objects = renderKustomization(overlay);
    controlPlane = await startControlPlane({
      kubeApiserverFlags: { 'admission-control-config-file': admissionConfig },
    });
    // A dry run stores nothing, so the namespace and the quota are created for real, and the quota gets the status
    // the quota controller (not running here) would give it; without a status, quota admission refuses every pod.
    await applyObjects(controlPlane, [
      findObject(objects, 'Namespace', NAMESPACE),
      findObject(objects, 'ResourceQuota', QUOTA),
    ]);
    const hard = (findObject(objects, 'ResourceQuota', QUOTA).spec as { hard: Record<string, string> }).hard;
    const status = await controlPlane.kubectl([
      'patch',
      'resourcequota',
      QUOTA,
      `--namespace=${NAMESPACE}`,
      '--subresource=status',
      '--type=merge',
      `--patch=${JSON.stringify({ status: { hard, used: { pods: '0' } } })}`,
    ]);
    expect(status.exitCode, status.stderr).toBe(0);
  });

  afterAll(async () => {
    await controlPlane?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts every object of the overlay through server-side apply', async () => {
    const output = await applyObjects(controlPlane, objects, ['--server-side', '--dry-run=server']);
    const applied = output.trim().split('\n');
    expect(applied).toHaveLength(objects.length);
    for (const line of applied) expect(line).toMatch(/serverside-applied \(server dry run\)$/);
  });

  it("admits the webhook's system-cluster-critical pods in its namespace, and only because of the quota", async () => {
    const deployment = findObject(objects, 'Deployment', 'mesh-injector') as unknown as V1Deployment;
    const pod = (namespace: string) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { ...deployment.spec!.template.metadata, name: 'mesh-injector-dry-run', namespace },
        spec: deployment.spec!.template.spec,
      });
    const admitted = await controlPlane.kubectl(['create', '--dry-run=server', '-f', '-'], {
      input: pod(NAMESPACE),
    });
    expect(admitted.exitCode, admitted.stderr).toBe(0);
    expect(admitted.stdout).toContain('pod/mesh-injector-dry-run created (server dry run)');

    // The same pod in a namespace without the quota: the apiserver's configuration is what the test claims.
    await controlPlane.kubectl(['create', 'namespace', 'no-quota']);
    const refused = await controlPlane.kubectl(['create', '--dry-run=server', '-f', '-'], {
      input: pod('no-quota'),
    });
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toMatch(/insufficient quota to match these scopes/);
  });
});
