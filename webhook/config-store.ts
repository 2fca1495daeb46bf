/**
 * Holds the last good configuration and reloads it when the directory changes (a ConfigMap update swaps the
 * mount's `..data` symlink). A bad update is logged and counted, and the last good configuration stays in use.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import { parseConfig, readConfigFiles, type ConfigFiles, type InjectorConfig } from './config.js';

export interface ConfigStoreOptions {
  dir: string;
  log: Logger;
  onReload?: (result: 'success' | 'failure') => void;
  /** Applied to the files before they are parsed, e.g. the Deployment's image overrides. */
  prepare?: (files: ConfigFiles) => ConfigFiles;
  /** Besides watching, re-read the files this often; some mounts do not deliver inotify events. */
  pollIntervalMs?: number;
  debounceMs?: number;
}

export class ConfigStore {
  #current: InjectorConfig | undefined;
  #lastFiles: string | undefined;
  #lastError: string | undefined;
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #reloading: Promise<void> = Promise.resolve();

  constructor(private readonly options: ConfigStoreOptions) {}

  /** The configuration in use, or undefined when none has loaded yet. */
  get current(): InjectorConfig | undefined {
    return this.#current;
  }

  /** Why the last load failed, while no good configuration is in use or the latest update was rejected. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  async start(): Promise<void> {
    await this.reload();
    const { dir, debounceMs = 100, pollIntervalMs = 10_000 } = this.options;
    this.#watcher = watch(dir, () => {
      clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => void this.reload(), debounceMs);
    });
    this.#watcher.on('error', (error) =>
      this.options.log.warn({ err: error }, 'config directory watch failed'),
    );
    this.#poll = setInterval(() => void this.reload(), pollIntervalMs);
    this.#poll.unref();
  }

  /** Reads the directory and, when its files changed, swaps in the new configuration if it is valid. */
  reload(): Promise<void> {
    this.#reloading = this.#reloading.then(() => this.#reloadOnce());
    return this.#reloading;
  }

  async #reloadOnce(): Promise<void> {
    const { dir, log, onReload, prepare = (files) => files } = this.options;
    let files: ConfigFiles | undefined;
    try {
      files = prepare(await readConfigFiles(dir));
      const fingerprint = JSON.stringify(files);
      if (fingerprint === this.#lastFiles) return;
      this.#lastFiles = fingerprint;
      const config = parseConfig(files);
      const first = this.#current === undefined;
      this.#current = config;
      this.#lastError = undefined;
      log.info({ dir }, first ? 'configuration loaded' : 'configuration reloaded');
      onReload?.('success');
    } catch (error) {
      this.#lastError = (error as Error).message;
      log.error(
        { dir, err: this.#lastError },
        this.#current
          ? 'configuration update rejected; keeping the last good configuration'
          : 'configuration is invalid',
      );
      onReload?.('failure');
    }
  }

  close(): void {
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
  }
}
