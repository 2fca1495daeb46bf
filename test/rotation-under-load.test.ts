/**
 * Certificate rotation while the webhook is busy: the serving certificate and key are replaced three times in the
 * middle of a run, first by overwriting the files in place, then the way the kubelet updates a Secret volume
 * (files are symlinks through `..data`, which is swapped atomically to a new timestamped directory). No request
 * may fail, and after each rotation new connections get the new certificate.
 */
import { X509Certificate } from 'node:crypto';
import { lstat, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueServingCert, type CertificateAndKey } from '../common/pki.js';
import { admissionReview, typicalPod } from './fixtures/pods.js';
import { expectInjected, runAdmissionLoad } from './harness/admission-load.js';
import { startWebhookProcess, type WebhookProcess } from './harness/webhook-process.js';

/** An upper bound: the run ends once the last rotation is served and this many more requests were answered. */
const MAX_REQUESTS = 100_000;
const AFTER_LAST_ROTATION_REQUESTS = 1_500;
const CONCURRENCY = 32;

const normalSerial = (serial: string) => serial.toUpperCase().replace(/^0+/, '');
const serialOf = (pem: string) => normalSerial(new X509Certificate(pem).serialNumber);

/** The serial of the certificate a NEW connection gets, verified against the CA. */
function peerSerial(webhook: WebhookProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port: webhook.port, ca: webhook.ca.cert, servername: 'localhost' },
      () => {
        resolve(normalSerial(socket.getPeerCertificate().serialNumber));
        socket.end();
      },
    );
    socket.once('error', reject);
  });
}

async function untilServed(webhook: WebhookProcess, serial: string): Promise<void> {
  for (let attempt = 0; attempt < 400; attempt++) {
    if ((await peerSerial(webhook)) === serial) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`new connections never got the certificate with serial ${serial}`);
}

/** What the kubelet's AtomicWriter does to a Secret volume: new timestamped dir, then one rename of `..data`. */
async function kubeletUpdate(dir: string, pair: CertificateAndKey, generation: number): Promise<void> {
  const stamp = `..2026_01_01_00_00_0${generation}.000000000`;
  await mkdir(join(dir, stamp));
  await writeFile(join(dir, stamp, 'tls.crt'), pair.cert);
  await writeFile(join(dir, stamp, 'tls.key'), pair.key, { mode: 0o600 });
  await symlink(stamp, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  // On the first update the visible names become symlinks through ..data (a Secret volume's layout from then on).
  for (const name of ['tls.key', 'tls.crt']) {
    if ((await lstat(join(dir, name))).isSymbolicLink()) continue;
    await symlink(join('..data', name), join(dir, `${name}.tmp`));
    await rename(join(dir, `${name}.tmp`), join(dir, name));
  }
  if (generation > 1)
    await rm(join(dir, `..2026_01_01_00_00_0${generation - 1}.000000000`), { recursive: true });
}

describe('certificate rotation under load', () => {
  let webhook: WebhookProcess;
  beforeAll(async () => {
    webhook = await startWebhookProcess();
  });
  afterAll(() => webhook?.stop());

  it('rotates three times mid-run with zero failed requests, and new connections get each new certificate', async () => {
    const issue = () =>
      issueServingCert(webhook.ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validityDays: 1 });
    const [overwritten, kubeletFirst, kubeletSecond] = await Promise.all([issue(), issue(), issue()]);
    const dir = dirname(webhook.certPath);
    expect(basename(webhook.certPath)).toBe('tls.crt');
    const original = await peerSerial(webhook);

    let completed = 0;
    const until = async (count: number) => {
      while (completed < count) await new Promise((resolve) => setTimeout(resolve, 20));
    };
    const served: string[] = [];
    let completedAtLastRotation: number | undefined;
    const rotations = (async () => {
      await until(1_500);
      // In place, key first: for a moment the pair does not match, and the old one must stay in use.
      await writeFile(webhook.keyPath, overwritten.key);
      await writeFile(webhook.certPath, overwritten.cert);
      await untilServed(webhook, serialOf(overwritten.cert));
      served.push('overwritten');

      await until(completed + 1_500);
      await kubeletUpdate(dir, kubeletFirst, 1);
      await untilServed(webhook, serialOf(kubeletFirst.cert));
      served.push('kubelet ..data swap 1');

      await until(completed + 1_500);
      await kubeletUpdate(dir, kubeletSecond, 2);
      await untilServed(webhook, serialOf(kubeletSecond.cert));
      served.push('kubelet ..data swap 2');
      completedAtLastRotation = completed;
    })();
    // A failed rotation ends the run at once instead of letting it run to its upper bound.
    let rotationFailed = false;
    rotations.catch(() => (rotationFailed = true));

    const result = await runAdmissionLoad({
      backends: [{ url: webhook.url, caPem: webhook.ca.cert }],
      total: MAX_REQUESTS,
      // However fast the machine, requests keep flowing until after the last rotation.
      stopWhen: () =>
        rotationFailed ||
        (completedAtLastRotation !== undefined &&
          completed >= completedAtLastRotation + AFTER_LAST_ROTATION_REQUESTS),
      concurrency: CONCURRENCY,
      body: JSON.stringify(admissionReview(typicalPod())),
      newConnectionEvery: 50,
      check: expectInjected,
      onCompleted: (count) => (completed = count),
    });
    await rotations;

    expect(served).toEqual(['overwritten', 'kubelet ..data swap 1', 'kubelet ..data swap 2']);
    // The rotations happened while requests were still flowing.
    expect(completedAtLastRotation).toBeLessThan(result.completed);
    expect(result.failures).toEqual([]);
    expect(result.completed).toBeLessThan(MAX_REQUESTS);
    expect(original).not.toBe(serialOf(kubeletSecond.cert));
    expect(
      (await webhook.settledLogs()).filter((line) => line.includes('serving certificate reloaded')).length,
    ).toBeGreaterThanOrEqual(3);
  }, 120_000);
});
