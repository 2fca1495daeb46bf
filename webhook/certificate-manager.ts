/**
 * Keeps the webhook's certificates without cert-manager: a CA and a serving certificate for the Service's DNS
 * names live in one Secret; the CA goes into the caBundle of the injector's MutatingWebhookConfiguration; the
 * serving pair is written to the files the server watches. The Secret is the single source of truth: replicas
 * starting together converge on it (create fails for all but one, replaces carry the resourceVersion), and only a
 * CA that made it into the Secret ever reaches the caBundle. Every replica publishes the caBundle before it serves
 * a certificate, and checks afterwards that the Secret did not change meanwhile, so a replica with a stale view
 * cannot leave the caBundle without a CA in use. Renewal happens before expiry, and a rotated CA stays in the
 * caBundle beside the new one while serving certificates it signed may still be in use.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { ConflictError } from './conflict-error.js';
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
  readSecret(): Promise<StoredSecret | undefined>;
  /** Returns the new resourceVersion; throws a ConflictError when another replica created it first. */
  createSecret(data: Record<string, string>): Promise<string>;
  /** Returns the new resourceVersion; throws a ConflictError when the Secret changed since `resourceVersion`. */
  replaceSecret(data: Record<string, string>, resourceVersion: string): Promise<string>;
  /** Sets every webhook's caBundle, if it differs; returns whether anything changed. */
  ensureCaBundle(caBundlePem: string): Promise<boolean>;
}

export interface StoredSecret {
  data: Record<string, string>;
  resourceVersion: string;
}

export { ConflictError };

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
  /** The CA of the serving certificate this process last wrote to its files. */
  #servedCa: string | undefined;

  constructor(private readonly options: CertificateManagerOptions) {}

  /** One pass: read, renew if due, publish the caBundle, write the serving files. Returns what is in use. */
  async reconcile(): Promise<CertificateBundle> {
    const { api, policy, log } = this.options;
    const now = this.options.now?.() ?? new Date();
    for (let attempt = 1; attempt <= 5; attempt++) {
      const stored = await api.readSecret();
      const current = decodeBundle(stored?.data);
      const plan = planCertificates(current, now, policy);
      let bundle: CertificateBundle;
      let resourceVersion: string;
      if (plan.action === 'keep') {
        bundle = current as CertificateBundle;
        resourceVersion = (stored as StoredSecret).resourceVersion;
      } else {
        bundle = await executePlan(plan, current, policy, now);
        try {
          resourceVersion = stored
            ? await api.replaceSecret(encodeBundle(bundle), stored.resourceVersion)
            : await api.createSecret(encodeBundle(bundle));
        } catch (error) {
          if (!(error instanceof ConflictError)) throw error;
          log.info({ attempt }, 'another replica changed the certificate Secret first; reading it again');
          continue;
        }
        log.info({ action: plan.action, reason: plan.reason }, 'webhook certificates renewed');
      }
      // Trust first, then use: the caBundle holds this CA before this replica serves a certificate it signed.
      const caBundleChanged = await api.ensureCaBundle(caBundleOf(bundle, now));
      if ((await api.readSecret())?.resourceVersion !== resourceVersion) {
        log.info({ attempt }, 'the certificate Secret changed while the caBundle was published; again');
        continue;
      }
      const newCa = this.#servedCa !== undefined && this.#servedCa !== bundle.ca.cert;
      if (caBundleChanged || newCa) await sleep(this.options.caPropagationMs ?? 0);
      await this.#writeServingFiles(bundle.serving);
      this.#servedCa = bundle.ca.cert;
      return bundle;
    }
    throw new Error(
      'the certificate Secret kept changing under us in 5 attempts; giving up this round (the next one retries)',
    );
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function readOrEmpty(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}
