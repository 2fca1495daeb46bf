import { describe, expect, it } from 'vitest';
import { evaluatePreChecks, INSTALLED_RESOURCES, type PreSnapshot } from './check-pre.js';

const CLEAN: PreSnapshot = {
  serverVersion: { major: '1', minor: '30', gitVersion: 'v1.30.4' },
  forbidden: [],
  webhookConfigurations: [
    {
      name: 'cert-manager-webhook',
      webhooks: [{ name: 'webhook.cert-manager.io', selectorKeys: ['cert-manager.io/disable-validation'] }],
    },
  ],
};

const statuses = (snapshot: PreSnapshot) =>
  evaluatePreChecks(snapshot).checks.map((check) => [check.id, check.status]);

describe('mesh-injector check --pre', () => {
  it('passes on a supported cluster where the installer may create everything and no injector is present', () => {
    expect(statuses(CLEAN)).toEqual([
      ['pre-kubernetes-version', 'ok'],
      ['pre-installer-rbac', 'ok'],
      ['pre-no-other-injector', 'ok'],
    ]);
    expect(evaluatePreChecks(CLEAN).ok).toBe(true);
  });

  it('fails when the installer may not create something, naming it', () => {
    const report = evaluatePreChecks({ ...CLEAN, forbidden: ['rbac.authorization.k8s.io/clusterroles'] });
    expect(report.ok).toBe(false);
    expect(report.checks[1]!.details).toEqual([
      'create rbac.authorization.k8s.io/clusterroles is not allowed',
    ]);
  });

  it("warns about Istio's injector, or any webhook selecting istio-injection or istio.io/rev, but not about itself", () => {
    const report = evaluatePreChecks({
      ...CLEAN,
      webhookConfigurations: [
        ...CLEAN.webhookConfigurations,
        {
          name: 'istio-sidecar-injector',
          webhooks: [{ name: 'rev.namespace.sidecar-injector.istio.io', selectorKeys: [] }],
        },
        { name: 'other', webhooks: [{ name: 'inject.example.com', selectorKeys: ['istio.io/rev'] }] },
        {
          name: 'mesh-injector',
          webhooks: [
            { name: 'rev.namespace.sidecar-injector.mesh-injector.io', selectorKeys: ['istio-injection'] },
          ],
        },
      ],
    });
    const check = report.checks.find((c) => c.id === 'pre-no-other-injector')!;
    expect(check.status).toBe('warn');
    expect(check.details).toEqual([
      'MutatingWebhookConfiguration istio-sidecar-injector: webhook rev.namespace.sidecar-injector.istio.io',
      'MutatingWebhookConfiguration other: webhook inject.example.com',
    ]);
    expect(report.ok).toBe(true);
  });

  it('checks create on every kind manifests/ installs', () => {
    expect(INSTALLED_RESOURCES.map((r) => r.resource)).toEqual(
      expect.arrayContaining([
        'namespaces',
        'deployments',
        'clusterroles',
        'mutatingwebhookconfigurations',
        'resourcequotas',
      ]),
    );
  });
});
