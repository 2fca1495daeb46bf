/**
 * `mesh-injector check`: gathers a snapshot of the cluster for cli/check-report.ts and prints the result.
 *
 * The serving certificate is fetched the way the apiserver meets it where that is possible: for a `url:`
 * clientConfig by a TLS handshake with that url; for a `service:` clientConfig, which only the apiserver's network
 * can reach (its service proxy does not pass TLS through), from the Secret the webhook serves it from
 * (`mesh-injector-tls`, key `tls.crt`, as webhook/certificate-manager.ts keeps it).
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect } from 'node:tls';
import {
  AdmissionregistrationV1Api,
  ApiException,
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1OwnerReference,
  type V1Pod,
} from '@kubernetes/client-node';
import { SECRET_KEYS } from '../webhook/certificate-plan.js';
import { fetchServerVersion } from '../webhook/cluster.js';
import { loadCliKubeConfig } from './kubeconfig.js';
import {
  configFilesFromData,
  parseConfig,
  readConfigFiles,
  type ConfigFiles,
  type InjectorConfig,
} from '../webhook/config.js';
import { templateVersion } from '../webhook/status.js';
import {
  evaluateChecks,
  selectedNamespaces,
  type CheckNames,
  type ClusterSnapshot,
  type ServingCertificate,
  type WebhookClient,
} from './check-report.js';
import { formatReport } from './check-output.js';
import { packagedConfigDir } from './package-paths.js';

export interface CheckOptions extends CheckNames {
  kubeconfig?: string;
  context?: string;
  /** The injector's configuration to compare pods with; default: the ConfigMap, else the packaged one. */
  config?: string;
  configMap: string;
  output: 'text' | 'json';
  timeoutMs: number;
  /** Retry until every check passes, up to this long. */
  waitMs?: number;
}

/** Prints the report; returns the exit code (1 when a check failed). */
export async function runCheck(options: CheckOptions, write: (text: string) => void): Promise<number> {
  // --wait: check again every 2 s until nothing fails or the time is up, as linkerd check --wait does.
  const deadline = Date.now() + (options.waitMs ?? 0);
  let report = evaluateChecks(await gatherSnapshot(options));
  while (!report.ok && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, Math.max(0, deadline - Date.now()))));
    report = evaluateChecks(await gatherSnapshot(options));
  }
  write(options.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.ok ? 0 : 1;
}

export async function gatherSnapshot(options: CheckOptions): Promise<ClusterSnapshot> {
  const names: CheckNames = {
    namespace: options.namespace,
    service: options.service,
    webhookConfiguration: options.webhookConfiguration,
    secret: options.secret,
  };
  const empty = (apiError: string, injector: ClusterSnapshot['injector']): ClusterSnapshot => ({
    now: new Date(),
    names,
    apiError,
    servingCertificates: [],
    namespaces: [],
    pods: [],
    replicaSets: [],
    injector,
  });

  const loaded = loadCliKubeConfig({ kubeconfig: options.kubeconfig, context: options.context });
  if (!loaded.ok) return empty(loaded.reason, await injectorFrom(undefined, options));
  const kubeConfig: KubeConfig = loaded.kubeConfig;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const admission = kubeConfig.makeApiClient(AdmissionregistrationV1Api);

  let step = 'listing namespaces';
  try {
    const namespaces = (await core.listNamespace()).items.map((ns) => ({
      name: ns.metadata?.name ?? '',
      labels: ns.metadata?.labels ?? {},
    }));
    step = 'reading the apiserver version';
    const serverVersion = await fetchServerVersion(kubeConfig);
    step = 'reading the injector configuration';
    const injector = await injectorFrom(core, options);

    step = `reading MutatingWebhookConfiguration ${names.webhookConfiguration}`;
    const stored = await orUndefined(() =>
      admission.readMutatingWebhookConfiguration({ name: names.webhookConfiguration }),
    );
    const webhooks: WebhookClient[] = (stored?.webhooks ?? []).map((webhook) => ({
      name: webhook.name,
      ...(webhook.clientConfig.url ? { url: webhook.clientConfig.url } : {}),
      ...(webhook.clientConfig.service
        ? {
            service: {
              name: webhook.clientConfig.service.name,
              namespace: webhook.clientConfig.service.namespace,
            },
          }
        : {}),
      ...(webhook.clientConfig.caBundle ? { caBundle: webhook.clientConfig.caBundle } : {}),
    }));

    step = `reading the serving certificate`;
    const servingCertificates = await Promise.all(
      targets(webhooks).map((target) => servingCertificate(core, target, names, options.timeoutMs)),
    );

    const serviceWebhook = webhooks.find((webhook) => webhook.service);
    let service: ClusterSnapshot['service'];
    if (serviceWebhook?.service) {
      step = `reading Service ${names.namespace}/${names.service}`;
      const { name, namespace } = serviceWebhook.service;
      const exists = (await orUndefined(() => core.readNamespacedService({ name, namespace }))) !== undefined;
      const endpoints = await orUndefined(() => core.readNamespacedEndpoints({ name, namespace }));
      const count = (key: 'addresses' | 'notReadyAddresses') =>
        (endpoints?.subsets ?? []).reduce((sum, subset) => sum + (subset[key]?.length ?? 0), 0);
      service = { exists, readyEndpoints: count('addresses'), notReadyEndpoints: count('notReadyAddresses') };
    }

    const snapshot: ClusterSnapshot = {
      now: new Date(),
      names,
      serverVersion,
      ...(stored ? { webhookConfiguration: { webhooks } } : {}),
      servingCertificates,
      ...(service ? { service } : {}),
      namespaces,
      pods: [],
      replicaSets: [],
      injector,
    };
    for (const { name: namespace } of selectedNamespaces(snapshot)) {
      step = `listing pods in namespace ${namespace}`;
      const pods = (await core.listNamespacedPod({ namespace })).items;
      snapshot.pods.push(...pods.map(podEssentials));
      if (pods.some((pod) => pod.metadata?.ownerReferences?.some((owner) => owner.kind === 'ReplicaSet'))) {
        step = `listing replica sets in namespace ${namespace}`;
        const replicaSets = (await apps.listNamespacedReplicaSet({ namespace })).items;
        snapshot.replicaSets.push(
          ...replicaSets.map((rs) => ({
            namespace,
            name: rs.metadata?.name ?? '',
            ownerReferences: rs.metadata?.ownerReferences as V1OwnerReference[] | undefined,
          })),
        );
      }
    }
    return snapshot;
  } catch (error) {
    if (error instanceof InjectorConfigError) throw error;
    return empty(`${step}: ${describeApiError(error)}`, await injectorFrom(undefined, options));
  }
}

/** Only what the report reads, so `-o json` and memory stay small on big namespaces. */
function podEssentials(pod: V1Pod): V1Pod {
  return {
    metadata: {
      name: pod.metadata?.name,
      namespace: pod.metadata?.namespace,
      labels: pod.metadata?.labels,
      annotations: pod.metadata?.annotations,
      ownerReferences: pod.metadata?.ownerReferences,
      deletionTimestamp: pod.metadata?.deletionTimestamp,
    },
    spec: {
      hostNetwork: pod.spec?.hostNetwork,
      containers: (pod.spec?.containers ?? []).map((c) => ({ name: c.name })),
      initContainers: (pod.spec?.initContainers ?? []).map((c) => ({ name: c.name })),
    },
    status: { phase: pod.status?.phase },
  };
}

export class InjectorConfigError extends Error {}

/** --config DIR, else the ConfigMap the manifests install, else the configuration this package ships. */
async function injectorFrom(
  core: CoreV1Api | undefined,
  options: CheckOptions,
): Promise<ClusterSnapshot['injector']> {
  let files: ConfigFiles;
  let source: string;
  if (options.config) {
    files = await readConfigFiles(options.config);
    source = options.config;
  } else {
    const configMap = core
      ? await orUndefined(() =>
          core.readNamespacedConfigMap({ name: options.configMap, namespace: options.namespace }),
        )
      : undefined;
    const installed = configFilesFromData(configMap?.data ?? {});
    if (installed !== null) {
      files = installed;
      source = `ConfigMap ${options.namespace}/${options.configMap}`;
    } else {
      source = packagedConfigDir();
      files = await readConfigFiles(source);
    }
  }
  let config: InjectorConfig;
  try {
    config = parseConfig(files);
  } catch (error) {
    throw new InjectorConfigError(
      `the injector configuration from ${source} does not load: ${(error as Error).message}; ` +
        'fix it, or pass --config DIR with the configuration the webhook runs',
    );
  }
  return {
    revision: config.values.revision,
    templateVersion: templateVersion(config),
    decision: config.values,
    source,
  };
}

interface Target {
  url?: string;
  service?: { namespace: string; name: string };
  webhooks: string[];
}

/** The distinct places the webhooks point at; the manifests' four webhooks share one. */
function targets(webhooks: WebhookClient[]): Target[] {
  const byKey = new Map<string, Target>();
  for (const webhook of webhooks) {
    const key = webhook.url ?? `${webhook.service?.namespace}/${webhook.service?.name}`;
    if (!webhook.url && !webhook.service) continue;
    const target = byKey.get(key) ?? { url: webhook.url, service: webhook.service, webhooks: [] };
    target.webhooks.push(webhook.name);
    byKey.set(key, target);
  }
  return [...byKey.values()];
}

async function servingCertificate(
  core: CoreV1Api,
  target: Target,
  names: CheckNames,
  timeoutMs: number,
): Promise<ServingCertificate> {
  if (target.url) {
    const url = new URL(target.url);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const base = { source: `${target.url} (TLS handshake)`, host, webhooks: target.webhooks };
    try {
      return { ...base, pem: await peerCertificate(host, Number(url.port || 443), timeoutMs) };
    } catch (error) {
      return { ...base, error: (error as Error).message };
    }
  }
  const service = target.service as { namespace: string; name: string };
  const base = {
    source: `Secret ${service.namespace}/${names.secret} (key ${SECRET_KEYS.servingCert})`,
    host: `${service.name}.${service.namespace}.svc`,
    webhooks: target.webhooks,
  };
  const secret = await orUndefined(() =>
    core.readNamespacedSecret({ name: names.secret, namespace: service.namespace }),
  );
  const data = secret?.data?.[SECRET_KEYS.servingCert];
  if (!secret) return { ...base, error: 'the Secret does not exist' };
  if (!data) return { ...base, error: `the Secret has no ${SECRET_KEYS.servingCert}` };
  return { ...base, pem: Buffer.from(data, 'base64').toString() };
}

function peerCertificate(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // Not verified here: the report verifies it against the caBundle, which is what matters to the apiserver.
    const socket = connect({
      host,
      port,
      ...(isIP(host) ? {} : { servername: host }),
      rejectUnauthorized: false,
      timeout: timeoutMs,
    });
    socket.once('secureConnect', () => {
      const raw = socket.getPeerCertificate(false).raw;
      socket.end();
      if (!raw) reject(new Error('the server sent no certificate'));
      else resolve(new X509Certificate(raw).toString());
    });
    socket.once('timeout', () => socket.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)));
    socket.once('error', reject);
  });
}

async function orUndefined<T>(call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw error;
  }
}

function describeApiError(error: unknown): string {
  if (error instanceof ApiException) {
    let message: string;
    try {
      message = (JSON.parse(String(error.body)) as { message?: string }).message ?? '';
    } catch {
      message = String(error.body ?? '');
    }
    return `HTTP ${error.code}${message ? `: ${message}` : ''}`;
  }
  const cause = (error as { cause?: { message?: string } }).cause?.message;
  return `${(error as Error).message}${cause ? ` (${cause})` : ''}`;
}
