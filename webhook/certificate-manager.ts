/**
 * Keeps the webhook's certificates without cert-manager: a CA and a serving certificate for the Service's DNS
 * names live in one Secret; the CA goes into the caBundle of the injector's MutatingWebhookConfiguration; the
 * serving pair is written to the files the server watches. Replicas starting together converge on one Secret
 * (create fails for all but one, updates carry the resourceVersion); renewal happens before expiry, and a rotated
 * CA stays in the caBundle beside the new one while serving certificates it signed may still be in use.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import {
  caBundleOf,
  decodeBundle,
  encodeBundle,
  executePlan,
  planCertificates,
  type CertificateBundle,
  type CertificatePolicy,
} from './certificate-plan.js';

/** The apiserver calls the manager makes; the implementation sits at the edge (webhook/cluster.ts). */
export interface CertificateApi {
  readSecret(): Promise<{ data: Record<string, string>; resourceVersion: string } | undefined>;
  /** Throws a ConflictError when another replica created it first. */
  createSecret(data: Record<string, string>): Promise<void>;
  /** Throws a ConflictError when the Secret changed since `resourceVersion`. */
  replaceSecret(data: Record<string, string>, resourceVersion: string): Promise<void>;
  /** Sets every webhook's caBundle, if it differs; returns whether anything changed. */
  ensureCaBundle(caBundlePem: string): Promise<boolean>;
}

export class ConflictError extends Error {}

export interface CertificateManagerOptions {
  api: CertificateApi;
  policy: CertificatePolicy;
  files: { cert: string; key: string };
  log: Logger;
  now?: () => Date;
  /** After a new CA enters the caBundle, how long to wait for the apiserver to see it before serving with it. */
  caPropagationMs?: number;
}

export class CertificateManager {
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: CertificateManagerOptions) {}

  /** One pass: read, renew if due, publish the caBundle, write the serving files. Returns what is in use. */
  async reconcile(): Promise<CertificateBundle> {
    const { api, policy, log } = this.options;
    const now = this.options.now?.() ?? new Date();
    for (let attempt = 1; attempt <= 5; attempt++) {
      const stored = await api.readSecret();
      const current = decodeBundle(stored?.data);
      const plan = planCertificates(current, now, policy);
      if (plan.action === 'keep') return this.#publish(current as CertificateBundle, now, false);

      const next = await executePlan(plan, current, policy, now);
      // Trust first, then use: the caBundle gains the new CA before any replica can serve a certificate it signed.
      const caChanged = next.ca.cert !== current?.ca.cert;
      if (caChanged) await api.ensureCaBundle(caBundleOf(next, now));
      try {
        if (stored) await api.replaceSecret(encodeBundle(next), stored.resourceVersion);
        else await api.createSecret(encodeBundle(next));
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        log.info({ attempt }, 'another replica changed the certificate Secret first; reading it again');
        continue;
      }
      log.info({ action: plan.action, reason: plan.reason }, 'webhook certificates renewed');
      return this.#publish(next, now, caChanged);
    }
    throw new Error('the certificate Secret kept changing under us; giving up this round');
  }

  /** Reconciles now and then every `intervalMs`; errors are logged and retried at the next tick. */
  start(intervalMs: number): void {
    this.#timer = setInterval(() => {
      this.reconcile().catch((error: unknown) =>
        this.options.log.error({ err: (error as Error).message }, 'certificate reconcile failed'),
      );
    }, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async #publish(bundle: CertificateBundle, now: Date, caChanged: boolean): Promise<CertificateBundle> {
    const changed = await this.options.api.ensureCaBundle(caBundleOf(bundle, now));
    if (caChanged || changed)
      await new Promise((resolve) => setTimeout(resolve, this.options.caPropagationMs ?? 0));
    await this.#writeServingFiles(bundle.serving);
    return bundle;
  }

  /** Key first, then certificate, each replaced atomically, so a reader never sees a torn file. */
  async #writeServingFiles(serving: { cert: string; key: string }): Promise<void> {
    const { cert, key } = this.options.files;
    if ((await readOrEmpty(cert)) === serving.cert && (await readOrEmpty(key)) === serving.key) return;
    await writeFile(`${key}.tmp`, serving.key, { mode: 0o600 });
    await rename(`${key}.tmp`, key);
    await writeFile(`${cert}.tmp`, serving.cert);
    await rename(`${cert}.tmp`, cert);
    this.options.log.info({ cert }, 'serving certificate written');
  }
}

async function readOrEmpty(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}
