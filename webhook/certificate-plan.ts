/**
 * Self-managed webhook certificates, decided: given what the Secret holds and the time, what must be issued.
 * Pure but for the issuing itself, so every branch is testable with a chosen clock.
 */
import {
  certificateInfo,
  createCA,
  issueServingCert,
  verifyIssuedBy,
  type CertificateAuthority,
} from '../common/pki.js';

export const SECRET_KEYS = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  servingCert: 'tls.crt',
  servingKey: 'tls.key',
  /** CAs that signed serving certificates still in use somewhere, kept in the caBundle until they expire. */
  previousCaCerts: 'ca-previous.crt',
} as const;

export interface CertificateBundle {
  ca: CertificateAuthority;
  serving: { cert: string; key: string };
  previousCaCerts: string[];
}

export interface CertificatePolicy {
  /** The Service's DNS names, e.g. mesh-injector.mesh-injector.svc. */
  dnsNames: string[];
  caValidityDays: number;
  servingValidityDays: number;
  /** Renew once less than this fraction of a certificate's lifetime is left. */
  renewBeforeFraction: number;
}

export const DEFAULT_POLICY: Omit<CertificatePolicy, 'dnsNames'> = {
  caValidityDays: 3650,
  servingValidityDays: 365,
  renewBeforeFraction: 1 / 3,
};

export type Plan =
  | { action: 'keep' }
  | { action: 'create'; reason: string }
  | { action: 'rotate-ca'; reason: string }
  | { action: 'issue-serving'; reason: string };

export function serviceDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

export function decodeBundle(
  data: Readonly<Record<string, string>> | undefined,
): CertificateBundle | undefined {
  const caCert = data?.[SECRET_KEYS.caCert];
  const caKey = data?.[SECRET_KEYS.caKey];
  const cert = data?.[SECRET_KEYS.servingCert];
  const key = data?.[SECRET_KEYS.servingKey];
  if (!caCert || !caKey || !cert || !key) return undefined;
  return {
    ca: { cert: caCert, key: caKey },
    serving: { cert, key },
    previousCaCerts: splitPem(data?.[SECRET_KEYS.previousCaCerts] ?? ''),
  };
}

export function encodeBundle(bundle: CertificateBundle): Record<string, string> {
  return {
    [SECRET_KEYS.caCert]: bundle.ca.cert,
    [SECRET_KEYS.caKey]: bundle.ca.key,
    [SECRET_KEYS.servingCert]: bundle.serving.cert,
    [SECRET_KEYS.servingKey]: bundle.serving.key,
    [SECRET_KEYS.previousCaCerts]: bundle.previousCaCerts.join(''),
  };
}

export function planCertificates(
  bundle: CertificateBundle | undefined,
  now: Date,
  policy: CertificatePolicy,
): Plan {
  if (!bundle) return { action: 'create', reason: 'no certificate yet' };
  let ca: ReturnType<typeof certificateInfo>;
  let serving: ReturnType<typeof certificateInfo>;
  try {
    ca = certificateInfo(bundle.ca.cert);
    serving = certificateInfo(bundle.serving.cert);
  } catch {
    return { action: 'create', reason: 'the stored certificates do not parse' };
  }
  if (dueForRenewal(ca, now, policy))
    return { action: 'rotate-ca', reason: `the CA expires at ${ca.notAfter.toISOString()}` };
  if (!verifyIssuedBy(bundle.serving.cert, bundle.ca.cert)) {
    return { action: 'issue-serving', reason: 'the serving certificate was not issued by the CA' };
  }
  const missing = policy.dnsNames.filter((name) => !serving.dnsNames.includes(name));
  if (missing.length > 0)
    return { action: 'issue-serving', reason: `the serving certificate lacks ${missing.join(', ')}` };
  if (dueForRenewal(serving, now, policy)) {
    return {
      action: 'issue-serving',
      reason: `the serving certificate expires at ${serving.notAfter.toISOString()}`,
    };
  }
  return { action: 'keep' };
}

/** Carries out a plan; a rotated CA stays trusted, as a previous CA, until it expires. */
export async function executePlan(
  plan: Exclude<Plan, { action: 'keep' }>,
  current: CertificateBundle | undefined,
  policy: CertificatePolicy,
  now: Date,
): Promise<CertificateBundle> {
  const ca =
    plan.action === 'issue-serving' && current
      ? current.ca
      : await createCA({ commonName: `mesh-injector-ca-${Date.now()}`, validityDays: policy.caValidityDays });
  const serving = await issueServingCert(ca, {
    dnsNames: policy.dnsNames,
    validityDays: policy.servingValidityDays,
  });
  const previousCaCerts =
    plan.action === 'rotate-ca' && current
      ? [current.ca.cert, ...current.previousCaCerts]
      : (current?.previousCaCerts ?? []);
  return { ca, serving, previousCaCerts: plan.action === 'create' ? [] : unexpired(previousCaCerts, now) };
}

/** What the MutatingWebhookConfiguration must trust: the CA, then every previous CA not yet expired. */
export function caBundleOf(bundle: CertificateBundle, now: Date): string {
  return [bundle.ca.cert, ...unexpired(bundle.previousCaCerts, now)]
    .map((pem) => (pem.endsWith('\n') ? pem : `${pem}\n`))
    .join('');
}

function unexpired(pems: string[], now: Date): string[] {
  return pems.filter((pem) => {
    try {
      return certificateInfo(pem).notAfter > now;
    } catch {
      return false;
    }
  });
}

function dueForRenewal(
  info: { notBefore: Date; notAfter: Date },
  now: Date,
  policy: CertificatePolicy,
): boolean {
  const lifetime = info.notAfter.getTime() - info.notBefore.getTime();
  return info.notAfter.getTime() - now.getTime() < lifetime * policy.renewBeforeFraction;
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}
