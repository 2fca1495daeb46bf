/**
 * A small X.509 toolkit: a certificate authority, serving and client certificates signed by it, and helpers to read
 * certificates back. Keys are ECDSA P-256, which Go's crypto/tls (kube-apiserver, kubectl) accepts on both ends of a
 * connection. Every certificate and key goes in and out as PEM, so values can be written to files and Secrets as is.
 */
import { X509Certificate as NodeX509Certificate, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export interface CertificateAndKey {
  /** PEM `CERTIFICATE`. */
  cert: string;
  /** PEM `PRIVATE KEY` (PKCS#8). */
  key: string;
}

/** A CA is a certificate and key like any other; the name says which role a value plays. */
export type CertificateAuthority = CertificateAndKey;

export interface CertificateInfo {
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  ipAddresses: string[];
}

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' };
const DEFAULT_VALIDITY_DAYS = 365;
const DAY_MS = 24 * 60 * 60 * 1000;
/** notBefore is backdated so that a peer whose clock runs a little behind ours still accepts a fresh certificate. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

export async function createCA(options: {
  commonName: string;
  validityDays?: number;
}): Promise<CertificateAuthority> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: [{ CN: [options.commonName] }],
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    ...validity(options.validityDays),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem'), key: await exportPrivateKey(keys.privateKey) };
}

/** A TLS server certificate; Go has ignored the subject's CN since 1.15, so at least one SAN is required. */
export async function issueServingCert(
  ca: CertificateAuthority,
  options: { dnsNames?: string[]; ipAddresses?: string[]; validityDays?: number },
): Promise<CertificateAndKey> {
  const dnsNames = options.dnsNames ?? [];
  const ipAddresses = options.ipAddresses ?? [];
  const firstName = dnsNames[0] ?? ipAddresses[0];
  if (firstName === undefined)
    throw new Error('a serving certificate needs at least one DNS name or IP address');
  return issue(ca, {
    subject: [{ CN: [firstName] }],
    validityDays: options.validityDays,
    keyUsages: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    extendedKeyUsage: x509.ExtendedKeyUsage.serverAuth,
    subjectAltNames: [
      ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
      ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
    ],
  });
}

/** A TLS client certificate; kube-apiserver reads the user name from CN and the groups from each O. */
export async function issueClientCert(
  ca: CertificateAuthority,
  options: { commonName: string; organizations?: string[]; validityDays?: number },
): Promise<CertificateAndKey> {
  const organizations = options.organizations ?? [];
  return issue(ca, {
    subject: [...organizations.map((organization) => ({ O: [organization] })), { CN: [options.commonName] }],
    validityDays: options.validityDays,
    keyUsages: x509.KeyUsageFlags.digitalSignature,
    extendedKeyUsage: x509.ExtendedKeyUsage.clientAuth,
    subjectAltNames: [],
  });
}

export function certificateInfo(certPem: string): CertificateInfo {
  const cert = new x509.X509Certificate(certPem);
  const names = cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [];
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    dnsNames: names.filter((name) => name.type === 'dns').map((name) => name.value),
    ipAddresses: names.filter((name) => name.type === 'ip').map((name) => name.value),
  };
}

/** True when `caPem`'s subject is the certificate's issuer and its key made the certificate's signature. */
export function verifyIssuedBy(certPem: string, caPem: string): boolean {
  const cert = new NodeX509Certificate(certPem);
  const ca = new NodeX509Certificate(caPem);
  return cert.checkIssued(ca) && cert.verify(ca.publicKey);
}

interface IssueRequest {
  subject: x509.JsonName;
  validityDays: number | undefined;
  keyUsages: x509.KeyUsageFlags;
  extendedKeyUsage: x509.ExtendedKeyUsage;
  subjectAltNames: x509.JsonGeneralNames;
}

async function issue(ca: CertificateAuthority, request: IssueRequest): Promise<CertificateAndKey> {
  const caCert = new x509.X509Certificate(ca.cert);
  const keys = await generateKeyPair();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(request.keyUsages, true),
    new x509.ExtendedKeyUsageExtension([request.extendedKeyUsage]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
  ];
  if (request.subjectAltNames.length > 0) {
    extensions.push(new x509.SubjectAlternativeNameExtension(request.subjectAltNames));
  }
  const cert = await x509.X509CertificateGenerator.create({
    subject: request.subject,
    issuer: caCert.subject,
    publicKey: keys.publicKey,
    signingKey: await importPrivateKey(ca.key),
    signingAlgorithm: SIGNING_ALGORITHM,
    ...validity(request.validityDays),
    extensions,
  });
  return { cert: cert.toString('pem'), key: await exportPrivateKey(keys.privateKey) };
}

function validity(validityDays = DEFAULT_VALIDITY_DAYS): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - CLOCK_SKEW_MS), notAfter: new Date(now + validityDays * DAY_MS) };
}

function generateKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

async function exportPrivateKey(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

function importPrivateKey(pem: string): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(pem), KEY_ALGORITHM, false, [
    'sign',
  ]);
}
