/**
 * The injector's configuration directory (a ConfigMap mount): `template.yaml` (required), `values.yaml` and
 * `envoy.yaml` (optional). Loading validates everything, including a trial injection, so a configuration that
 * loads is one that injects.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { ANNOTATIONS, CONTAINER_NAMES, PORTS } from '../common/constants.js';
import { injectPod, type InjectionContext } from './inject.js';
import { canRunTproxy } from './proxy-identity.js';
import { parseSidecarTemplate } from './sidecar-template.js';
import { parseValues, type InjectorValues } from './values.js';

export const CONFIG_FILES = {
  template: 'template.yaml',
  values: 'values.yaml',
  proxyBootstrap: 'envoy.yaml',
} as const;

export interface InjectorConfig {
  values: InjectorValues;
  template: InjectionContext['template'];
  /** envoy.yaml as one line of JSON (JSON is YAML to Envoy): it travels in every injected pod, so no comments. */
  proxyBootstrap: string | null;
}

export class ConfigError extends Error {}

export interface ConfigFiles {
  templateText: string;
  valuesText: string | null;
  proxyBootstrap: string | null;
}

export async function readConfigFiles(dir: string): Promise<ConfigFiles> {
  const templateText = await readOptional(join(dir, CONFIG_FILES.template));
  if (templateText === null) throw new ConfigError(`${join(dir, CONFIG_FILES.template)} does not exist`);
  return {
    templateText,
    valuesText: await readOptional(join(dir, CONFIG_FILES.values)),
    proxyBootstrap: await readOptional(join(dir, CONFIG_FILES.proxyBootstrap)),
  };
}

export async function loadConfig(dir: string): Promise<InjectorConfig> {
  return parseConfig(await readConfigFiles(dir));
}

export function parseConfig(files: ConfigFiles): InjectorConfig {
  let rawValues: unknown;
  try {
    rawValues = files.valuesText === null ? undefined : parseYaml(files.valuesText, { maxAliasCount: 0 });
  } catch (error) {
    throw new ConfigError(`values.yaml is not valid YAML: ${(error as Error).message}`);
  }
  if (files.proxyBootstrap === null && /\{\{\s*proxy\.bootstrap\s*\}\}/.test(files.templateText)) {
    throw new ConfigError(
      `template.yaml uses proxy.bootstrap, but ${CONFIG_FILES.proxyBootstrap} is missing`,
    );
  }
  const config: InjectorConfig = {
    values: wrap(() => parseValues(rawValues)),
    template: wrap(() => parseSidecarTemplate(files.templateText)),
    proxyBootstrap: files.proxyBootstrap === null ? null : compactBootstrap(files.proxyBootstrap),
  };
  for (const nativeSidecars of [false, true]) {
    const trial = wrap(() => injectPod(TRIAL_POD, 'default', { ...config, nativeSidecars }));
    if (trial.outcome !== 'injected') throw new ConfigError(`a trial injection was denied: ${trial.message}`);
  }
  if (config.values.traffic.supportedInterceptionModes.includes('TPROXY')) checkTproxy(config);
  return config;
}

/**
 * A configuration that declares TPROXY supported must render a proxy that works under TPROXY: running with
 * NET_ADMIN as uid 0, and, with a static bootstrap, an inbound listener that accepts transparently redirected
 * connections. Otherwise it refuses to load rather than render a proxy that cannot receive traffic.
 */
function checkTproxy(config: InjectorConfig): void {
  const declared = 'values.traffic.supportedInterceptionModes lists TPROXY';
  const fix = 'fix: remove TPROXY from values.traffic.supportedInterceptionModes';
  const pod = structuredClone(TRIAL_POD);
  pod.metadata!.annotations = { [ANNOTATIONS.interceptionMode]: 'TPROXY' };
  const trial = wrap(() => injectPod(pod, 'default', { ...config, nativeSidecars: false }));
  if (trial.outcome !== 'injected')
    throw new ConfigError(`${declared}, but a TPROXY trial injection was denied: ${trial.message}`);
  const proxy = trial.pod.spec?.containers.find((c) => c.name === CONTAINER_NAMES.proxy);
  if (!proxy || !canRunTproxy(proxy)) {
    throw new ConfigError(
      `${declared}, but the rendered proxy does not run as uid 0 with NET_ADMIN, which TPROXY needs; ${fix}`,
    );
  }
  if (config.proxyBootstrap === null) return;
  const bootstrap = JSON.parse(config.proxyBootstrap) as {
    static_resources?: {
      listeners?: { address?: { socket_address?: { port_value?: unknown } }; transparent?: unknown }[];
    };
  };
  const inbound = (bootstrap.static_resources?.listeners ?? []).find(
    (listener) => listener.address?.socket_address?.port_value === PORTS.inboundCapture,
  );
  if (inbound?.transparent !== true) {
    throw new ConfigError(
      `${declared}, but ${CONFIG_FILES.proxyBootstrap} has no inbound listener on port ${PORTS.inboundCapture} with ` +
        '"transparent: true", so the proxy could not accept connections captured by TPROXY; ' +
        `${fix}, or make that listener transparent`,
    );
  }
}

function compactBootstrap(text: string): string {
  let bootstrap: unknown;
  try {
    bootstrap = parseYaml(text, { maxAliasCount: 0 });
  } catch (error) {
    throw new ConfigError(`${CONFIG_FILES.proxyBootstrap} is not valid YAML: ${(error as Error).message}`);
  }
  if (typeof bootstrap !== 'object' || bootstrap === null || Array.isArray(bootstrap)) {
    throw new ConfigError(`${CONFIG_FILES.proxyBootstrap} is not a YAML mapping (Envoy's bootstrap)`);
  }
  return JSON.stringify(bootstrap);
}

const TRIAL_POD: V1Pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'trial', namespace: 'default', labels: { app: 'trial' } },
  spec: { containers: [{ name: 'app', image: 'example.com/app:1', ports: [{ containerPort: 8080 }] }] },
};

function wrap<T>(load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError((error as Error).message);
  }
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}
