import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KUBE_APISERVER_VERSION } from './harness/binaries.js';
import type { ControlPlane } from './harness/control-plane.js';
import { controlPlaneRequirements, startControlPlane } from './harness/control-plane.js';
import { missingRequirements } from './harness/requirements.js';

const missing = missingRequirements(controlPlaneRequirements(), 'control plane');

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function controlPlaneDirs(): string[] {
  return readdirSync(tmpdir()).filter((name) => name.startsWith('mesh-injector-control-plane-'));
}

describe.skipIf(missing.length > 0)('control plane', () => {
  let controlPlane: ControlPlane;

  beforeAll(async () => {
    controlPlane = await startControlPlane({
      kubeApiserverFlags: { 'service-cluster-ip-range': '10.96.0.0/28' },
    });
  });

  afterAll(async () => {
    await controlPlane?.stop();
  });

  it(`serves kube-apiserver ${KUBE_APISERVER_VERSION}`, async () => {
    const result = await controlPlane.kubectl(['get', '--raw', '/version']);

    expect(result.exitCode, result.stderr).toBe(0);
    expect((JSON.parse(result.stdout) as { gitVersion: string }).gitVersion).toBe(KUBE_APISERVER_VERSION);
    expect(controlPlane.version).toBe(KUBE_APISERVER_VERSION);
  });

  it('authorizes with RBAC: the kubeconfig user is a cluster admin, a bare service account is not', async () => {
    const admin = await controlPlane.kubectl(['auth', 'can-i', '*', '*']);
    const serviceAccount = await controlPlane.kubectl([
      'auth',
      'can-i',
      'create',
      'pods',
      '--as=system:serviceaccount:default:nobody',
    ]);

    expect(admin.stdout).toBe('yes');
    expect(serviceAccount.stdout).toBe('no');
  });

  it('stores a namespace and a pod created through client-node and reads the pod back', async () => {
    const core = controlPlane.kubeConfig.makeApiClient(CoreV1Api);
    const namespace = 'control-plane-test';

    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'app', labels: { app: 'app' } },
        spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
      },
    });
    const pod = await core.readNamespacedPod({ name: 'app', namespace });

    expect(pod.metadata?.uid).toBeTruthy();
    expect(pod.metadata?.labels).toEqual({ app: 'app' });
    expect(pod.spec?.containers.map((container) => container.image)).toEqual(['registry.invalid/app:1']);
  });

  it('passes extra flags to kube-apiserver', async () => {
    const core = controlPlane.kubeConfig.makeApiClient(CoreV1Api);

    const service = await core.createNamespacedService({
      namespace: 'default',
      body: { metadata: { name: 'web' }, spec: { ports: [{ port: 80 }] } },
    });

    expect(service.spec?.clusterIP).toMatch(/^10\.96\.0\.([0-9]|1[0-5])$/);
  });

  it('stop() ends both processes and removes the directory, and may be called again', async () => {
    const { pids, dir } = controlPlane;
    expect(isAlive(pids.etcd) && isAlive(pids.kubeApiserver)).toBe(true);

    await controlPlane.stop();
    await controlPlane.stop();

    expect(isAlive(pids.etcd)).toBe(false);
    expect(isAlive(pids.kubeApiserver)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });
});

describe.skipIf(missing.length > 0)('control plane that cannot start', () => {
  it("reports kube-apiserver's last lines and leaves nothing behind", async () => {
    const dirsBefore = controlPlaneDirs();

    const start = startControlPlane({ kubeApiserverFlags: { 'no-such-flag': 'x' } });

    await expect(start).rejects.toThrow(
      /kube-apiserver ended \(exit code 1\)[^]*unknown flag: --no-such-flag/,
    );
    expect(controlPlaneDirs()).toEqual(dirsBefore);
  });
});
