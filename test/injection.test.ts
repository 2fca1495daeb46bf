/**
 * The webhook against a real kube-apiserver: the MutatingWebhookConfiguration from manifests/ (pointed at the
 * webhook process by url, as envtest does) decides which pods reach it, and the apiserver applies its patches.
 */
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, controlPlaneRequirements, type ControlPlane } from './harness/control-plane.js';
import { missingRequirements } from './harness/requirements.js';
import { startWebhookProcess, type WebhookProcess } from './harness/webhook-process.js';
import { localWebhookConfiguration, toYamlDocument } from './harness/webhook-configuration.js';

const missing = missingRequirements(controlPlaneRequirements(), 'injection against kube-apiserver');

describe.skipIf(missing.length > 0)('injection through a real kube-apiserver', () => {
  let controlPlane: ControlPlane;
  let webhook: WebhookProcess;
  let core: CoreV1Api;

  beforeAll(async () => {
    controlPlane = await startControlPlane();
    webhook = await startWebhookProcess({ kubeconfigPath: controlPlane.kubeconfigPath });
    core = controlPlane.kubeConfig.makeApiClient(CoreV1Api);
    const configuration = localWebhookConfiguration({ url: webhook.url, caPem: webhook.ca.cert });
    await kubectlOk(['apply', '-f', '-'], toYamlDocument(configuration));
    await createNamespace('injected', { 'istio-injection': 'enabled' });
    await createNamespace('revision', { 'istio.io/rev': 'default' });
    await createNamespace('plain', {});
    await untilWebhookActive();
  });

  afterAll(async () => {
    await webhook?.stop();
    await controlPlane?.stop();
  });

  async function kubectlOk(args: string[], input?: string): Promise<string> {
    const result = await controlPlane.kubectl(args, input === undefined ? {} : { input });
    if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${result.stderr}`);
    return result.stdout;
  }

  async function createNamespace(name: string, labels: Record<string, string>) {
    await core.createNamespace({ body: { metadata: { name, labels } } });
  }

  function pod(
    name: string,
    options: {
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
      hostNetwork?: boolean;
    } = {},
  ): V1Pod {
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels: { app: name, ...options.labels }, annotations: options.annotations },
      spec: {
        hostNetwork: options.hostNetwork,
        containers: [{ name: 'app', image: 'registry.example.com/app:1', ports: [{ containerPort: 8080 }] }],
      },
    };
  }

  async function create(namespace: string, body: V1Pod): Promise<V1Pod> {
    await core.createNamespacedPod({ namespace, body });
    return core.readNamespacedPod({ namespace, name: body.metadata!.name! });
  }

  /** The apiserver learns of a new webhook configuration asynchronously; wait until a pod is injected. */
  async function untilWebhookActive() {
    for (let attempt = 0; attempt < 100; attempt++) {
      const stored = await create('injected', pod(`probe-${attempt}`));
      await core.deleteNamespacedPod({
        namespace: 'injected',
        name: stored.metadata!.name!,
        gracePeriodSeconds: 0,
      });
      if (stored.spec?.initContainers?.length) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('the webhook configuration never took effect');
  }

  const containerNames = (stored: V1Pod) => ({
    initContainers: (stored.spec?.initContainers ?? []).map((c) => c.name),
    containers: stored.spec?.containers.map((c) => c.name),
  });

  it('stores a pod in a namespace labelled istio-injection=enabled with istio-init and istio-proxy', async () => {
    const stored = await create('injected', pod('web'));
    expect(containerNames(stored)).toEqual({
      initContainers: ['istio-init'],
      containers: ['app', 'istio-proxy'],
    });
    const init = stored.spec?.initContainers?.[0];
    expect(init?.args).toEqual(
      expect.arrayContaining(['-p', '15001', '-z', '15006', '-u', '1337', '-d', '15090,15021,15020']),
    );
    expect(init?.securityContext?.capabilities?.add).toEqual(['NET_ADMIN', 'NET_RAW']);
    const proxy = stored.spec?.containers[1];
    expect(proxy?.securityContext).toMatchObject({
      runAsUser: 1337,
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
    });
    expect(stored.metadata?.annotations?.['sidecar.istio.io/status']).toContain('istio-proxy');
    expect(stored.metadata?.annotations?.['kubectl.kubernetes.io/default-container']).toBe('app');
    // The apiserver defaulted the volume the template added.
    expect(stored.spec?.volumes?.find((v) => v.name === 'istio-envoy')?.emptyDir).toBeDefined();
  });

  it('uses the classic layout on this 1.20 apiserver (native sidecars need 1.29)', async () => {
    const stored = await create('injected', pod('classic'));
    expect(stored.spec?.initContainers?.find((c) => c.name === 'istio-proxy')).toBeUndefined();
  });

  it('injects in a namespace selected by istio.io/rev=default', async () => {
    expect(containerNames(await create('revision', pod('by-revision'))).containers).toContain('istio-proxy');
  });

  it('injects a pod labelled sidecar.istio.io/inject=true in an unlabelled namespace', async () => {
    const stored = await create('plain', pod('opted-in', { labels: { 'sidecar.istio.io/inject': 'true' } }));
    expect(containerNames(stored).containers).toContain('istio-proxy');
  });

  it('stores a pod in an unlabelled namespace unchanged', async () => {
    const stored = await create('plain', pod('untouched'));
    expect(containerNames(stored)).toEqual({ initContainers: [], containers: ['app'] });
    expect(stored.metadata?.annotations?.['sidecar.istio.io/status']).toBeUndefined();
  });

  it('stores a pod annotated sidecar.istio.io/inject: "false" unchanged', async () => {
    const stored = await create(
      'injected',
      pod('annotated-off', { annotations: { 'sidecar.istio.io/inject': 'false' } }),
    );
    expect(containerNames(stored)).toEqual({ initContainers: [], containers: ['app'] });
    expect(
      await webhook.logLine((line) => line.includes('annotated-off') && line.includes('explicitly-disabled')),
    ).toBeDefined();
  });

  it('stores a host-network pod unchanged', async () => {
    const stored = await create('injected', pod('host', { hostNetwork: true }));
    expect(containerNames(stored)).toEqual({ initContainers: [], containers: ['app'] });
  });

  it('never calls the webhook for a pod labelled sidecar.istio.io/inject=false', async () => {
    const stored = await create(
      'injected',
      pod('label-off', { labels: { 'sidecar.istio.io/inject': 'false' } }),
    );
    expect(containerNames(stored)).toEqual({ initContainers: [], containers: ['app'] });
    expect((await webhook.settledLogs()).some((line) => line.includes('label-off'))).toBe(false);
  });

  it("denies a pod with an invalid traffic annotation, with the webhook's message", async () => {
    const manifest = pod('bad-ports', {
      annotations: { 'traffic.sidecar.istio.io/excludeOutboundPorts': '80 -j ACCEPT' },
    });
    const result = await controlPlane.kubectl(['create', '-n', 'injected', '-f', '-'], {
      input: JSON.stringify(manifest),
    });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain('denied the request');
    expect(result.stderr).toContain('traffic.sidecar.istio.io/excludeOutboundPorts');
    expect(result.stderr).toContain('fix:');
    const listed = await core.listNamespacedPod({ namespace: 'injected' });
    expect(listed.items.map((p) => p.metadata?.name)).not.toContain('bad-ports');
  });

  it("passes the webhook's warnings to kubectl, which prints them, and injects the pod", async () => {
    const manifest = pod('warned', {
      annotations: {
        'sidecar.istio.io/inject': 'yes',
        'traffic.sidecar.istio.io/kubevirtInterfaces': 'net1',
      },
    });
    const result = await controlPlane.kubectl(['create', '-n', 'injected', '-f', '-'], {
      input: JSON.stringify(manifest),
    });
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain('Warning: invalid value "yes" for sidecar.istio.io/inject');
    expect(result.stderr).toContain(
      'Warning: annotation traffic.sidecar.istio.io/kubevirtInterfaces is deprecated; use istio.io/reroute-virtual-interfaces instead',
    );
    const stored = await core.readNamespacedPod({ name: 'warned', namespace: 'injected' });
    expect(containerNames(stored).initContainers).toEqual(['istio-init']);
  });

  it('logs a denial at warn with the namespace, the pod and the annotation', async () => {
    const manifest = pod('denied-logged', { annotations: { 'sidecar.istio.io/proxyCPU': 'lots' } });
    const result = await controlPlane.kubectl(['create', '-n', 'injected', '-f', '-'], {
      input: JSON.stringify(manifest),
    });
    expect(result.exitCode).not.toBe(0);
    const line = await webhook.logLine((l) => l.includes('denied-logged') && l.includes('injection denied'));
    expect(line && JSON.parse(line)).toMatchObject({
      level: 'warn',
      namespace: 'injected',
      pod: 'denied-logged',
      annotations: ['sidecar.istio.io/proxyCPU'],
    });
  });

  it('lists mesh-injector in kubectl get mutatingwebhookconfiguration', async () => {
    expect(await kubectlOk(['get', 'mutatingwebhookconfiguration', '-o', 'name'])).toContain(
      'mutatingwebhookconfiguration.admissionregistration.k8s.io/mesh-injector',
    );
  });
});
