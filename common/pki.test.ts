import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CertificateAndKey, CertificateAuthority } from './pki.js';
import {
  certificateInfo,
  createCA,
  issueClientCert,
  issueServingCert,
  keyTypeOf,
  verifyIssuedBy,
} from './pki.js';

const DAY_MS = 24 * 60 * 60 * 1000;

describe('pki', () => {
  let ca: CertificateAuthority;
  let otherCa: CertificateAuthority;
  let serving: CertificateAndKey;
  let client: CertificateAndKey;

  beforeAll(async () => {
    ca = await createCA({ commonName: 'mesh-injector test CA', validityDays: 30 });
    otherCa = await createCA({ commonName: 'unrelated CA' });
    serving = await issueServingCert(ca, {
      dnsNames: ['localhost', 'mesh-injector.mesh-system.svc'],
      ipAddresses: ['127.0.0.1', '::1'],
      validityDays: 7,
    });
    client = await issueClientCert(ca, { commonName: 'admin', organizations: ['system:masters', 'devs'] });
  });

  it('creates a self-signed CA that may sign certificates', () => {
    const cert = new X509Certificate(ca.cert);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe('CN=mesh-injector test CA');
    expect(verifyIssuedBy(ca.cert, ca.cert)).toBe(true);
    expect(ca.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('puts the requested names in a serving certificate', () => {
    const cert = new X509Certificate(serving.cert);
    expect(cert.ca).toBe(false);
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkHost('mesh-injector.mesh-system.svc')).toBe('mesh-injector.mesh-system.svc');
    expect(cert.checkHost('example.com')).toBeUndefined();
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkIP('10.0.0.1')).toBeUndefined();
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);

    const info = certificateInfo(serving.cert);
    expect(info.dnsNames).toEqual(['localhost', 'mesh-injector.mesh-system.svc']);
    expect(info.ipAddresses).toEqual(['127.0.0.1', '::1']);
    expect(info.subject).toBe('CN=localhost');
    expect(info.issuer).toBe('CN=mesh-injector test CA');
  });

  it('makes certificates valid from now for the requested number of days', () => {
    const { notBefore, notAfter } = certificateInfo(serving.cert);
    expect(notBefore.getTime()).toBeLessThanOrEqual(Date.now());
    expect(notBefore.getTime()).toBeGreaterThan(Date.now() - DAY_MS);
    expect(notAfter.getTime() - Date.now()).toBeGreaterThan(7 * DAY_MS - 60_000);
    expect(notAfter.getTime() - Date.now()).toBeLessThanOrEqual(7 * DAY_MS);
    const clientValidity = certificateInfo(client.cert);
    expect(clientValidity.notAfter.getTime() - Date.now()).toBeGreaterThan(364 * DAY_MS);
  });

  it('names the user and its groups in a client certificate', () => {
    const cert = new X509Certificate(client.cert);
    expect(cert.subject.split('\n')).toEqual(['O=system:masters', 'O=devs', 'CN=admin']);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(certificateInfo(client.cert).dnsNames).toEqual([]);
  });

  it('verifies the chain against the issuing CA only', () => {
    expect(verifyIssuedBy(serving.cert, ca.cert)).toBe(true);
    expect(verifyIssuedBy(client.cert, ca.cert)).toBe(true);
    expect(verifyIssuedBy(serving.cert, otherCa.cert)).toBe(false);
    expect(new X509Certificate(serving.cert).verify(new X509Certificate(ca.cert).publicKey)).toBe(true);
    expect(new X509Certificate(serving.cert).verify(new X509Certificate(otherCa.cert).publicKey)).toBe(false);
  });

  it('refuses a serving certificate without names', async () => {
    await expect(issueServingCert(ca, {})).rejects.toThrow(/at least one DNS name or IP address/);
  });

  it('completes a mutual TLS handshake with the issued pair', async () => {
    const server = tls.createServer(
      { ...serving, ca: ca.cert, requestCert: true, rejectUnauthorized: true },
      (s) => s.end(`hello ${s.getPeerCertificate().subject.CN}`),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const greeting = await new Promise<string>((resolve, reject) => {
        const socket = tls.connect({
          port,
          host: '127.0.0.1',
          servername: 'localhost',
          ca: ca.cert,
          ...client,
        });
        let received = '';
        socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
        socket.on('end', () => resolve(received));
        socket.on('error', reject);
      });
      expect(greeting).toBe('hello admin');
    } finally {
      server.close();
    }
  });

  it('makes ECDSA P-256 keys unless asked for RSA-2048, and signs with whatever key the CA has', async () => {
    expect(keyTypeOf(ca.key)).toBe('ecdsa-p256');
    expect(keyTypeOf(serving.key)).toBe('ecdsa-p256');
    expect(new X509Certificate(serving.cert).publicKey.asymmetricKeyType).toBe('ec');

    const rsaServing = await issueServingCert(ca, { dnsNames: ['localhost'], keyType: 'rsa-2048' });
    expect(keyTypeOf(rsaServing.key)).toBe('rsa-2048');
    expect(new X509Certificate(rsaServing.cert).publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(verifyIssuedBy(rsaServing.cert, ca.cert)).toBe(true);

    const rsaCa = await createCA({ commonName: 'RSA CA', keyType: 'rsa-2048' });
    const signedByRsa = await issueServingCert(rsaCa, { dnsNames: ['localhost'] });
    expect(keyTypeOf(signedByRsa.key)).toBe('ecdsa-p256');
    expect(verifyIssuedBy(signedByRsa.cert, rsaCa.cert)).toBe(true);
    expect(new X509Certificate(signedByRsa.cert).publicKey.asymmetricKeyType).toBe('ec');
  });

  it('refuses a key of another type or size', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    expect(() => keyTypeOf(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())).toThrow(
      /unsupported key: ec/,
    );
  });
});
