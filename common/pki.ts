/**
 * A small X.509 toolkit: a certificate authority, serving and client certificates signed by it, and helpers to read
 * certificates back. Keys are ECDSA P-256 by default, which Go's crypto/tls (kube-apiserver, kubectl) accepts on both
 * ends of a connection, and whose signature makes a server's TLS handshake several times cheaper than an RSA-2048
 * key's (bench section 6); RSA-2048 is there to measure that against. Every certificate and key goes in and out as PEM, so values can be written to files and Secrets as is.
 */
import { createPrivateKey, X509Certificate as NodeX509Certificate, webcrypto } from 'node:crypto';
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

export type KeyType = 'ecdsa-p256' | 'rsa-2048';

interface KeyAlgorithm {
  key: webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams;
  signing: webcrypto.EcdsaParams | webcrypto.Algorithm;
}

const KEY_ALGORITHMS: Record<KeyType, KeyAlgorithm> = {
  'ecdsa-p256': {
    key: { name: 'ECDSA', namedCurve: 'P-256' },
    signing: { name: 'ECDSA', hash: 'SHA-256' },
  },
  'rsa-2048': {
    key: {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    },
    signing: { name: 'RSASSA-PKCS1-v1_5' },
  },
};
const DEFAULT_KEY_TYPE: KeyType = 'ecdsa-p256';
const DEFAULT_VALIDITY_DAYS = 365;
const DAY_MS = 24 * 60 * 60 * 1000;
/** notBefore is backdated so that a peer whose clock runs a little behind ours still accepts a fresh certificate. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

export async function createCA(options: {
  commonName: string;
  validityDays?: number;
  keyType?: KeyType;
}): Promise<CertificateAuthority> {
  const keyType = options.keyType ?? DEFAULT_KEY_TYPE;
  const keys = await generateKeyPair(keyType);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: [{ CN: [options.commonName] }],
    keys,
    signingAlgorithm: KEY_ALGORITHMS[keyType].signing,
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
  options: { dnsNames?: string[]; ipAddresses?: string[]; validityDays?: number; keyType?: KeyType },
): Promise<CertificateAndKey> {
  const dnsNames = options.dnsNames ?? [];
  const ipAddresses = options.ipAddresses ?? [];
  const firstName = dnsNames[0] ?? ipAddresses[0];
  if (firstName === undefined)
    throw new Error('a serving certificate needs at least one DNS name or IP address');
  return issue(ca, {
    subject: [{ CN: [firstName] }],
    validityDays: options.validityDays,
    keyType: options.keyType,
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
  /** The new certificate's key; the CA's own key type decides the signature. */
  keyType?: KeyType | undefined;
  keyUsages: x509.KeyUsageFlags;
  extendedKeyUsage: x509.ExtendedKeyUsage;
  subjectAltNames: x509.JsonGeneralNames;
}

async function issue(ca: CertificateAuthority, request: IssueRequest): Promise<CertificateAndKey> {
  const caCert = new x509.X509Certificate(ca.cert);
  const keys = await generateKeyPair(request.keyType ?? DEFAULT_KEY_TYPE);
  const caKeyType = keyTypeOf(ca.key);
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
    signingKey: await importPrivateKey(ca.key, caKeyType),
    signingAlgorithm: KEY_ALGORITHMS[caKeyType].signing,
    ...validity(request.validityDays),
    extensions,
  });
  return { cert: cert.toString('pem'), key: await exportPrivateKey(keys.privateKey) };
}

function validity(validityDays = DEFAULT_VALIDITY_DAYS): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - CLOCK_SKEW_MS), notAfter: new Date(now + validityDays * DAY_MS) };
}

function generateKeyPair(keyType: KeyType): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALGORITHMS[keyType].key, true, ['sign', 'verify']);
}

/** The type of a PEM private key this module made. */
export function keyTypeOf(keyPem: string): KeyType {
  const key = createPrivateKey(keyPem);
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1')
    return 'ecdsa-p256';
  if (key.asymmetricKeyType === 'rsa' && key.asymmetricKeyDetails?.modulusLength === 2048) return 'rsa-2048';
  throw new Error(`unsupported key: ${key.asymmetricKeyType ?? 'unknown'} (want ECDSA P-256 or RSA-2048)`);
}

async function exportPrivateKey(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

function importPrivateKey(pem: string, keyType: KeyType): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(pem),
    KEY_ALGORITHMS[keyType].key,
    false,
    ['sign'],
  );
}
