import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyIssuedBy } from '../common/pki.js';
import { CertificateManager, ConflictError, type CertificateApi } from './certificate-manager.js';
import { caBundleOf, DEFAULT_POLICY, serviceDnsNames } from './certificate-plan.js';

/** An in-memory apiserver for one Secret and one caBundle, with resourceVersions like the real one. */
class FakeCluster {
  secret: { data: Record<string, string>; resourceVersion: string } | undefined;
  caBundle = '';
  /** Every caBundle ever published, in order. */
  published: string[] = [];
  version = 0;

  api(): CertificateApi {
    return {
      readSecret: async () => (this.secret ? structuredClone(this.secret) : undefined),
      createSecret: async (data) => {
        if (this.secret) throw new ConflictError('exists');
        this.secret = { data, resourceVersion: String(++this.version) };
        return this.secret.resourceVersion;
      },
      replaceSecret: async (data, resourceVersion) => {
        if (this.secret?.resourceVersion !== resourceVersion) throw new ConflictError('changed');
        this.secret = { data, resourceVersion: String(++this.version) };
        return this.secret.resourceVersion;
      },
      ensureCaBundle: async (pem) => {
        const changed = pem !== this.caBundle;
        this.caBundle = pem;
        this.published.push(pem);
        return changed;
      },
    };
  }
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mesh-injector-certs-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const policy = { ...DEFAULT_POLICY, dnsNames: serviceDnsNames('mesh-injector', 'mesh-injector') };

function manager(cluster: FakeCluster, name: string, now?: () => Date, api = cluster.api()) {
  return new CertificateManager({
    api,
    policy,
    files: { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) },
    log: pino({ level: 'silent' }),
    now,
  });
}

describe('the certificate manager', () => {
  it('creates the Secret, publishes the CA and writes the serving files', async () => {
    const cluster = new FakeCluster();
    const bundle = await manager(cluster, 'a').reconcile();
    expect(cluster.secret?.data['tls.crt']).toBe(bundle.serving.cert);
    expect(cluster.caBundle.trim()).toBe(bundle.ca.cert.trim());
    const served = await readFile(join(dir, 'a.crt'), 'utf8');
    expect(verifyIssuedBy(served, cluster.caBundle)).toBe(true);
    expect(await readFile(join(dir, 'a.key'), 'utf8')).toBe(bundle.serving.key);
  });

  it('makes replicas starting together converge on one certificate', async () => {
    const cluster = new FakeCluster();
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => manager(cluster, name).reconcile()));
    expect(b?.serving.cert).toBe(a?.serving.cert);
    expect(c?.serving.cert).toBe(a?.serving.cert);
    expect(await readFile(join(dir, 'b.crt'), 'utf8')).toBe(cluster.secret?.data['tls.crt']);
  });

  it('never puts the CA of a replica that lost the race into the caBundle', async () => {
    const cluster = new FakeCluster();
    const [a] = await Promise.all(['a', 'b', 'c'].map((name) => manager(cluster, name).reconcile()));
    expect(cluster.published.length).toBeGreaterThanOrEqual(3);
    for (const pem of cluster.published) expect(pem.trim()).toBe(a?.ca.cert.trim());
  });

  it('publishes again when the Secret changed while it published from an older one', async () => {
    const cluster = new FakeCluster();
    const first = await manager(cluster, 'a').reconcile();
    const nearCaExpiry = () => new Date(Date.now() + 3000 * 24 * 3600 * 1000);
    // Replica b publishes the caBundle of the Secret it read, but replica a rotates the CA just before.
    const api = cluster.api();
    const ensureCaBundle = api.ensureCaBundle;
    let rotated: Promise<unknown> | undefined;
    api.ensureCaBundle = async (pem) => {
      rotated ??= manager(cluster, 'a', nearCaExpiry).reconcile();
      await rotated;
      return ensureCaBundle(pem);
    };
    const served = await manager(cluster, 'b', undefined, api).reconcile();
    expect(served.ca.cert).not.toBe(first.ca.cert);
    expect(cluster.published).toContain(caBundleOf(first, new Date()));
    expect(cluster.caBundle).toContain(served.ca.cert.trim());
    expect(cluster.caBundle).toContain(first.ca.cert.trim());
    expect(await readFile(join(dir, 'b.crt'), 'utf8')).toBe(served.serving.cert);
  });

  it('renews before expiry, and other replicas pick the renewal up from the Secret', async () => {
    const cluster = new FakeCluster();
    const first = await manager(cluster, 'a').reconcile();
    const inTwoHundredFiftyDays = () => new Date(Date.now() + 250 * 24 * 3600 * 1000);
    const renewed = await manager(cluster, 'a', inTwoHundredFiftyDays).reconcile();
    expect(renewed.serving.cert).not.toBe(first.serving.cert);
    expect(renewed.ca.cert).toBe(first.ca.cert);
    await manager(cluster, 'b').reconcile();
    expect(await readFile(join(dir, 'b.crt'), 'utf8')).toBe(renewed.serving.cert);
  });

  it('puts both CAs in the caBundle while a rotated CA is still valid', async () => {
    const cluster = new FakeCluster();
    const first = await manager(cluster, 'a').reconcile();
    const nearCaExpiry = () => new Date(Date.now() + 3000 * 24 * 3600 * 1000);
    const rotated = await manager(cluster, 'a', nearCaExpiry).reconcile();
    expect(rotated.ca.cert).not.toBe(first.ca.cert);
    expect(cluster.caBundle).toContain(first.ca.cert.trim());
    expect(cluster.caBundle).toContain(rotated.ca.cert.trim());
  });
});
