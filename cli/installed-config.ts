/**
 * The injector configuration installed in a cluster, as the webhook there uses it: the files of the ConfigMap
 * mesh-injector-config and the images the webhook Deployment's environment sets over values.yaml.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { IMAGE_ENV } from '../common/constants.js';
import { CONFIG_FILES, ConfigError, configFilesFromData, type ConfigFiles } from '../webhook/config.js';
import type { ImageOverrides } from '../webhook/image-overrides.js';

export interface InstalledConfigNames {
  namespace: string;
  configMap: string;
  deployment: string;
}

export const INSTALLED_CONFIG_NAMES: InstalledConfigNames = {
  namespace: 'mesh-injector',
  configMap: 'mesh-injector-config',
  deployment: 'mesh-injector',
};

export interface InstalledConfig {
  files: ConfigFiles;
  images: ImageOverrides;
}

/** Throws when the ConfigMap cannot be read; the Deployment's images are optional (a user may not read it). */
export async function readInstalledConfig(
  kubeConfig: KubeConfig,
  names: InstalledConfigNames,
  timeoutMs = 5_000,
): Promise<InstalledConfig> {
  // Loaded here, not at the top: `mesh-injector serve` imports this module's names, and client-node is large.
  const { AppsV1Api, CoreV1Api } = await import('@kubernetes/client-node');
  const { namespace } = names;
  const configMap = await withTimeout(
    kubeConfig.makeApiClient(CoreV1Api).readNamespacedConfigMap({ name: names.configMap, namespace }),
    timeoutMs,
  );
  const data = configMap.data ?? {};
  const files = configFilesFromData(data);
  if (files === null)
    throw new ConfigError(`ConfigMap ${namespace}/${names.configMap} has no ${CONFIG_FILES.template}`);
  let images: ImageOverrides = {};
  try {
    const deployment = await withTimeout(
      kubeConfig.makeApiClient(AppsV1Api).readNamespacedDeployment({ name: names.deployment, namespace }),
      timeoutMs,
    );
    const env = deployment.spec?.template.spec?.containers.flatMap((container) => container.env ?? []) ?? [];
    const value = (name: string) => env.find((variable) => variable.name === name)?.value;
    images = { proxy: value(IMAGE_ENV.proxy), init: value(IMAGE_ENV.init) };
  } catch {
    // Without the Deployment, values.yaml's images are the best guess.
  }
  return { files, images };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${ms / 1000} s`)), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

/** One line for an apiserver error: the Status message when there is one, else the error's own message. */
export function apiErrorSummary(error: unknown): string {
  const { code, body, message } = error as { code?: number; body?: unknown; message?: string };
  if (typeof code === 'number') {
    let status: string | undefined;
    try {
      status = (JSON.parse(String(body)) as { message?: string }).message;
    } catch {
      status = undefined;
    }
    return `HTTP ${code}${status ? `: ${status}` : ''}`;
  }
  return (message ?? String(error)).split('\n')[0]!;
}
