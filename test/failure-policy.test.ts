/**
 * What the apiserver does when the injector cannot answer, with the shipped MutatingWebhookConfiguration
 * (failurePolicy: Fail): with the webhook process stopped, and with a webhook that answers later than
 * timeoutSeconds (a stand-in HTTPS server in this test; the injector has no way to be made slow on purpose), a pod
 * in a namespace selected for injection is refused with the apiserver's "failed calling webhook" naming the
 * webhook, a pod in an unselected namespace is stored, and no pod is ever stored without its sidecar in a selected
 * namespace. The same outage under failurePolicy: Ignore stores the pod without a sidecar: the trade-off that
 * docs/failure-policy.md describes.
 */
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueServingCert, type CertificateAuthority } from '../common/pki.js';
import { controlPlaneRequirements, startControlPlane, type ControlPlane } from './harness/control-plane.js';
import { missingRequirements } from './harness/requirements.js';
import { startWebhookProcess, type WebhookProcess } from './harness/webhook-process.js';
import { localWebhookConfiguration, toYamlDocument } from './harness/webhook-configuration.js';

const missing = missingRequirements(controlPlaneRequirements(), 'failure policy against kube-apiserver');

const SELECTED = {
  meshed: { 'istio-injection': 'enabled' },
  revision: { 'istio.io/rev': 'default' },
} as const;
const WEBHOOK_FOR = {
  meshed: 'namespace.sidecar-injector.mesh-injector.io',
  revision: 'rev.namespace.sidecar-injector.mesh-injector.io',
} as const;
const TIMEOUT_SECONDS = 1;

/** An HTTPS server with a certificate from the webhook's CA that takes every request and answers too late. */
async function startSlowWebhook(ca: CertificateAuthority, answerAfterMs: number) {
  const serving = await issueServingCert(ca, {
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    validityDays: 1,
  });
  let received = 0;
  const server: Server = createServer({ cert: serving.cert, key: serving.key }, (request, response) => {
    received++;
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const uid = (JSON.parse(body) as { request: { uid: string } }).request.uid;
      const timer = setTimeout(() => {
        response.setHeader('content-type', 'application/json');
        response.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: { uid, allowed: true },
          }),
        );
      }, answerAfterMs);
      response.on('close', () => clearTimeout(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received: () => received,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.skipIf(missing.length > 0)('failure policy on a real kube-apiserver', () => {
  let controlPlane: ControlPlane;
  let webhook: WebhookProcess;
  let core: CoreV1Api;
  let podCount = 0;

  beforeAll(async () => {
    controlPlane = await startControlPlane();
    webhook = await startWebhookProcess({ kubeconfigPath: controlPlane.kubeconfigPath });
    core = controlPlane.kubeConfig.makeApiClient(CoreV1Api);
    for (const [name, labels] of [
      ...Object.entries(SELECTED),
      ['plain', {}],
      ['ignored', SELECTED.meshed],
    ] as const) {
      await core.createNamespace({ body: { metadata: { name, labels: { ...labels } } } });
    }
    await configure({ url: webhook.url, failurePolicy: 'Fail' });
    // Server-side dry runs reach the webhook but store nothing, so waiting leaves no un-injected pod behind.
    await until(
      async () => (await dryRun('meshed')).includes('istio-proxy'),
      'the webhook configuration to take effect',
    );
  });

  afterAll(async () => {
    await webhook?.stop();
    await controlPlane?.stop();
  });

  async function configure(options: { url: string; failurePolicy: 'Fail' | 'Ignore' }) {
    const configuration = localWebhookConfiguration({
      ...options,
      caPem: webhook.ca.cert,
      timeoutSeconds: TIMEOUT_SECONDS,
    });
    const result = await controlPlane.kubectl(['apply', '-f', '-'], { input: toYamlDocument(configuration) });
    if (result.exitCode !== 0) throw new Error(`kubectl apply failed: ${result.stderr}`);
  }

  function pod(): V1Pod {
    const name = `app-${podCount++}`;
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels: { app: name } },
      spec: { containers: [{ name: 'app', image: 'registry.example.com/app:1' }] },
    };
  }

  /** kubectl create; its stdout and stderr, and whether it succeeded. */
  async function create(namespace: string, extra: string[] = []) {
    const result = await controlPlane.kubectl(
      ['create', '-n', namespace, '-o', 'json', ...extra, '-f', '-'],
      {
        input: JSON.stringify(pod()),
      },
    );
    return { ok: result.exitCode === 0, stdout: result.stdout, stderr: result.stderr };
  }

  async function dryRun(namespace: string): Promise<string> {
    const result = await create(namespace, ['--dry-run=server']);
    return result.ok ? result.stdout : result.stderr;
  }

  async function until(condition: () => Promise<boolean>, what: string) {
    for (let attempt = 0; attempt < 150; attempt++) {
      if (await condition()) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`gave up waiting for ${what}`);
  }

  const containerNames = (stored: V1Pod) => stored.spec?.containers.map((c) => c.name);

  async function expectRefusedInSelectedNamespaces(cause: RegExp) {
    for (const namespace of Object.keys(SELECTED) as (keyof typeof SELECTED)[]) {
      const result = await create(namespace);
      expect(result.ok, result.stdout).toBe(false);
      expect(result.stderr).toContain(`failed calling webhook "${WEBHOOK_FOR[namespace]}"`);
      expect(result.stderr).toMatch(cause);
      if (namespace === 'meshed') console.info(`apiserver refused: ${result.stderr}`);
    }
    const plain = await create('plain');
    expect(plain.ok, plain.stderr).toBe(true);
    expect(containerNames(JSON.parse(plain.stdout) as V1Pod)).toEqual(['app']);
  }

  it('injects while the webhook answers', async () => {
    for (const namespace of Object.keys(SELECTED)) {
      const result = await create(namespace);
      expect(result.ok, result.stderr).toBe(true);
      expect(containerNames(JSON.parse(result.stdout) as V1Pod)).toEqual(['app', 'istio-proxy']);
    }
  });

  it('refuses pods in selected namespaces, and only there, while the webhook process is stopped', async () => {
    await webhook.stop();
    await expectRefusedInSelectedNamespaces(/connection refused/);
  });

  it('refuses pods in selected namespaces, and only there, while the webhook answers after timeoutSeconds', async () => {
    const slow = await startSlowWebhook(webhook.ca, (TIMEOUT_SECONDS + 2) * 1000);
    try {
      await configure({ url: slow.url, failurePolicy: 'Fail' });
      await until(async () => (await dryRun('meshed')).includes(slow.url), 'the slow webhook to be called');
      const before = slow.received();
      await expectRefusedInSelectedNamespaces(/context deadline exceeded|Client\.Timeout|timeout/i);
      // The apiserver did call it, and gave up: a late answer admits nothing.
      expect(slow.received()).toBeGreaterThan(before);
    } finally {
      await slow.close();
    }
  });

  it('never stored a pod without its sidecar in a selected namespace', async () => {
    for (const namespace of Object.keys(SELECTED)) {
      const pods = (await core.listNamespacedPod({ namespace })).items;
      expect(pods.length).toBeGreaterThan(0);
      for (const stored of pods) expect(containerNames(stored)).toContain('istio-proxy');
    }
  });

  it('under failurePolicy Ignore, stores the pod without a sidecar during the same outage (the trade-off)', async () => {
    await configure({ url: webhook.url, failurePolicy: 'Ignore' });
    await until(
      async () => !(await dryRun('ignored')).includes('failed calling webhook'),
      'Ignore to take effect',
    );
    const result = await create('ignored');
    expect(result.ok, result.stderr).toBe(true);
    expect(containerNames(JSON.parse(result.stdout) as V1Pod)).toEqual(['app']);
  });
});
