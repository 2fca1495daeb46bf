/**
 * Self-managed certificates (no cert-manager) against a real kube-apiserver, authenticated as the webhook's own
 * ServiceAccount with a token the apiserver issued and only the RBAC in manifests/rbac.yaml. Two webhooks run
 * in-process through `serve()` (cli/serve.ts), as `mesh-injector serve --manage-certificates` runs them. The
 * apiserver reaches them through the Service in manifests/ and a hand-made Endpoints object
 * (--enable-aggregator-routing makes it dial endpoints instead of the ClusterIP), verifying them with the caBundle
 * the webhooks wrote. That the TLS reloader swaps a rewritten certificate without dropping keep-alive connections is
 * proven in test/webhook-process.test.ts ("serves a rotated certificate to new connections while keep-alive
 * connections go on"); here the rewrite comes from the certificate manager itself.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, get } from 'node:https';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { AdmissionregistrationV1Api, CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { serve, type RunningWebhook } from '../cli/serve.js';
import { certificateInfo, verifyIssuedBy } from '../common/pki.js';
import { CertificateManager } from '../webhook/certificate-manager.js';
import { DEFAULT_POLICY, SECRET_KEYS, serviceDnsNames } from '../webhook/certificate-plan.js';
import { kubernetesCertificateApi } from '../webhook/cluster.js';
import { controlPlaneRequirements, startControlPlane, type ControlPlane } from './harness/control-plane.js';
import { applyObjects, renderKustomization } from './harness/manifests.js';
import { missingRequirements } from './harness/requirements.js';
import { SHIPPED_CONFIG_DIR } from './harness/webhook-process.js';

const NAMESPACE = 'mesh-injector';
const SERVICE = 'mesh-injector';
const SECRET = 'mesh-injector-tls';
const CONFIGURATION = 'mesh-injector';
const SERVICE_HOST = `${SERVICE}.${NAMESPACE}.svc`;
const DAY_MS = 24 * 60 * 60 * 1000;

/** Endpoints may not be loopback addresses, so the webhooks listen on this host's first other IPv4 address. */
function hostAddress(): string {
  const address = Object.values(networkInterfaces())
    .flat()
    .find((candidate) => candidate?.family === 'IPv4' && !candidate.internal)?.address;
  if (!address) throw new Error('this host has no non-loopback IPv4 address for the webhook Endpoints');
  return address;
}

const missing = missingRequirements(controlPlaneRequirements(), 'self-managed certificates');

interface Replica {
  name: string;
  webhook: RunningWebhook;
  files: { cert: string; key: string };
  logs: string[];
}

describe.skipIf(missing.length > 0)('self-managed webhook certificates on a real kube-apiserver', () => {
  let controlPlane: ControlPlane;
  let dir: string;
  let serviceAccountKubeconfig: string;
  let admin: { core: CoreV1Api; admission: AdmissionregistrationV1Api };
  const replicas: Replica[] = [];

  beforeAll(async () => {
    controlPlane = await startControlPlane({ kubeApiserverFlags: { 'enable-aggregator-routing': 'true' } });
    dir = await mkdtemp(join(tmpdir(), 'mesh-injector-certificates-'));
    admin = {
      core: controlPlane.kubeConfig.makeApiClient(CoreV1Api),
      admission: controlPlane.kubeConfig.makeApiClient(AdmissionregistrationV1Api),
    };
    // Everything manifests/ installs; the Deployment is stored but never runs (no controllers), the webhooks below
    // stand in for its pods.
    await applyObjects(controlPlane, renderKustomization());
    serviceAccountKubeconfig = join(dir, 'service-account.kubeconfig');
    await writeFile(serviceAccountKubeconfig, await serviceAccountKubeconfigYaml(), { mode: 0o600 });
  });

  afterAll(async () => {
    for (const replica of replicas) await replica.webhook.shutdown();
    await controlPlane?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A kubeconfig holding a token the apiserver issued to a ServiceAccount (TokenRequest), by default the webhook's. */
  async function serviceAccountKubeconfigYaml(serviceAccount = SERVICE): Promise<string> {
    const request = await admin.core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace: NAMESPACE,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const token = request.status?.token;
    if (!token) throw new Error('the apiserver issued no token for the ServiceAccount');
    return stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'test',
          cluster: {
            server: controlPlane.url,
            'certificate-authority-data': Buffer.from(controlPlane.caPem).toString('base64'),
          },
        },
      ],
      users: [{ name: 'mesh-injector', user: { token } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: 'mesh-injector' } }],
      'current-context': 'test',
    });
  }

  async function startReplica(name: string): Promise<Replica> {
    const logs: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });
    const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
    const webhook = await serve(
      {
        port: 0,
        host: hostAddress(),
        tlsCert: files.cert,
        tlsKey: files.key,
        config: SHIPPED_CONFIG_DIR,
        kubeconfig: serviceAccountKubeconfig,
        shutdownDelayMs: 0,
        logLevel: 'info',
        certificates: {
          namespace: NAMESPACE,
          service: SERVICE,
          secret: SECRET,
          webhookConfiguration: CONFIGURATION,
          checkIntervalMs: 60 * 60 * 1000,
        },
      },
      log as unknown as Logger,
    );
    const replica = { name, webhook, files, logs };
    replicas.push(replica);
    return replica;
  }

  async function storedSecret(): Promise<Record<string, string>> {
    const secret = await admin.core.readNamespacedSecret({ name: SECRET, namespace: NAMESPACE });
    return Object.fromEntries(
      Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString()]),
    );
  }

  /** Every webhook's caBundle, decoded; the test fails if they differ. */
  async function caBundle(): Promise<string> {
    const configuration = await admin.admission.readMutatingWebhookConfiguration({ name: CONFIGURATION });
    const bundles = new Set(
      (configuration.webhooks ?? []).map((webhook) => webhook.clientConfig.caBundle ?? ''),
    );
    expect(bundles.size).toBe(1);
    return Buffer.from([...bundles][0]!, 'base64').toString();
  }

  /** The certificate a replica presents for the Service's name, verified against `trusted` as the apiserver does. */
  function servedCertificate(replica: Replica, trusted: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(
        { host: hostAddress(), port: replica.webhook.port, servername: SERVICE_HOST, ca: trusted },
        () => {
          const raw = socket.getPeerCertificate().raw;
          socket.end();
          resolve(new X509Certificate(raw).toString());
        },
      );
      socket.once('error', reject);
    });
  }

  async function pointServiceAt(replica: Replica): Promise<void> {
    const body = {
      metadata: { name: SERVICE, namespace: NAMESPACE },
      subsets: [
        {
          addresses: [{ ip: hostAddress() }],
          ports: [{ name: 'https', port: replica.webhook.port, protocol: 'TCP' }],
        },
      ],
    };
    try {
      await admin.core.replaceNamespacedEndpoints({ name: SERVICE, namespace: NAMESPACE, body });
    } catch {
      await admin.core.createNamespacedEndpoints({ namespace: NAMESPACE, body });
    }
  }

  /**
   * Creates pods in an injection-enabled namespace until one comes back injected: the apiserver learns of new
   * Endpoints and caBundles asynchronously, and until then the call fails (failurePolicy: Fail).
   */
  let podCount = 0;
  async function injectedThrough(replica: Replica): Promise<V1Pod> {
    const before = replica.logs.filter((line) => line.includes('sidecar injected')).length;
    let lastError = '';
    for (let attempt = 0; attempt < 100; attempt++) {
      const name = `app-${++podCount}`;
      try {
        const pod = await admin.core.createNamespacedPod({
          namespace: 'shop',
          body: {
            metadata: { name },
            spec: { containers: [{ name: 'app', image: 'registry.example.com/app:1' }] },
          },
        });
        const answered = replica.logs.filter((line) => line.includes('sidecar injected')).length > before;
        if (answered) return pod;
        lastError = `pod ${name} was not injected by ${replica.name}`;
      } catch (error) {
        lastError = String((error as { body?: unknown }).body ?? error);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`no pod was injected through ${replica.name}: ${lastError}`);
  }

  it('two replicas starting together create one Secret, one CA, and publish it as the caBundle', async () => {
    await expect(admin.core.readNamespacedSecret({ name: SECRET, namespace: NAMESPACE })).rejects.toThrow();
    const [a, b] = await Promise.all([startReplica('a'), startReplica('b')]);

    const secret = await storedSecret();
    const ca = secret[SECRET_KEYS.caCert]!;
    expect(ca.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
    expect(secret[SECRET_KEYS.previousCaCerts]).toBe('');
    expect((await caBundle()).trim()).toBe(ca.trim());

    for (const replica of [a!, b!]) {
      const served = await servedCertificate(replica, ca);
      expect(verifyIssuedBy(served, ca)).toBe(true);
      expect(certificateInfo(served).dnsNames).toEqual(serviceDnsNames(SERVICE, NAMESPACE));
    }
  });

  it('the apiserver calls the webhook through the Service, trusting the caBundle the webhook wrote', async () => {
    await admin.core.createNamespace({
      body: { metadata: { name: 'shop', labels: { 'istio-injection': 'enabled' } } },
    });
    const [a] = replicas;
    await pointServiceAt(a!);
    const pod = await injectedThrough(a!);
    expect(pod.spec?.containers.map((container) => container.name)).toContain('istio-proxy');
  });

  it('renews the CA before it expires, keeping old and new CA in the caBundle while both are served', async () => {
    const [a, b] = replicas;
    const before = await storedSecret();
    const oldCa = before[SECRET_KEYS.caCert]!;
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: oldCa, servername: SERVICE_HOST });
    const portBefore = await healthzSocketPort(a!, agent);

    // Replica a's manager, seen from a day where the CA has less than a third of its life left.
    const nearCaExpiry = new Date(Date.now() + 3000 * DAY_MS);
    const manager = new CertificateManager({
      api: kubernetesCertificateApi(serviceAccountKubeConfig(), {
        namespace: NAMESPACE,
        secret: SECRET,
        webhookConfiguration: CONFIGURATION,
      }),
      policy: { ...DEFAULT_POLICY, dnsNames: serviceDnsNames(SERVICE, NAMESPACE) },
      files: a!.files,
      log: pino({ level: 'silent' }),
      now: () => nearCaExpiry,
    });
    const renewed = await manager.reconcile();

    expect(renewed.ca.cert).not.toBe(oldCa);
    const after = await storedSecret();
    expect(after[SECRET_KEYS.caCert]).toBe(renewed.ca.cert);
    expect(after[SECRET_KEYS.previousCaCerts]?.trim()).toBe(oldCa.trim());
    const bundle = await caBundle();
    expect(bundle.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(bundle).toContain(oldCa.trim());
    expect(bundle).toContain(renewed.ca.cert.trim());

    // a reloads the certificate the manager wrote; b has not reconciled and still serves the old CA's.
    let servedByA = await servedCertificate(a!, bundle);
    for (let i = 0; i < 100 && !verifyIssuedBy(servedByA, renewed.ca.cert); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      servedByA = await servedCertificate(a!, bundle);
    }
    expect(verifyIssuedBy(servedByA, renewed.ca.cert)).toBe(true);
    expect(verifyIssuedBy(await servedCertificate(b!, bundle), oldCa)).toBe(true);

    // The connection opened before the swap goes on.
    expect(await healthzSocketPort(a!, agent)).toBe(portBefore);
    agent.destroy();

    // And the apiserver, with the two-CA caBundle, accepts both. It keeps idle connections to the Service's name,
    // so the replica it talked to before is stopped each time to make it dial the one now behind the Service.
    await pointServiceAt(b!);
    await a!.webhook.shutdown();
    await injectedThrough(b!);
    const c = await startReplica('c');
    expect(verifyIssuedBy(await servedCertificate(c, bundle), renewed.ca.cert)).toBe(true);
    await pointServiceAt(c);
    await b!.webhook.shutdown();
    await injectedThrough(c);
  });

  it('names the object, the HTTP status and the fix when the RBAC is missing', async () => {
    await admin.core.createNamespacedServiceAccount({
      namespace: NAMESPACE,
      body: { metadata: { name: 'other' } },
    });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromString(await serviceAccountKubeconfigYaml('other'));
    const manager = new CertificateManager({
      api: kubernetesCertificateApi(kubeConfig, {
        namespace: NAMESPACE,
        secret: SECRET,
        webhookConfiguration: CONFIGURATION,
      }),
      policy: { ...DEFAULT_POLICY, dnsNames: serviceDnsNames(SERVICE, NAMESPACE) },
      files: { cert: join(dir, 'other.crt'), key: join(dir, 'other.key') },
      log: pino({ level: 'silent' }),
    });
    await expect(manager.reconcile()).rejects.toThrow(
      `cannot get the Secret ${NAMESPACE}/${SECRET}: HTTP 403: secrets "${SECRET}" is forbidden: ` +
        `User "system:serviceaccount:${NAMESPACE}:other" cannot get resource "secrets" in API group "" in the ` +
        `namespace "${NAMESPACE}"; fix: grant the webhook's ServiceAccount "get" on secrets named ${SECRET} ` +
        '(manifests/rbac.yaml)',
    );
  });

  function serviceAccountKubeConfig(): KubeConfig {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(serviceAccountKubeconfig);
    return kubeConfig;
  }
});

/** GET /healthz over `agent`; returns the local port of the socket used, to tell a reused connection. */
function healthzSocketPort(replica: Replica, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = get(
      { host: hostAddress(), port: replica.webhook.port, path: '/healthz', agent, servername: SERVICE_HOST },
      (response) => {
        const port = response.socket.localPort ?? -1;
        response.resume();
        response.on('end', () =>
          response.statusCode === 200
            ? resolve(port)
            : reject(new Error(`/healthz answered ${response.statusCode}`)),
        );
      },
    );
    request.once('error', reject);
  });
}
