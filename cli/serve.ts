/**
 * `mesh-injector serve`: the webhook process. Wires configuration, metrics, TLS and the server together, and
 * shuts down gracefully: on SIGTERM readiness fails first, then in-flight requests finish, then it exits.
 */
import { existsSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import type { Logger } from 'pino';
import { ConfigStore } from '../webhook/config-store.js';
import type { CertificateManager } from '../webhook/certificate-manager.js';
import type { InjectorConfig } from '../webhook/config.js';
import { withImageOverrides, type ImageOverrides } from '../webhook/image-overrides.js';
import { createMetrics } from '../webhook/metrics.js';
import { buildMonitoringServer } from '../webhook/monitoring-server.js';
import { createLogger, flushLogs } from '../webhook/logging.js';
import { supportsNativeSidecars, type ServerVersion } from '../webhook/native-sidecars.js';
import { buildServer } from '../webhook/server.js';
import { TlsReloader } from '../webhook/tls-reloader.js';

export interface ServeOptions {
  port: number;
  host: string;
  /** Plain-HTTP /metrics (15014 in the Deployment); 0 picks a free port; undefined serves none. */
  monitoringPort?: number;
  tlsCert: string;
  tlsKey: string;
  config: string;
  /** Override values.yaml's images (the Deployment's environment, which kustomize's `images:` rewrites). */
  images?: ImageOverrides;
  kubeconfig?: string;
  /** After SIGTERM, how long readiness fails before the server stops taking requests. */
  shutdownDelayMs: number;
  logLevel: string;
  /** Keep the CA, serving certificate and caBundle in the cluster; without it, the files come from elsewhere. */
  certificates?: ManagedCertificates;
}

export interface ManagedCertificates {
  namespace: string;
  service: string;
  secret: string;
  webhookConfiguration: string;
  /** How often to check for renewal. */
  checkIntervalMs: number;
}

export interface RunningWebhook {
  port: number;
  /** The monitoring port, when one is served. */
  monitoringPort?: number;
  /** Fails readiness, waits the shutdown delay, lets in-flight requests finish, then closes. */
  shutdown(): Promise<void>;
}

export async function serve(
  options: ServeOptions,
  log: Logger = createLogger(options.logLevel),
): Promise<RunningWebhook> {
  const metrics = createMetrics();
  const store = new ConfigStore({
    dir: options.config,
    log: log.child({ component: 'config' }),
    onReload: (result) => metrics.configReloads.inc({ result }),
    prepare: (files) => withImageOverrides(files, options.images ?? {}),
  });
  await store.start();

  const apiserver = await apiserverVersion(options.kubeconfig, log);
  const kubelets =
    apiserver === undefined
      ? undefined
      : await watchKubelets(options.kubeconfig, log.child({ component: 'nodes' }));
  const certificateManager = options.certificates
    ? await startCertificateManager(options, options.certificates, log.child({ component: 'certificates' }))
    : undefined;
  let draining = false;
  const tls = await TlsReloader.read({ cert: options.tlsCert, key: options.tlsKey });
  const app = buildServer({
    logger: log,
    metrics,
    tls,
    state: {
      config: () => store.current,
      notReadyReason: () => {
        if (draining) return 'shutting down';
        if (!store.current) return `no valid configuration: ${store.lastError ?? 'not loaded yet'}`;
        return undefined;
      },
      nativeSidecars: (config: InjectorConfig) =>
        apiserver === undefined || kubelets === undefined
          ? config.values.nativeSidecars === 'true'
          : {
              apiserverVersion: apiserver.gitVersion ?? `v${apiserver.major}.${apiserver.minor}`,
              apiserverAccepts: supportsNativeSidecars(apiserver),
              kubeletVersions: kubelets.current(),
            },
    },
  });
  await app.listen({ port: options.port, host: options.host });
  const tlsReloader = new TlsReloader(
    { cert: options.tlsCert, key: options.tlsKey },
    app.server as unknown as HttpsServer,
    log.child({ component: 'tls' }),
  );
  tlsReloader.start(tls);
  const port = listeningPort(app.server, options.port);
  const monitoring =
    options.monitoringPort === undefined
      ? undefined
      : buildMonitoringServer({ metrics, logger: log.child({ component: 'monitoring' }) });
  await monitoring?.listen({ port: options.monitoringPort, host: options.host });
  const monitoringPort = monitoring && listeningPort(monitoring.server, options.monitoringPort ?? 0);
  log.info(
    {
      port,
      monitoringPort,
      config: options.config,
      apiserver: apiserver?.gitVersion ?? 'unknown',
      ready: store.current !== undefined,
    },
    'mesh-injector webhook listening',
  );

  let closing: Promise<void> | undefined;
  return {
    port,
    monitoringPort,
    shutdown: () =>
      (closing ??= (async () => {
        draining = true;
        log.info({ delayMs: options.shutdownDelayMs }, 'shutting down: readiness now fails');
        await new Promise((resolve) => setTimeout(resolve, options.shutdownDelayMs));
        tlsReloader.close();
        certificateManager?.stop();
        await kubelets?.stop();
        store.close();
        await app.close();
        await monitoring?.close();
        log.info('shut down');
        // The caller exits next; lines still being written would be lost.
        await flushLogs(log);
      })()),
  };
}

/** The first reconcile must succeed before the server can serve; the apiserver may still be coming up. */
async function watchKubelets(kubeconfig: string | undefined, log: Logger) {
  const { loadKubeConfig, watchKubeletVersions } = await import('../webhook/cluster.js');
  return watchKubeletVersions(loadKubeConfig(kubeconfig), log);
}

async function startCertificateManager(
  options: ServeOptions,
  names: ManagedCertificates,
  log: Logger,
): Promise<CertificateManager> {
  // Loaded only on this path: @peculiar/x509 adds about 20 MiB to the process.
  const [
    { CertificateManager },
    { DEFAULT_POLICY, serviceDnsNames },
    { kubernetesCertificateApi, loadKubeConfig },
  ] = await Promise.all([
    import('../webhook/certificate-manager.js'),
    import('../webhook/certificate-plan.js'),
    import('../webhook/cluster.js'),
  ]);
  const manager = new CertificateManager({
    api: kubernetesCertificateApi(loadKubeConfig(options.kubeconfig), names),
    policy: { ...DEFAULT_POLICY, dnsNames: serviceDnsNames(names.service, names.namespace) },
    files: { cert: options.tlsCert, key: options.tlsKey },
    log,
    caPropagationMs: 5_000,
  });
  for (let attempt = 1; ; attempt++) {
    try {
      await manager.reconcile();
      break;
    } catch (error) {
      if (attempt >= 30) throw error;
      log.warn(
        { attempt, err: (error as Error).message },
        'could not set up the webhook certificates; retrying',
      );
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * attempt, 10_000)));
    }
  }
  manager.start(names.checkIntervalMs);
  return manager;
}

async function apiserverVersion(
  kubeconfig: string | undefined,
  log: Logger,
): Promise<ServerVersion | undefined> {
  try {
    // @kubernetes/client-node (about 75 MiB of RSS) is loaded only when there is a cluster to ask.
    if (kubeconfig && !existsSync(kubeconfig)) throw new Error(`no kubeconfig at ${kubeconfig}`);
    const { fetchServerVersion, loadKubeConfig } = await import('../webhook/cluster.js');
    const version = await withTimeout(fetchServerVersion(loadKubeConfig(kubeconfig)), 5_000);
    log.info({ apiserver: version.gitVersion }, 'apiserver version');
    return version;
  } catch (error) {
    log.warn(
      { err: (error as Error).message },
      'apiserver version unknown; nativeSidecars "auto" means classic sidecars',
    );
    return undefined;
  }
}

function listeningPort(server: { address(): unknown }, fallback: number): number {
  const address = server.address();
  return typeof address === 'object' && address !== null && 'port' in address
    ? (address as { port: number }).port
    : fallback;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms).unref(),
    ),
  ]);
}
