/**
 * The injector's configuration directory (a ConfigMap mount): `template.yaml` (required), `values.yaml` and
 * `envoy.yaml` (optional), and Istio's own inputs in Istio's formats (optional): `istio-values.json` (the
 * `istio-sidecar-injector` ConfigMap's `values`), `istio-config.yaml` (its `config`) and `istio-mesh.yaml` (the
 * `istio` ConfigMap's `mesh`). With Istio's inputs, they give the settings they cover (webhook/istio-mapping.ts)
 * and values.yaml holds only the injector's own. Loading validates everything, including a trial injection, so a
 * configuration that loads is one that injects.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { ANNOTATIONS, CONTAINER_NAMES, PORTS } from '../common/constants.js';
import { injectPod, type InjectionContext } from './inject.js';
import {
  IstioInputError,
  isMapping,
  parseIstioInputs,
  type IstioSourceNames,
  type IstioTexts,
} from './istio-inputs.js';
import { istioSettings, type IstioSettings } from './istio-mapping.js';
import { canRunTproxy } from './proxy-identity.js';
import { parseSidecarTemplate } from './sidecar-template.js';
import { parseValues, type InjectorValues } from './values.js';

export const CONFIG_FILES = {
  template: 'template.yaml',
  values: 'values.yaml',
  proxyBootstrap: 'envoy.yaml',
  istioValues: 'istio-values.json',
  istioConfig: 'istio-config.yaml',
  istioMesh: 'istio-mesh.yaml',
} as const;

const ISTIO_FILE_NAMES: IstioSourceNames = {
  values: CONFIG_FILES.istioValues,
  injectConfig: CONFIG_FILES.istioConfig,
  mesh: CONFIG_FILES.istioMesh,
};

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
  /** Istio's inputs; absent (or all null) for a configuration without them. */
  istio?: IstioTexts;
  /** What to call Istio's inputs in messages, when they came from elsewhere than the directory (istioctl flags). */
  istioSources?: IstioSourceNames;
}

export const NO_ISTIO_INPUTS: IstioTexts = { values: null, injectConfig: null, mesh: null };

export async function readConfigFiles(dir: string): Promise<ConfigFiles> {
  const templateText = await readOptional(join(dir, CONFIG_FILES.template));
  if (templateText === null) throw new ConfigError(`${join(dir, CONFIG_FILES.template)} does not exist`);
  return {
    templateText,
    valuesText: await readOptional(join(dir, CONFIG_FILES.values)),
    proxyBootstrap: await readOptional(join(dir, CONFIG_FILES.proxyBootstrap)),
    istio: {
      values: await readOptional(join(dir, CONFIG_FILES.istioValues)),
      injectConfig: await readOptional(join(dir, CONFIG_FILES.istioConfig)),
      mesh: await readOptional(join(dir, CONFIG_FILES.istioMesh)),
    },
  };
}

/** The configuration files held by a ConfigMap's data (keys named as the files); null without template.yaml. */
export function configFilesFromData(data: Readonly<Record<string, string>>): ConfigFiles | null {
  const templateText = data[CONFIG_FILES.template];
  if (templateText === undefined) return null;
  return {
    templateText,
    valuesText: data[CONFIG_FILES.values] ?? null,
    proxyBootstrap: data[CONFIG_FILES.proxyBootstrap] ?? null,
    istio: {
      values: data[CONFIG_FILES.istioValues] ?? null,
      injectConfig: data[CONFIG_FILES.istioConfig] ?? null,
      mesh: data[CONFIG_FILES.istioMesh] ?? null,
    },
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
  const istioTexts = files.istio ?? NO_ISTIO_INPUTS;
  const istio = hasIstioInputs(istioTexts)
    ? wrap(() => istioSettings(parseIstioInputs(istioTexts, files.istioSources ?? ISTIO_FILE_NAMES)))
    : null;
  const config: InjectorConfig = {
    values: wrap(() =>
      istio ? parseValues(withOwnSettings(istio, rawValues), istio.template) : parseValues(rawValues),
    ),
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

export function hasIstioInputs(texts: IstioTexts): boolean {
  return texts.values !== null || texts.injectConfig !== null || texts.mesh !== null;
}

/**
 * values.yaml over the settings mapped from Istio's inputs. Each setting has one source: values.yaml may set only
 * what Istio's inputs do not cover (nativeSidecars without pilot.env.ENABLE_NATIVE_SIDECARS, for example), and
 * `images`, which the webhook's Deployment overrides (--proxy-image, --init-image; kustomize's `images:`).
 */
function withOwnSettings(istio: IstioSettings, own: unknown): Record<string, unknown> {
  if (own === null || own === undefined) return istio.values;
  if (!isMapping(own)) throw new ConfigError(`${CONFIG_FILES.values} must be a mapping`);
  const mapped = istio.values;
  const merged: Record<string, unknown> = { ...mapped };
  for (const [key, value] of Object.entries(own)) {
    if (key === 'images' && isMapping(value) && isMapping(mapped.images)) {
      merged.images = { ...mapped.images, ...value };
    } else if (Object.hasOwn(mapped, key)) {
      throw new ConfigError(
        `${CONFIG_FILES.values}: ${key} comes from Istio's inputs (${CONFIG_FILES.istioValues}, ` +
          `${CONFIG_FILES.istioConfig}, ${CONFIG_FILES.istioMesh}) in this configuration; set it there`,
      );
    } else merged[key] = value;
  }
  return merged;
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
    if (error instanceof IstioInputError) throw new ConfigError(`Istio's inputs: ${error.message}`);
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
