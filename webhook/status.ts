/**
 * The `sidecar.istio.io/status` annotation: which containers and volumes the injector added, so a re-injection
 * can replace them instead of adding them twice. Keys in Istio's order; empty lists serialise as null.
 *
 * `version` identifies the configuration the sidecar was rendered from (template, values and proxy bootstrap), as
 * the `version` key of Istio's status did up to 1.7, so `mesh-injector check` can tell which pods run a sidecar
 * from an older template. Istio ignores keys it does not know.
 */
import { createHash } from 'node:crypto';

export interface InjectionStatus {
  initContainers: string[];
  containers: string[];
  volumes: string[];
  imagePullSecrets: string[];
  revision: string;
  /** templateVersion() of the configuration that rendered the sidecar; absent from older annotations. */
  version?: string;
}

export function formatStatus(status: InjectionStatus): string {
  const list = (names: string[]) => (names.length > 0 ? names : null);
  return JSON.stringify({
    initContainers: list(status.initContainers),
    containers: list(status.containers),
    volumes: list(status.volumes),
    imagePullSecrets: list(status.imagePullSecrets),
    revision: status.revision,
    ...(status.version !== undefined ? { version: status.version } : {}),
  });
}

/** An unparseable annotation counts as absent, as in Istio. */
export function parseStatus(annotation: string | undefined): InjectionStatus | undefined {
  if (annotation === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(annotation);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const record = parsed as Record<string, unknown>;
  const names = (value: unknown) =>
    Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
  return {
    initContainers: names(record.initContainers),
    containers: names(record.containers),
    volumes: names(record.volumes),
    imagePullSecrets: names(record.imagePullSecrets),
    revision: typeof record.revision === 'string' ? record.revision : '',
    ...(typeof record.version === 'string' && record.version !== '' ? { version: record.version } : {}),
  };
}

/** What a sidecar's rendering depends on besides the pod: the loaded configuration. */
export interface RenderingConfig {
  template: unknown;
  values: unknown;
  proxyBootstrap: string | null;
}

const versions = new WeakMap<object, { config: RenderingConfig; version: string }>();

/**
 * A short hash of the configuration, independent of key order and of the files' comments and layout, so only a
 * change that can change a rendered sidecar gives a new version. Cached per loaded template.
 */
export function templateVersion(config: RenderingConfig): string {
  const key = typeof config.template === 'object' && config.template !== null ? config.template : undefined;
  const cached = key && versions.get(key);
  if (
    cached &&
    cached.config.values === config.values &&
    cached.config.proxyBootstrap === config.proxyBootstrap
  ) {
    return cached.version;
  }
  const canonical = canonicalJson([config.template, config.values, config.proxyBootstrap]);
  const version = createHash('sha256').update(canonical).digest('hex').slice(0, 16);
  if (key) versions.set(key, { config, version });
  return version;
}

/** JSON with object keys sorted at every level. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
