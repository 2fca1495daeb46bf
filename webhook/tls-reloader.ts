/**
 * Re-reads the serving certificate and key when their files change (a Secret mount or the in-process renewal
 * rewrites them) and swaps them into the running server: new connections get the new certificate, open ones
 * keep going. A pair that does not load is logged and the old one stays.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';

/** The oldest TLS version the webhook accepts, at start and after every reload. */
export const MIN_TLS_VERSION = 'TLSv1.2';

export interface SecureContextTarget {
  setSecureContext(options: { cert: Buffer; key: Buffer; minVersion: typeof MIN_TLS_VERSION }): void;
}

export class TlsReloader {
  #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #loaded = '';

  constructor(
    private readonly paths: { cert: string; key: string },
    private readonly target: SecureContextTarget,
    private readonly log: Logger,
  ) {}

  static async read(paths: { cert: string; key: string }): Promise<{ cert: Buffer; key: Buffer }> {
    const [cert, key] = await Promise.all([readFile(paths.cert), readFile(paths.key)]);
    createSecureContext({ cert, key }); // throws on a mismatched or unreadable pair
    return { cert, key };
  }

  start(initial: { cert: Buffer; key: Buffer }, pollIntervalMs = 10_000): void {
    this.#loaded = fingerprint(initial);
    for (const dir of new Set([dirname(this.paths.cert), dirname(this.paths.key)])) {
      const watcher = watch(dir, () => {
        clearTimeout(this.#timer);
        this.#timer = setTimeout(() => void this.reload(), 100);
      });
      watcher.on('error', (error) => this.log.warn({ err: error }, 'TLS directory watch failed'));
      this.#watchers.push(watcher);
    }
    this.#poll = setInterval(() => void this.reload(), pollIntervalMs);
    this.#poll.unref();
  }

  async reload(): Promise<void> {
    let pair: { cert: Buffer; key: Buffer };
    try {
      pair = await TlsReloader.read(this.paths);
    } catch (error) {
      // Mid-rotation the certificate may be new and the key still old; the next event or poll completes it.
      this.log.warn(
        { err: (error as Error).message },
        'serving certificate not reloaded; keeping the current one',
      );
      return;
    }
    const print = fingerprint(pair);
    if (print === this.#loaded) return;
    this.target.setSecureContext({ ...pair, minVersion: MIN_TLS_VERSION });
    this.#loaded = print;
    this.log.info({ cert: this.paths.cert }, 'serving certificate reloaded');
  }

  close(): void {
    for (const watcher of this.#watchers) watcher.close();
    clearTimeout(this.#timer);
    clearInterval(this.#poll);
  }
}

function fingerprint(pair: { cert: Buffer; key: Buffer }): string {
  return `${pair.cert.toString('base64')}|${pair.key.toString('base64')}`;
}
