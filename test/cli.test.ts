/**
 * `mesh-injector check` and `mesh-injector inject`, the built CLI, against a real kube-apiserver with the webhook
 * process registered by url (as envtest does). The cluster is changed the way an operator would change it
 * (kubectl apply, relabelling, certificate files rewritten under the running webhook), never stubbed.
 */
import { X509Certificate } from 'node:crypto';
import { cp, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  CoreV1Api,
  type V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueServingCert } from '../common/pki.js';
import type { CheckReport } from '../cli/check-report.js';
import { startControlPlane, controlPlaneRequirements, type ControlPlane } from './harness/control-plane.js';
import { repoPath } from './harness/repo.js';
import { missingRequirements } from './harness/requirements.js';
import {
  CLI_PATH,
  SHIPPED_CONFIG_DIR,
  startWebhookProcess,
  type WebhookProcess,
} from './harness/webhook-process.js';
import { localWebhookConfiguration, toYamlDocument } from './harness/webhook-configuration.js';

const missing = missingRequirements(
  controlPlaneRequirements(),
  'mesh-injector check and inject against kube-apiserver',
);
const ALL_KINDS = repoPath('test', 'fixtures', 'all-kinds.yaml');
const POD_MANIFEST =
  'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: b}]\n';

describe.skipIf(missing.length > 0)('the mesh-injector CLI against a real kube-apiserver', () => {
  let controlPlane: ControlPlane;
  let webhook: WebhookProcess;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let admission: AdmissionregistrationV1Api;

  beforeAll(async () => {
    controlPlane = await startControlPlane();
    webhook = await startWebhookProcess({ kubeconfigPath: controlPlane.kubeconfigPath });
    core = controlPlane.kubeConfig.makeApiClient(CoreV1Api);
    apps = controlPlane.kubeConfig.makeApiClient(AppsV1Api);
    admission = controlPlane.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    // The harness's certificate lasts a day; a healthy installation's lasts a year.
    await serveCertificateValidFor(365);
    await kubectlOk(
      ['apply', '-f', '-'],
      toYamlDocument(localWebhookConfiguration({ url: webhook.url, caPem: webhook.ca.cert })),
    );
    await core.createNamespace({
      body: { metadata: { name: 'shop', labels: { 'istio-injection': 'enabled' } } },
    });
    await untilWebhookActive('shop');
    await core.createNamespacedPod({ namespace: 'shop', body: appPod('web') });
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

  function cli(args: string[], input?: string) {
    return execa(process.execPath, [CLI_PATH, ...args], {
      reject: false,
      input: input ?? '',
      env: { KUBECONFIG: controlPlane.kubeconfigPath },
    });
  }

  async function check(...args: string[]): Promise<{ exitCode: number | undefined; report: CheckReport }> {
    const result = await cli(['check', '-o', 'json', ...args]);
    if (!result.stdout.startsWith('{')) {
      throw new Error(`check wrote no report (exit ${result.exitCode}): ${result.stdout}${result.stderr}`);
    }
    return { exitCode: result.exitCode, report: JSON.parse(result.stdout) as CheckReport };
  }

  const statusOf = (report: CheckReport, id: string) => report.checks.find((c) => c.id === id);

  function appPod(name: string, extra: { labels?: Record<string, string> } = {}) {
    return {
      metadata: { name, labels: { app: name, ...extra.labels } },
      spec: { containers: [{ name: 'app', image: 'registry.example.com/app:1' }] },
    };
  }

  /** The apiserver learns of a new webhook configuration asynchronously; wait until a pod is injected. */
  async function untilWebhookActive(namespace: string) {
    for (let attempt = 0; attempt < 100; attempt++) {
      const name = `probe-${attempt}`;
      await core.createNamespacedPod({ namespace, body: appPod(name) });
      const stored = await core.readNamespacedPod({ namespace, name });
      await core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 });
      if (stored.spec?.initContainers?.length) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('the webhook configuration never took effect');
  }

  /** Rewrites the running webhook's certificate files, as a renewal would, and waits until it serves the new one. */
  async function serveCertificateValidFor(days: number): Promise<Date> {
    const next = await issueServingCert(webhook.ca, {
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      validityDays: days,
    });
    await writeFile(`${webhook.keyPath}.next`, next.key, { mode: 0o600 });
    await rename(`${webhook.keyPath}.next`, webhook.keyPath);
    await writeFile(`${webhook.certPath}.next`, next.cert);
    await rename(`${webhook.certPath}.next`, webhook.certPath);
    const wanted = new X509Certificate(next.cert).fingerprint256;
    for (let attempt = 0; attempt < 200; attempt++) {
      if ((await servedFingerprint(webhook.port)) === wanted)
        return new Date(new X509Certificate(next.cert).validTo);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('the webhook never served the new certificate');
  }

  function servedFingerprint(port: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.end();
      });
      socket.on('error', () => resolve(undefined));
    });
  }

  describe('check', () => {
    it('passes on a healthy installation and exits 0; the Service check is n/a for a url webhook', async () => {
      const { exitCode, report } = await check();
      expect(report.checks.map((c) => [c.id, c.status])).toEqual([
        // The test apiserver is v1.20, older than the supported 1.21: a warning, which does not fail the run.
        ['kubernetes-version', 'warn'],
        ['webhook-configuration', 'ok'],
        ['ca-bundle', 'ok'],
        ['serving-certificate', 'ok'],
        ['certificate-expiry', 'ok'],
        ['service-endpoints', 'skip'],
        ['injection-namespaces', 'ok'],
        ['pods-need-restart', 'ok'],
      ]);
      expect(statusOf(report, 'service-endpoints')?.details).toEqual(['n/a: webhook configured by url']);
      expect(statusOf(report, 'serving-certificate')?.details[0]).toContain(
        `${webhook.url}/inject (TLS handshake)`,
      );
      expect(report.injectionNamespaces).toEqual([{ name: 'shop', selectedBy: 'istio-injection=enabled' }]);
      expect(exitCode).toBe(0);
    });

    it('prints ✓ lines by default', async () => {
      const result = await cli(['check']);
      expect(result.stdout).toContain('✓ the MutatingWebhookConfiguration mesh-injector exists');
      expect(result.stdout).toContain('– the Service mesh-injector/mesh-injector has ready endpoints');
      expect(result.stdout).not.toContain('✗');
      expect(result.exitCode).toBe(0);
    });

    it('fails when a webhook has no caBundle, naming it', async () => {
      const stored: V1MutatingWebhookConfiguration = await admission.readMutatingWebhookConfiguration({
        name: 'mesh-injector',
      });
      const stripped = structuredClone(stored);
      delete stripped.webhooks![1]!.clientConfig.caBundle;
      await admission.replaceMutatingWebhookConfiguration({ name: 'mesh-injector', body: stripped });
      try {
        const { exitCode, report } = await check();
        expect(statusOf(report, 'ca-bundle')).toMatchObject({
          status: 'fail',
          details: [`webhook ${stored.webhooks![1]!.name} has no clientConfig.caBundle`],
        });
        expect(exitCode).toBe(1);
        const human = await cli(['check']);
        expect(human.stdout).toContain('✗ every webhook has a caBundle');
        expect(human.stdout).toContain('hint: the webhook fills in the caBundle');
      } finally {
        const current = await admission.readMutatingWebhookConfiguration({ name: 'mesh-injector' });
        current.webhooks = stored.webhooks;
        await admission.replaceMutatingWebhookConfiguration({ name: 'mesh-injector', body: current });
      }
      expect((await check()).exitCode).toBe(0);
    });

    it("warns when the url webhook's certificate expires within 30 days, naming the expiry, with a hint for a url webhook", async () => {
      const notAfter = await serveCertificateValidFor(10);
      try {
        const { exitCode, report } = await check();
        const expiry = statusOf(report, 'certificate-expiry');
        // Reached by url, as npm start registers it: not the installed Deployment, so a warning whose hint says
        // where to renew, not "deploy/mesh-injector" (a Service webhook's expiry fails: cli/check-report.test.ts).
        expect(expiry?.status).toBe('warn');
        expect(expiry?.hint).toContain('reached by url');
        expect(expiry?.hint).not.toContain('deploy/');
        expect(expiry?.details[0]).toContain(`expires at ${notAfter.toISOString().slice(0, 16)}`);
        expect(expiry?.details[0]).toMatch(/\(in (9|10) days\)$/);
        // The caBundle still verifies it: only the expiry fails.
        expect(statusOf(report, 'serving-certificate')?.status).toBe('ok');
        expect(exitCode).toBe(0);
      } finally {
        await serveCertificateValidFor(365);
      }
    });

    it('lists a pod created before its namespace was labelled as needing a restart, with its Deployment', async () => {
      // Created while nothing selected the namespace, then the namespace is labelled: the usual way pods end up
      // without a sidecar. The Deployment, ReplicaSet and pod are linked as the controllers would link them.
      await core.createNamespace({ body: { metadata: { name: 'late' } } });
      const deployment = await apps.createNamespacedDeployment({
        namespace: 'late',
        body: {
          metadata: { name: 'api' },
          spec: {
            selector: { matchLabels: { app: 'api' } },
            template: appPod('api'),
          },
        },
      });
      const owner = (kind: string, object: { metadata?: { name?: string; uid?: string } }) => ({
        apiVersion: 'apps/v1',
        kind,
        name: object.metadata!.name!,
        uid: object.metadata!.uid!,
        controller: true,
      });
      const replicaSet = await apps.createNamespacedReplicaSet({
        namespace: 'late',
        body: {
          metadata: { name: 'api-5f7c9', ownerReferences: [owner('Deployment', deployment)] },
          spec: {
            selector: { matchLabels: { app: 'api', 'pod-template-hash': '5f7c9' } },
            template: appPod('api', { labels: { 'pod-template-hash': '5f7c9' } }),
          },
        },
      });
      const pod = appPod('api-5f7c9-x8k2p', { labels: { app: 'api', 'pod-template-hash': '5f7c9' } });
      await core.createNamespacedPod({
        namespace: 'late',
        body: { ...pod, metadata: { ...pod.metadata, ownerReferences: [owner('ReplicaSet', replicaSet)] } },
      });
      const stored = await core.readNamespacedPod({ namespace: 'late', name: 'api-5f7c9-x8k2p' });
      expect(stored.spec?.containers.map((c) => c.name)).toEqual(['app']);

      await kubectlOk(['label', 'namespace', 'late', 'istio-injection=enabled']);
      try {
        const { exitCode, report } = await check();
        expect(report.podsNeedingRestart).toEqual([
          {
            namespace: 'late',
            pod: 'api-5f7c9-x8k2p',
            reason: 'no-sidecar',
            detail: expect.stringContaining('runs without a sidecar'),
            owner: { kind: 'Deployment', name: 'api' },
          },
        ]);
        expect(statusOf(report, 'pods-need-restart')?.status).toBe('fail');
        expect(exitCode).toBe(1);
        const human = await cli(['check']);
        expect(human.stdout).toContain('✗ pods in injection namespaces run the current sidecar');
        expect(human.stdout).toContain('pod late/api-5f7c9-x8k2p (Deployment api) runs without a sidecar');
        expect(human.stdout).toContain('kubectl -n late rollout restart deployment/api');
      } finally {
        await kubectlOk(['label', 'namespace', 'late', 'istio-injection-']);
      }
    });

    it('reads the serving certificate from the Secret and counts the endpoints for a service webhook', async () => {
      // The installed form: clientConfig.service, the webhook's Secret and a Service with endpoints. The selector
      // matches no namespace, so the apiserver never calls it; check only reads what is stored.
      const serving = await issueServingCert(webhook.ca, {
        dnsNames: ['mesh-injector.mesh-injector.svc'],
        validityDays: 365,
      });
      await core.createNamespace({ body: { metadata: { name: 'mesh-injector' } } });
      await core.createNamespacedSecret({
        namespace: 'mesh-injector',
        body: {
          metadata: { name: 'mesh-injector-tls' },
          stringData: { 'ca.crt': webhook.ca.cert, 'tls.crt': serving.cert, 'tls.key': serving.key },
        },
      });
      await core.createNamespacedService({
        namespace: 'mesh-injector',
        body: { metadata: { name: 'mesh-injector' }, spec: { ports: [{ port: 443, targetPort: 9443 }] } },
      });
      const byService = localWebhookConfiguration({ url: webhook.url, caPem: webhook.ca.cert });
      byService.metadata.name = 'by-service';
      for (const hook of byService.webhooks) {
        hook.clientConfig = {
          service: { namespace: 'mesh-injector', name: 'mesh-injector', path: '/inject', port: 443 },
          caBundle: Buffer.from(webhook.ca.cert).toString('base64'),
        };
        (hook as { namespaceSelector?: unknown }).namespaceSelector = {
          matchLabels: { 'never-selected': 'true' },
        };
      }
      await kubectlOk(['apply', '-f', '-'], toYamlDocument(byService));

      const byServiceCheck = () => check('--webhook-configuration', 'by-service');
      const withoutEndpoints = await byServiceCheck();
      expect(statusOf(withoutEndpoints.report, 'serving-certificate')).toMatchObject({
        status: 'ok',
        details: expect.arrayContaining([
          expect.stringContaining('(Secret mesh-injector/mesh-injector-tls (key tls.crt), issuer'),
        ]),
      });
      expect(statusOf(withoutEndpoints.report, 'service-endpoints')).toMatchObject({
        status: 'fail',
        details: ['0 ready, 0 not ready'],
      });
      expect(withoutEndpoints.exitCode).toBe(1);

      await core.createNamespacedEndpoints({
        namespace: 'mesh-injector',
        body: {
          metadata: { name: 'mesh-injector' },
          // Never dialled (no namespace selects the webhook); loopback addresses are not allowed in Endpoints.
          subsets: [{ addresses: [{ ip: '192.0.2.10' }], ports: [{ port: 9443 }] }],
        },
      });
      const ready = await byServiceCheck();
      expect(statusOf(ready.report, 'service-endpoints')).toMatchObject({
        status: 'ok',
        details: ['1 ready, 0 not ready'],
      });
      expect(ready.exitCode).toBe(0);
    });

    it('lists a pod whose sidecar came from an older template as needing a restart, as a warning', async () => {
      // The webhook injected shop/web from the shipped configuration; the configuration has since moved on.
      const newer = await mkdtemp(join(tmpdir(), 'mesh-injector-newer-config-'));
      try {
        await cp(SHIPPED_CONFIG_DIR, newer, { recursive: true });
        const values = await readFile(join(newer, 'values.yaml'), 'utf8');
        expect(values).toContain('concurrency: 2');
        await writeFile(join(newer, 'values.yaml'), values.replace('concurrency: 2', 'concurrency: 4'));
        const { exitCode, report } = await check('--config', newer);
        expect(report.podsNeedingRestart).toEqual([
          expect.objectContaining({
            namespace: 'shop',
            pod: 'web',
            reason: 'older-template',
            detail: expect.stringMatching(
              /^runs a sidecar from template version [0-9a-f]{16}; the current one is [0-9a-f]{16}$/,
            ),
          }),
        ]);
        expect(statusOf(report, 'pods-need-restart')?.status).toBe('warn');
        expect(exitCode).toBe(0);
      } finally {
        await rm(newer, { recursive: true, force: true });
      }
    });

    it('fails with the reason when the apiserver cannot be reached', async () => {
      const result = await execa(
        process.execPath,
        [CLI_PATH, 'check', '--kubeconfig', '/nonexistent/kubeconfig'],
        {
          reject: false,
        },
      );
      expect(result.stdout).toContain('✗ the Kubernetes API answers');
      expect(result.stdout).toContain('/nonexistent/kubeconfig');
      expect(result.exitCode).toBe(1);
    });
  });

  describe('inject', () => {
    let injected: string;

    beforeAll(async () => {
      await core.createNamespace({
        body: { metadata: { name: 'offline', labels: { 'istio-injection': 'enabled' } } },
      });
      const result = await cli(['inject', '-f', ALL_KINDS]);
      if (result.exitCode !== 0) throw new Error(`inject failed: ${result.stderr}`);
      injected = result.stdout;
    });

    it('says which configuration it used, and one line per workload: the opted-out Deployment skipped', async () => {
      const result = await cli(['inject', '-f', ALL_KINDS]);
      const lines = result.stderr.split('\n');
      // No mesh-injector installed in this cluster: the packaged configuration, and why.
      expect(lines[0]).toMatch(
        /^config: the packaged .* \(no installed configuration: ConfigMap mesh-injector\/mesh-injector-config .*HTTP 404/,
      );
      // Every object left alone is named, with the reason.
      for (const skipped of [
        `skip: ${ALL_KINDS}: Service "hello-listed" (document 9, item 2): not injected: Service has no pod template to inject`,
        `skip: ${ALL_KINDS}: ConfigMap "hello-config" (document 10): not injected: ConfigMap has no pod template to inject`,
        `skip: ${ALL_KINDS}: Deployment "hello-opted-out" (document 11): not injected: sidecar.istio.io/inject is "false"`,
      ]) {
        expect(lines).toContain(skipped);
      }
      // Every workload kind in the fixture, documents 1 to 9 (the List's items included).
      expect(lines.filter((line) => line.startsWith('injected: ')).length).toBeGreaterThanOrEqual(9);
      expect(lines.filter((line) => line.startsWith('error: '))).toEqual([]);
    });

    it("reads the cluster's installed ConfigMap by default, as the webhook there would inject; --offline does not", async () => {
      // Its own namespace for the injector (--namespace), apart from what the check tests install.
      const namespace = 'installed-injector';
      await core.createNamespace({ body: { metadata: { name: namespace } } });
      const files = Object.fromEntries(
        await Promise.all(
          ['template.yaml', 'values.yaml', 'envoy.yaml'].map(
            async (name) => [name, await readFile(join(SHIPPED_CONFIG_DIR, name), 'utf8')] as const,
          ),
        ),
      );
      files['values.yaml'] = files['values.yaml']!.replace(
        /proxy: \S+/,
        'proxy: registry.example.com/cluster/envoy:from-configmap',
      );
      await core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name: 'mesh-injector-config' }, data: files },
      });
      try {
        const fromCluster = await cli(['inject', '--namespace', namespace, '-f', '-'], POD_MANIFEST);
        expect(fromCluster.exitCode, fromCluster.stderr).toBe(0);
        expect(fromCluster.stderr).toContain(
          `config: the cluster's, ConfigMap ${namespace}/mesh-injector-config`,
        );
        expect(fromCluster.stdout).toContain('registry.example.com/cluster/envoy:from-configmap');
        const offline = await cli(['inject', '--namespace', namespace, '--offline', '-f', '-'], POD_MANIFEST);
        expect(offline.exitCode, offline.stderr).toBe(0);
        expect(offline.stderr).toMatch(/^config: the packaged .*\(--offline\)$/m);
        expect(offline.stdout).not.toContain('from-configmap');
      } finally {
        await core.deleteNamespace({ name: namespace });
      }
    });

    it('writes objects of every kind that the apiserver accepts (server-side dry run)', async () => {
      const result = await controlPlane.kubectl(['apply', '--dry-run=server', '-n', 'offline', '-f', '-'], {
        input: injected,
      });
      expect(result.stderr).toBe('');
      expect(result.exitCode).toBe(0);
      for (const object of [
        'pod/hello-pod',
        'deployment.apps/hello-deployment',
        'statefulset.apps/hello-statefulset',
        'daemonset.apps/hello-daemonset',
        'replicaset.apps/hello-replicaset',
        'replicationcontroller/hello-replicationcontroller',
        'job.batch/hello-job',
        'cronjob.batch/hello-cronjob',
        'deployment.apps/hello-listed',
        'service/hello-listed',
        'configmap/hello-config',
        'deployment.apps/hello-opted-out',
      ]) {
        expect(result.stdout).toContain(`${object} created (server dry run)`);
      }
    });

    it('stores the injected pod templates, and the webhook re-injects the Pod without adding a second sidecar', async () => {
      await kubectlOk(['create', '-n', 'offline', '-f', '-'], injected);
      const template = (path: string) =>
        kubectlOk(['get', '-n', 'offline', ...path.split(' '), '-o', 'json']).then(
          (json) =>
            JSON.parse(json) as {
              spec: {
                template?: { metadata: { annotations?: Record<string, string> }; spec: PodSpecNames };
                jobTemplate?: {
                  spec: {
                    template: { metadata: { annotations?: Record<string, string> }; spec: PodSpecNames };
                  };
                };
              };
            },
        );
      interface PodSpecNames {
        containers: { name: string }[];
        initContainers?: { name: string }[];
      }
      const names = (spec: PodSpecNames) => ({
        initContainers: (spec.initContainers ?? []).map((c) => c.name),
        containers: spec.containers.map((c) => c.name),
      });
      const injectedNames = { initContainers: ['istio-init'], containers: ['hello', 'istio-proxy'] };
      for (const workload of [
        'deployment hello-deployment',
        'statefulset hello-statefulset',
        'daemonset hello-daemonset',
        'replicaset hello-replicaset',
        'replicationcontroller hello-replicationcontroller',
        'job hello-job',
        'deployment hello-listed',
      ]) {
        const stored = await template(workload);
        expect(names(stored.spec.template!.spec), workload).toEqual(injectedNames);
        expect(
          stored.spec.template!.metadata.annotations?.['sidecar.istio.io/status'],
          workload,
        ).toBeDefined();
      }
      const cronJob = await template('cronjob hello-cronjob');
      expect(names(cronJob.spec.jobTemplate!.spec.template.spec)).toEqual(injectedNames);
      const optedOut = await template('deployment hello-opted-out');
      expect(names(optedOut.spec.template!.spec)).toEqual({ initContainers: [], containers: ['hello'] });

      // The Pod went through the webhook too (its namespace is labelled): injecting it again changed nothing.
      const pod = await core.readNamespacedPod({ namespace: 'offline', name: 'hello-pod' });
      expect(names(pod.spec as PodSpecNames)).toEqual(injectedNames);
      expect(await webhook.logLine((line) => line.includes('hello-pod'))).toBeDefined();
    });

    it('refuses an invalid annotation with the fix, writing nothing to stdout', async () => {
      const bad =
        'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad}\nspec:\n  selector: {matchLabels: {app: bad}}\n' +
        '  template:\n    metadata:\n      labels: {app: bad}\n' +
        "      annotations: {traffic.sidecar.istio.io/includeInboundPorts: '8080;reboot'}\n" +
        '    spec:\n      containers: [{name: a, image: b}]\n';
      const result = await cli(['inject', '-f', '-'], bad);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(
        /^error: stdin: Deployment "bad" \(document 1\): invalid annotation traffic\.sidecar\.istio\.io\/includeInboundPorts: "8080;reboot" is not a port; fix: /m,
      );
      expect(result.exitCode).toBe(1);
    });
  });
});
