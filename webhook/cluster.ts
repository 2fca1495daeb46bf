/** The webhook's calls to the apiserver, at the edge: its version, and its own certificates and caBundle. */
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  KubeConfig,
  VersionApi,
} from '@kubernetes/client-node';
import { ConflictError, type CertificateApi } from './certificate-manager.js';
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

export function kubernetesCertificateApi(
  kubeConfig: KubeConfig,
  names: { namespace: string; secret: string; webhookConfiguration: string },
): CertificateApi {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const admission = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  const { namespace, secret: name } = names;
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
        throw error;
      }
    },
    async createSecret(data) {
      await conflictsAs409(() => core.createNamespacedSecret({ namespace, body: body(data) }));
    },
    async replaceSecret(data, resourceVersion) {
      await conflictsAs409(() =>
        core.replaceNamespacedSecret({ name, namespace, body: body(data, resourceVersion) }),
      );
    },
    async ensureCaBundle(caBundlePem) {
      const wanted = Buffer.from(caBundlePem).toString('base64');
      for (let attempt = 0; attempt < 5; attempt++) {
        const configuration = await admission.readMutatingWebhookConfiguration({
          name: names.webhookConfiguration,
        });
        const webhooks = configuration.webhooks ?? [];
        if (webhooks.every((webhook) => webhook.clientConfig.caBundle === wanted)) return false;
        for (const webhook of webhooks) webhook.clientConfig.caBundle = wanted;
        try {
          await admission.replaceMutatingWebhookConfiguration({
            name: names.webhookConfiguration,
            body: configuration,
          });
          return true;
        } catch (error) {
          if (statusOf(error) !== 409) throw error;
        }
      }
      throw new Error(
        `the MutatingWebhookConfiguration ${names.webhookConfiguration} kept changing under us`,
      );
    },
  };
}

function statusOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

async function conflictsAs409(call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (error) {
    if (statusOf(error) === 409) throw new ConflictError('conflict');
    throw error;
  }
}
