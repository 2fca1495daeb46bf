/** The webhook's calls to the apiserver, at the edge: its version, and its own certificates and caBundle. */
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  KubeConfig,
  makeInformer,
  VersionApi,
  type V1MutatingWebhookConfiguration,
  type V1Node,
} from '@kubernetes/client-node';
import type { CertificateApi } from './certificate-manager.js';
import { ConflictError } from './conflict-error.js';
import type { Logger } from 'pino';
import type { ServerVersion } from './native-sidecars.js';

/** KUBECONFIG, ~/.kube/config or the in-cluster service account, as client-node resolves them. */
export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (kubeconfigPath) kubeConfig.loadFromFile(kubeconfigPath);
  else kubeConfig.loadFromDefault();
  return kubeConfig;
}

export async function fetchServerVersion(kubeConfig: KubeConfig): Promise<ServerVersion> {
  const info = await kubeConfig.makeApiClient(VersionApi).getCode();
  return { major: info.major, minor: info.minor, gitVersion: info.gitVersion };
}

export interface KubeletVersions {
  /** Each node's kubelet version by node name, as last seen. */
  current(): ReadonlyMap<string, string>;
  stop(): Promise<void>;
}

/**
 * Watches the nodes' kubelet versions (list and watch on nodes, the only node access the webhook has), for the
 * native-sidecar rule. A failed watch is restarted after a pause; until the first list the map is empty.
 */
export function watchKubeletVersions(kubeConfig: KubeConfig, log: Logger, retryMs = 5_000): KubeletVersions {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const informer = makeInformer<V1Node>(kubeConfig, '/api/v1/nodes', () => core.listNode());
  let versions: ReadonlyMap<string, string> = new Map();
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const refresh = () => {
    versions = new Map(
      informer
        .list()
        .map((node) => [node.metadata?.name ?? '', node.status?.nodeInfo?.kubeletVersion ?? ''] as const)
        .filter(([name]) => name !== ''),
    );
  };
  for (const event of ['add', 'update', 'delete'] as const) informer.on(event, refresh);
  const start = (): void => void informer.start().catch(failed);
  function failed(error: unknown): void {
    if (stopped || retry !== undefined) return;
    log.warn({ err: error instanceof Error ? error.message : String(error) }, 'node watch failed; retrying');
    retry = setTimeout(() => {
      retry = undefined;
      if (!stopped) start();
    }, retryMs);
    retry.unref();
  }
  informer.on('error', failed);
  start();
  return {
    current: () => versions,
    async stop() {
      stopped = true;
      clearTimeout(retry);
      await informer.stop();
    },
  };
}

export function kubernetesCertificateApi(
  kubeConfig: KubeConfig,
  names: { namespace: string; secret: string; webhookConfiguration: string },
): CertificateApi {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const admission = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  const { namespace, secret: name } = names;
  const secretRef: ObjectRef = { kind: 'Secret', name, namespace, resource: 'secrets' };
  const webhookRef: ObjectRef = {
    kind: 'MutatingWebhookConfiguration',
    name: names.webhookConfiguration,
    resource: 'mutatingwebhookconfigurations.admissionregistration.k8s.io',
  };
  const decode = (data: Record<string, string> = {}) =>
    Object.fromEntries(
      Object.entries(data).map(([key, value]) => [key, Buffer.from(value, 'base64').toString()]),
    );
  const body = (data: Record<string, string>, resourceVersion?: string) => ({
    metadata: {
      name,
      namespace,
      ...(resourceVersion ? { resourceVersion } : {}),
      labels: { 'app.kubernetes.io/name': 'mesh-injector' },
    },
    type: 'Opaque',
    stringData: data,
  });

  return {
    async readSecret() {
      try {
        const secret = await core.readNamespacedSecret({ name, namespace });
        return { data: decode(secret.data), resourceVersion: secret.metadata?.resourceVersion ?? '' };
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw explained(error, 'get', secretRef);
      }
    },
    async createSecret(data) {
      const created = await conflictsAs409('create', secretRef, () =>
        core.createNamespacedSecret({ namespace, body: body(data) }),
      );
      return created.metadata?.resourceVersion ?? '';
    },
    async replaceSecret(data, resourceVersion) {
      const replaced = await conflictsAs409('update', secretRef, () =>
        core.replaceNamespacedSecret({ name, namespace, body: body(data, resourceVersion) }),
      );
      return replaced.metadata?.resourceVersion ?? '';
    },
    async ensureCaBundle(caBundlePem) {
      const wanted = Buffer.from(caBundlePem).toString('base64');
      const configurationName = names.webhookConfiguration;
      for (let attempt = 0; attempt < 5; attempt++) {
        let configuration: V1MutatingWebhookConfiguration;
        try {
          configuration = await admission.readMutatingWebhookConfiguration({ name: configurationName });
        } catch (error) {
          throw explained(error, 'get', webhookRef);
        }
        const webhooks = configuration.webhooks ?? [];
        if (webhooks.length === 0) {
          throw new Error(
            `the MutatingWebhookConfiguration ${configurationName} has no webhooks to give a caBundle; ` +
              'fix: apply manifests/mutating-webhook.yaml (kubectl apply -k manifests)',
          );
        }
        if (webhooks.every((webhook) => webhook.clientConfig.caBundle === wanted)) return false;
        for (const webhook of webhooks) webhook.clientConfig.caBundle = wanted;
        try {
          await admission.replaceMutatingWebhookConfiguration({
            name: configurationName,
            body: configuration,
          });
          return true;
        } catch (error) {
          if (statusOf(error) !== 409) throw explained(error, 'update', webhookRef);
        }
      }
      throw new Error(
        `the MutatingWebhookConfiguration ${names.webhookConfiguration} kept changing under us`,
      );
    },
  };
}

interface ObjectRef {
  kind: string;
  name: string;
  namespace?: string;
  /** As RBAC names it, for the fix in an error message. */
  resource: string;
}

function statusOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

async function conflictsAs409<T>(verb: string, ref: ObjectRef, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (statusOf(error) === 409) throw new ConflictError(`${verb} ${describe(ref)}: conflict`);
    throw explained(error, verb, ref);
  }
}

function describe(ref: ObjectRef): string {
  return `the ${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`;
}

/** An apiserver error as a sentence naming the call, the object and, where we know it, the fix. */
function explained(error: unknown, verb: string, ref: ObjectRef): Error {
  const status = statusOf(error);
  const detail = apiMessage(error);
  const base = `cannot ${verb} ${describe(ref)}: ${status === undefined ? '' : `HTTP ${status}: `}${detail}`;
  const fix =
    status === 403
      ? `; fix: grant the webhook's ServiceAccount "${verb}" on ${ref.resource} named ${ref.name} ` +
        '(manifests/rbac.yaml)'
      : status === 404 && ref.kind === 'MutatingWebhookConfiguration'
        ? '; fix: install it first (kubectl apply -k manifests) or pass --webhook-configuration'
        : '';
  return new Error(base + fix, { cause: error });
}

function apiMessage(error: unknown): string {
  if (error instanceof ApiException) {
    const body: unknown = error.body;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    try {
      const parsed = JSON.parse(text) as { message?: unknown };
      if (typeof parsed.message === 'string') return parsed.message;
    } catch {
      // not a Status object; fall through to the raw body
    }
    return text.slice(0, 300);
  }
  return error instanceof Error ? error.message : String(error);
}
