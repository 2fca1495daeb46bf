import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { certificateInfo, createCA, issueServingCert, verifyIssuedBy } from '../common/pki.js';
import {
  caBundleOf,
  decodeBundle,
  DEFAULT_POLICY,
  encodeBundle,
  executePlan,
  planCertificates,
  serviceDnsNames,
  type CertificateBundle,
} from './certificate-plan.js';

const policy = { ...DEFAULT_POLICY, dnsNames: serviceDnsNames('mesh-injector', 'mesh-injector') };
const DAY = 24 * 60 * 60 * 1000;

async function freshBundle(): Promise<CertificateBundle> {
  return executePlan({ action: 'create', reason: 'test' }, undefined, policy, new Date());
}

const later = (days: number) => new Date(Date.now() + days * DAY);

describe('planning the webhook certificates', () => {
  it("names the Service's DNS names", () => {
    expect(serviceDnsNames('mesh-injector', 'mesh-system')).toEqual([
      'mesh-injector',
      'mesh-injector.mesh-system',
      'mesh-injector.mesh-system.svc',
      'mesh-injector.mesh-system.svc.cluster.local',
    ]);
  });

  it('creates a CA and a serving certificate when the Secret is empty', async () => {
    expect(planCertificates(undefined, new Date(), policy).action).toBe('create');
    const bundle = await freshBundle();
    expect(verifyIssuedBy(bundle.serving.cert, bundle.ca.cert)).toBe(true);
    expect(new X509Certificate(bundle.serving.cert).checkHost('mesh-injector.mesh-injector.svc')).toBe(
      'mesh-injector.mesh-injector.svc',
    );
    expect(certificateInfo(bundle.serving.cert).notAfter.getTime()).toBeGreaterThan(later(364).getTime());
  });

  it('keeps valid certificates', async () => {
    expect(planCertificates(await freshBundle(), new Date(), policy)).toEqual({ action: 'keep' });
  });

  it('renews the serving certificate once less than a third of its life is left, with the same CA', async () => {
    const bundle = await freshBundle();
    expect(planCertificates(bundle, later(200), policy)).toEqual({ action: 'keep' });
    const plan = planCertificates(bundle, later(250), policy);
    expect(plan.action).toBe('issue-serving');
    if (plan.action === 'keep') return;
    const renewed = await executePlan(plan, bundle, policy, later(250));
    expect(renewed.ca).toEqual(bundle.ca);
    expect(renewed.serving.cert).not.toBe(bundle.serving.cert);
  });

  it('reissues a serving certificate that lacks a DNS name or was not issued by the CA', async () => {
    const bundle = await freshBundle();
    const other = await createCA({ commonName: 'other' });
    const foreign = await issueServingCert(other, { dnsNames: policy.dnsNames });
    expect(planCertificates({ ...bundle, serving: foreign }, new Date(), policy).action).toBe(
      'issue-serving',
    );
    const narrow = await issueServingCert(bundle.ca, { dnsNames: ['mesh-injector'] });
    const plan = planCertificates({ ...bundle, serving: narrow }, new Date(), policy);
    expect(plan).toMatchObject({
      action: 'issue-serving',
      reason: expect.stringContaining('mesh-injector.mesh-injector.svc'),
    });
  });

  it('rotates the CA before it expires and keeps the old one trusted until it does', async () => {
    const bundle = await freshBundle();
    const when = later(3000);
    const plan = planCertificates(bundle, when, policy);
    expect(plan.action).toBe('rotate-ca');
    if (plan.action === 'keep') return;
    const rotated = await executePlan(plan, bundle, policy, when);
    expect(rotated.ca.cert).not.toBe(bundle.ca.cert);
    expect(verifyIssuedBy(rotated.serving.cert, rotated.ca.cert)).toBe(true);
    expect(rotated.previousCaCerts).toEqual([bundle.ca.cert]);
    const trusted = caBundleOf(rotated, when);
    expect(trusted).toContain(rotated.ca.cert.trim());
    expect(trusted).toContain(bundle.ca.cert.trim());
    expect(caBundleOf(rotated, later(3700))).not.toContain(bundle.ca.cert.trim());
  });

  it('starts over when the Secret holds something that does not parse', async () => {
    const bundle = await freshBundle();
    expect(
      planCertificates({ ...bundle, ca: { ...bundle.ca, cert: 'garbage' } }, new Date(), policy).action,
    ).toBe('create');
    expect(decodeBundle({ 'tls.crt': 'x' })).toBeUndefined();
  });

  it('round-trips through the Secret encoding', async () => {
    const bundle = await freshBundle();
    const rotated = await executePlan({ action: 'rotate-ca', reason: 'test' }, bundle, policy, new Date());
    expect(decodeBundle(encodeBundle(rotated))).toEqual(rotated);
  });
});
