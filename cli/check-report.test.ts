import type { V1Pod } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCA, issueServingCert, type CertificateAuthority } from '../common/pki.js';
import { DEFAULT_VALUES } from '../webhook/values.js';
import { formatReport } from './check-output.js';
import {
  evaluateChecks,
  kubernetesVersionCheck,
  type CheckReport,
  type ClusterSnapshot,
  type WebhookClient,
} from './check-report.js';

const NOW = new Date();
const DAY = 24 * 60 * 60 * 1000;
const SERVICE_HOST = 'mesh-injector.mesh-injector.svc';
const WEBHOOK_NAMES = ['rev.namespace', 'rev.object', 'namespace', 'object'].map(
  (prefix) => `${prefix}.sidecar-injector.mesh-injector.io`,
);

let ca: CertificateAuthority;
let serving: string;
let otherCa: CertificateAuthority;

beforeAll(async () => {
  [ca, otherCa] = await Promise.all([
    createCA({ commonName: 'test CA' }),
    createCA({ commonName: 'other CA' }),
  ]);
  serving = (await issueServingCert(ca, { dnsNames: [SERVICE_HOST], validityDays: 365 })).cert;
});

const base64 = (pem: string) => Buffer.from(pem).toString('base64');

function webhooks(overrides: Partial<WebhookClient> = {}): WebhookClient[] {
  return WEBHOOK_NAMES.map((name) => ({
    name,
    service: { namespace: 'mesh-injector', name: 'mesh-injector' },
    caBundle: base64(ca.cert),
    ...overrides,
  }));
}

function pod(
  namespace: string,
  name: string,
  options: {
    injected?: boolean;
    status?: Record<string, unknown>;
    owner?: [string, string];
    labels?: Record<string, string>;
  } = {},
): V1Pod {
  const injected = options.injected ?? true;
  const status = options.status ?? {
    initContainers: ['istio-init'],
    containers: ['istio-proxy'],
    volumes: ['istio-envoy'],
    imagePullSecrets: null,
    revision: 'default',
    version: 'current0version0',
  };
  return {
    metadata: {
      namespace,
      name,
      labels: options.labels ?? {},
      annotations: injected ? { 'sidecar.istio.io/status': JSON.stringify(status) } : {},
      ...(options.owner
        ? {
            ownerReferences: [
              {
                apiVersion: 'apps/v1',
                kind: options.owner[0],
                name: options.owner[1],
                uid: 'u',
                controller: true,
              },
            ],
          }
        : {}),
    },
    spec: {
      containers: [{ name: 'app' }, ...(injected ? [{ name: 'istio-proxy' }] : [])],
      initContainers: injected ? [{ name: 'istio-init' }] : [],
    },
    status: { phase: 'Running' },
  };
}

/** A healthy installation, by service: everything passes. */
function healthy(overrides: Partial<ClusterSnapshot> = {}): ClusterSnapshot {
  return {
    now: NOW,
    names: {
      namespace: 'mesh-injector',
      service: 'mesh-injector',
      webhookConfiguration: 'mesh-injector',
      secret: 'mesh-injector-tls',
    },
    serverVersion: { major: '1', minor: '30', gitVersion: 'v1.30.4' },
    webhookConfiguration: { webhooks: webhooks() },
    servingCertificates: [
      {
        source: 'Secret mesh-injector/mesh-injector-tls (key tls.crt)',
        host: SERVICE_HOST,
        webhooks: WEBHOOK_NAMES,
        pem: serving,
      },
    ],
    service: { exists: true, readyEndpoints: 2, notReadyEndpoints: 0 },
    namespaces: [
      { name: 'shop', labels: { 'istio-injection': 'enabled' } },
      { name: 'billing', labels: { 'istio.io/rev': 'default' } },
      { name: 'canary', labels: { 'istio.io/rev': 'canary' } },
      { name: 'plain', labels: {} },
      { name: 'kube-system', labels: { 'istio-injection': 'enabled' } },
    ],
    pods: [pod('shop', 'web-1'), pod('billing', 'ledger-0')],
    replicaSets: [],
    injector: {
      revision: 'default',
      templateVersion: 'current0version0',
      decision: DEFAULT_VALUES,
      source: 'manifests/config',
    },
    ...overrides,
  };
}

function check(report: CheckReport, id: string) {
  const found = report.checks.find((c) => c.id === id);
  if (!found) throw new Error(`no check ${id}`);
  return found;
}

describe('evaluateChecks on a healthy installation', () => {
  it('passes every check and the report is ok', () => {
    const report = evaluateChecks(healthy());
    expect(report.checks.map((c) => [c.id, c.status])).toEqual([
      ['kubernetes-version', 'ok'],
      ['webhook-configuration', 'ok'],
      ['ca-bundle', 'ok'],
      ['serving-certificate', 'ok'],
      ['certificate-expiry', 'ok'],
      ['service-endpoints', 'ok'],
      ['injection-namespaces', 'ok'],
      ['pods-need-restart', 'ok'],
    ]);
    expect(report.ok).toBe(true);
    expect(report.podsNeedingRestart).toEqual([]);
  });

  it('lists the namespaces selected by istio-injection=enabled or istio.io/rev=<revision>, not another revision or kube-system', () => {
    expect(evaluateChecks(healthy()).injectionNamespaces).toEqual([
      { name: 'shop', selectedBy: 'istio-injection=enabled' },
      { name: 'billing', selectedBy: 'istio.io/rev=default' },
    ]);
  });

  it('says n/a for the Service when the webhooks are configured by url', () => {
    const snapshot = healthy({
      webhookConfiguration: {
        webhooks: webhooks({ service: undefined, url: 'https://127.0.0.1:9443/inject' }),
      },
      servingCertificates: [
        {
          source: 'https://127.0.0.1:9443/inject (TLS handshake)',
          host: '127.0.0.1',
          webhooks: WEBHOOK_NAMES,
          pem: serving,
        },
      ],
      service: undefined,
    });
    const report = evaluateChecks(snapshot);
    expect(check(report, 'service-endpoints')).toMatchObject({
      status: 'skip',
      details: ['n/a: webhook configured by url'],
    });
  });
});

describe('evaluateChecks on the webhook configuration and its certificate', () => {
  it('fails when the MutatingWebhookConfiguration does not exist, and skips what depends on it', () => {
    const report = evaluateChecks(healthy({ webhookConfiguration: undefined, servingCertificates: [] }));
    expect(check(report, 'webhook-configuration')).toMatchObject({
      status: 'fail',
      description: 'the MutatingWebhookConfiguration mesh-injector exists',
      details: ['it does not exist'],
      hint: expect.stringContaining('kubectl apply -k manifests/'),
    });
    expect(
      ['ca-bundle', 'serving-certificate', 'certificate-expiry', 'service-endpoints'].map(
        (id) => check(report, id).status,
      ),
    ).toEqual(['skip', 'skip', 'skip', 'skip']);
    expect(report.ok).toBe(false);
  });

  it('fails naming each webhook without a caBundle', () => {
    const hooks = webhooks();
    delete hooks[2]!.caBundle;
    const report = evaluateChecks(healthy({ webhookConfiguration: { webhooks: hooks } }));
    expect(check(report, 'ca-bundle')).toMatchObject({
      status: 'fail',
      details: ['webhook namespace.sidecar-injector.mesh-injector.io has no clientConfig.caBundle'],
      hint: expect.stringContaining('--manage-certificates'),
    });
    // The others still verify.
    expect(check(report, 'serving-certificate').status).toBe('ok');
    expect(report.ok).toBe(false);
  });

  it('fails when no CA in the caBundle issued the serving certificate', () => {
    const report = evaluateChecks(
      healthy({ webhookConfiguration: { webhooks: webhooks({ caBundle: base64(otherCa.cert) }) } }),
    );
    const result = check(report, 'serving-certificate');
    expect(result.status).toBe('fail');
    expect(result.details).toHaveLength(4);
    expect(result.details[0]).toMatch(
      /^webhook rev\.namespace\.sidecar-injector\.mesh-injector\.io: no CA in its caBundle \(1 certificates\) issued the serving certificate from Secret mesh-injector\/mesh-injector-tls/,
    );
  });

  it('accepts a caBundle that holds the old CA beside the one that issued the certificate (rotation)', () => {
    const report = evaluateChecks(
      healthy({ webhookConfiguration: { webhooks: webhooks({ caBundle: base64(otherCa.cert + ca.cert) }) } }),
    );
    expect(check(report, 'serving-certificate').status).toBe('ok');
  });

  it('fails when the certificate is not valid for the name the apiserver connects to', () => {
    const report = evaluateChecks(
      healthy({
        servingCertificates: [
          { source: 'Secret x', host: 'other.mesh-injector.svc', webhooks: WEBHOOK_NAMES, pem: serving },
        ],
      }),
    );
    expect(check(report, 'serving-certificate').details).toContain(
      'the serving certificate from Secret x is not valid for other.mesh-injector.svc, the name the apiserver connects to',
    );
  });

  it('fails, saying where it looked, when the serving certificate cannot be read', () => {
    const report = evaluateChecks(
      healthy({
        servingCertificates: [
          {
            source: 'Secret mesh-injector/mesh-injector-tls (key tls.crt)',
            host: SERVICE_HOST,
            webhooks: WEBHOOK_NAMES,
            error: 'the Secret does not exist',
          },
        ],
      }),
    );
    expect(check(report, 'serving-certificate')).toMatchObject({
      status: 'fail',
      details: [
        'could not read the serving certificate from Secret mesh-injector/mesh-injector-tls (key tls.crt): the Secret does not exist',
      ],
    });
    expect(check(report, 'certificate-expiry').status).toBe('skip');
  });

  it('fails when the certificate expires within 30 days, naming the date', async () => {
    const soon = (await issueServingCert(ca, { dnsNames: [SERVICE_HOST], validityDays: 10 })).cert;
    const report = evaluateChecks(
      healthy({
        servingCertificates: [{ source: 'S', host: SERVICE_HOST, webhooks: WEBHOOK_NAMES, pem: soon }],
      }),
    );
    const result = check(report, 'certificate-expiry');
    expect(result.status).toBe('fail');
    expect(result.details[0]).toMatch(
      /^the serving certificate from S expires at \d{4}-\d\d-\d\dT.*Z \(in (9|10) days\)$/,
    );
    expect(report.ok).toBe(false);
  });

  it('warns, with a hint that applies, when a webhook reached by url has a short-lived certificate (npm start)', async () => {
    const day = (await issueServingCert(ca, { ipAddresses: ['127.0.0.1'], validityDays: 1 })).cert;
    const report = evaluateChecks(
      healthy({
        webhookConfiguration: {
          webhooks: webhooks({ service: undefined, url: 'https://127.0.0.1:9443/inject' }),
        },
        servingCertificates: [{ source: 'U', host: '127.0.0.1', webhooks: WEBHOOK_NAMES, pem: day }],
        service: undefined,
        now: new Date(),
      }),
    );
    const result = check(report, 'certificate-expiry');
    expect(result.status).toBe('warn');
    expect(result.details[0]).toMatch(/\(in (2[0-3]|1\d|\d) hours\)$/);
    expect(result.hint).toContain('reached by url');
    expect(result.hint).not.toContain('deploy/');
  });

  it('passes at 31 days and fails once expired', async () => {
    const month = (await issueServingCert(ca, { dnsNames: [SERVICE_HOST], validityDays: 31 })).cert;
    const certificates = [{ source: 'S', host: SERVICE_HOST, webhooks: WEBHOOK_NAMES, pem: month }];
    expect(
      check(evaluateChecks(healthy({ servingCertificates: certificates })), 'certificate-expiry').status,
    ).toBe('ok');
    const later = new Date(NOW.getTime() + 40 * DAY);
    expect(
      check(evaluateChecks(healthy({ servingCertificates: certificates, now: later })), 'certificate-expiry')
        .details[0],
    ).toMatch(/expired at/);
  });
});

describe('evaluateChecks on the Service', () => {
  it('fails when the Service has no ready endpoint', () => {
    const report = evaluateChecks(
      healthy({ service: { exists: true, readyEndpoints: 0, notReadyEndpoints: 2 } }),
    );
    expect(check(report, 'service-endpoints')).toMatchObject({
      status: 'fail',
      details: ['0 ready, 2 not ready'],
    });
  });

  it('fails when the Service does not exist', () => {
    const report = evaluateChecks(
      healthy({ service: { exists: false, readyEndpoints: 0, notReadyEndpoints: 0 } }),
    );
    expect(check(report, 'service-endpoints')).toMatchObject({
      status: 'fail',
      details: ['the Service does not exist'],
    });
  });
});

describe('evaluateChecks on namespaces and pods', () => {
  it('warns, without failing, when no namespace is labelled', () => {
    const report = evaluateChecks(healthy({ namespaces: [{ name: 'plain', labels: {} }], pods: [] }));
    expect(check(report, 'injection-namespaces')).toMatchObject({
      status: 'warn',
      hint: expect.stringContaining('kubectl label namespace'),
    });
    expect(report.ok).toBe(true);
  });

  it('lists a pod without a sidecar with its Deployment (through its ReplicaSet), and fails', () => {
    const report = evaluateChecks(
      healthy({
        pods: [pod('shop', 'web-7d4b9-x2x', { injected: false, owner: ['ReplicaSet', 'web-7d4b9'] })],
        replicaSets: [
          {
            namespace: 'shop',
            name: 'web-7d4b9',
            ownerReferences: [
              { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'd', controller: true },
            ],
          },
        ],
      }),
    );
    expect(report.podsNeedingRestart).toEqual([
      {
        namespace: 'shop',
        pod: 'web-7d4b9-x2x',
        reason: 'no-sidecar',
        detail: expect.stringContaining('without a sidecar'),
        owner: { kind: 'Deployment', name: 'web' },
      },
    ]);
    expect(check(report, 'pods-need-restart')).toMatchObject({
      status: 'fail',
      hint: expect.stringContaining('kubectl -n shop rollout restart deployment/web'),
    });
    expect(report.ok).toBe(false);
  });

  it('names the controller of a pod it cannot trace to a Deployment, and a bare pod by itself', () => {
    const report = evaluateChecks(
      healthy({
        pods: [
          pod('shop', 'db-0', { injected: false, owner: ['StatefulSet', 'db'] }),
          pod('shop', 'lonely', { injected: false }),
        ],
      }),
    );
    expect(report.podsNeedingRestart.map((p) => [p.pod, p.owner])).toEqual([
      ['db-0', { kind: 'StatefulSet', name: 'db' }],
      ['lonely', undefined],
    ]);
    expect(check(report, 'pods-need-restart').hint).toContain('kubectl -n shop delete pod lonely');
  });

  it('does not list pods the webhook skips: opted out, host network, finished, or outside injection namespaces', () => {
    const optedOut = pod('shop', 'opted-out', {
      injected: false,
      labels: { 'sidecar.istio.io/inject': 'false' },
    });
    const hostNetwork = pod('shop', 'host', { injected: false });
    hostNetwork.spec!.hostNetwork = true;
    const finished = pod('shop', 'done', { injected: false });
    finished.status = { phase: 'Succeeded' };
    const elsewhere = pod('plain', 'outside', { injected: false });
    const report = evaluateChecks(healthy({ pods: [optedOut, hostNetwork, finished, elsewhere] }));
    expect(report.podsNeedingRestart).toEqual([]);
    expect(check(report, 'pods-need-restart').status).toBe('ok');
  });

  it('warns about a sidecar from an older template version, without failing', () => {
    const old = pod('shop', 'web-old', {
      status: {
        containers: ['istio-proxy'],
        initContainers: ['istio-init'],
        revision: 'default',
        version: 'older00version00',
      },
    });
    const report = evaluateChecks(healthy({ pods: [old] }));
    expect(report.podsNeedingRestart).toEqual([
      expect.objectContaining({
        pod: 'web-old',
        reason: 'older-template',
        detail: expect.stringContaining('older00version00'),
      }),
    ]);
    expect(check(report, 'pods-need-restart').status).toBe('warn');
    expect(report.ok).toBe(true);
  });

  it('warns about a sidecar from another revision', () => {
    const other = pod('shop', 'web-rev', { status: { containers: ['istio-proxy'], revision: 'canary' } });
    expect(evaluateChecks(healthy({ pods: [other] })).podsNeedingRestart[0]?.reason).toBe('other-revision');
  });

  it('cannot date a sidecar whose status has no version (injected before versions were recorded), so does not list it', () => {
    const unversioned = pod('shop', 'web-unversioned', {
      status: { containers: ['istio-proxy'], revision: 'default' },
    });
    expect(evaluateChecks(healthy({ pods: [unversioned] })).podsNeedingRestart).toEqual([]);
  });

  it('lists a pod whose status names a sidecar it does not run (the proxy was removed by hand)', () => {
    const stripped = pod('shop', 'stripped');
    stripped.spec!.containers = [{ name: 'app' }];
    expect(evaluateChecks(healthy({ pods: [stripped] })).podsNeedingRestart[0]?.reason).toBe('no-sidecar');
  });
});

describe('evaluateChecks when the apiserver does not answer', () => {
  it('fails the API check with the error and skips the rest', () => {
    const report = evaluateChecks(
      healthy({ apiError: 'listing namespaces: connect ECONNREFUSED 127.0.0.1:6443' }),
    );
    expect(report.checks[0]).toMatchObject({
      id: 'kubernetes-api',
      status: 'fail',
      details: ['listing namespaces: connect ECONNREFUSED 127.0.0.1:6443'],
    });
    expect(report.checks.slice(1).every((c) => c.status === 'skip')).toBe(true);
    expect(report.ok).toBe(false);
  });
});

describe('formatReport', () => {
  it('prints a ✓ line per passing check and a summary', () => {
    const text = formatReport(evaluateChecks(healthy()));
    expect(text).toContain(
      '✓ the MutatingWebhookConfiguration mesh-injector exists [webhook-configuration]\n',
    );
    expect(text).not.toContain('✗');
    expect(text).not.toContain('hint:');
    expect(text.trimEnd().split('\n').at(-1)).toBe('Status check results are ✓');
  });

  it('prints ✗ with the details and a hint under a failure', () => {
    const text = formatReport(
      evaluateChecks(healthy({ webhookConfiguration: undefined, servingCertificates: [] })),
    );
    expect(text).toContain(
      '✗ the MutatingWebhookConfiguration mesh-injector exists [webhook-configuration]\n    it does not exist\n    hint: install it: kubectl apply -k manifests/',
    );
    expect(text.trimEnd().split('\n').at(-1)).toBe('Status check results are ✗ (1 failed)');
  });
});

describe('the Kubernetes version check', () => {
  it('passes from 1.21 on, including managed minors such as "27+"', () => {
    for (const [major, minor] of [
      ['1', '21'],
      ['1', '27+'],
      ['2', '0'],
    ]) {
      expect(kubernetesVersionCheck({ major: major!, minor: minor!, gitVersion: 'v' }).status).toBe('ok');
    }
  });

  it('warns on 1.20, naming the version and the label to add', () => {
    const result = kubernetesVersionCheck({ major: '1', minor: '20', gitVersion: 'v1.20.2' });
    expect(result).toMatchObject({
      id: 'kubernetes-version',
      status: 'warn',
      details: ['the apiserver is v1.20.2'],
    });
    expect(result.hint).toContain('kubernetes.io/metadata.name');
  });
});
