/**
 * Istio's own injection inputs, in Istio's formats: the chart values that the `istio-sidecar-injector` ConfigMap
 * holds under `values`, the injector config under `config` (policy, selectors, injected annotations, default
 * templates), and the mesh config that the `istio` ConfigMap holds under `mesh`. Each is validated key by key and
 * merged over Istio's defaults, so an unknown or ill-typed key is an error that names it, and a missing key means
 * what it means to Istio. webhook/istio-mapping.ts turns the result into the injector's settings.
 */
import { parse as parseYaml } from 'yaml';
import { selectorProblem, type LabelSelector } from './label-selector.js';

export class IstioInputError extends Error {}

/**
 * How mesh-injector treats one of Istio's chart values:
 * - `mapped`: read into the injector's settings or the template's data;
 * - `ignored`: it configures something other than sidecar injection (the istiod Deployment, gateways, webhooks);
 * - `unsupported`: it changes the injected pod in a way this injector does not render yet, so any value other than
 *   Istio's default is refused rather than silently rendered differently.
 */
type Use = 'mapped' | 'ignored' | 'unsupported';
type Kind = 'string' | 'boolean' | 'integer' | 'scalar' | 'stringList' | 'selectorList' | 'stringMap' | 'any';

interface ValueDeclaration {
  kind: Kind;
  /** Istio's default (charts/istio-control/istio-discovery/values.yaml, profiles/default.yaml). */
  default: unknown;
  use: Use;
}

const v = (kind: Kind, fallback: unknown, use: Use = 'mapped'): ValueDeclaration => ({
  kind,
  default: fallback,
  use,
});
const ignored = (fallback: unknown = undefined): ValueDeclaration => v('any', fallback, 'ignored');
const unsupported = (kind: Kind, fallback: unknown): ValueDeclaration => v(kind, fallback, 'unsupported');

/**
 * Every chart value the `values` key may hold, declared once, by dotted path. A path whose kind is `any` takes
 * any value below it. Keys of the ConfigMap that are not here are errors.
 */
export const ISTIO_VALUES: Readonly<Record<string, ValueDeclaration>> = {
  revision: v('string', ''),
  'global.hub': v('string', 'registry.istio.io/testing'),
  'global.tag': v('scalar', 'latest'),
  'global.variant': v('string', ''),
  'global.imagePullPolicy': v('string', ''),
  'global.imagePullSecrets': v('stringList', []),
  'global.istioNamespace': v('string', 'istio-system'),
  'global.logging.level': v('string', 'default:info'),
  'global.logAsJson': unsupported('boolean', false),
  'global.nativeNftables': unsupported('boolean', false),
  'global.meshID': v('string', ''),
  'global.network': v('string', ''),
  'global.multiCluster.clusterName': v('string', ''),
  'global.multiCluster.enabled': ignored(),
  'global.multiCluster.globalDomainSuffix': ignored(),
  'global.multiCluster.includeEnvoyFilter': ignored(),
  'global.pilotCertProvider': v('string', 'istiod'),
  'global.caAddress': v('string', ''),
  'global.caName': unsupported('string', ''),
  'global.jwtPolicy': unsupported('string', 'third-party-jwt'),
  'global.mountMtlsCerts': unsupported('boolean', false),
  'global.sds.token.aud': unsupported('string', 'istio-ca'),
  'global.sts.servicePort': unsupported('integer', 0),
  'global.trustBundleName': unsupported('string', ''),
  'global.trustDomain': v('string', ''),
  'global.proxy.image': v('string', 'proxyv2'),
  'global.proxy.variant': v('string', ''),
  'global.proxy.autoInject': v('string', 'enabled'),
  'global.proxy.clusterDomain': v('string', 'cluster.local'),
  'global.proxy.logLevel': v('string', 'warning'),
  'global.proxy.componentLogLevel': v('string', 'misc:error'),
  'global.proxy.includeIPRanges': v('string', '*'),
  'global.proxy.excludeIPRanges': v('string', ''),
  'global.proxy.includeInboundPorts': v('string', '*'),
  'global.proxy.excludeInboundPorts': v('string', ''),
  'global.proxy.includeOutboundPorts': v('string', ''),
  'global.proxy.excludeOutboundPorts': v('string', ''),
  'global.proxy.statusPort': v('integer', 15020),
  'global.proxy.readinessInitialDelaySeconds': v('integer', 0),
  'global.proxy.readinessPeriodSeconds': v('integer', 15),
  'global.proxy.readinessFailureThreshold': v('integer', 4),
  'global.proxy.holdApplicationUntilProxyStarts': v('boolean', false),
  'global.proxy.privileged': v('boolean', false),
  'global.proxy.resources': v('any', {
    requests: { cpu: '100m', memory: '128Mi' },
    limits: { cpu: '2000m', memory: '1024Mi' },
  }),
  // Removed from Istio's template (core dumps are configured on the node now); accepted and, as in Istio, unused.
  'global.proxy.enableCoreDump': ignored(false),
  'global.proxy.capNetBindService': unsupported('boolean', false),
  'global.proxy.lifecycle': unsupported('any', {}),
  'global.proxy.outlierLogPath': unsupported('string', ''),
  'global.proxy.seccompProfile': unsupported('any', {}),
  'global.proxy.startupProbe.enabled': unsupported('boolean', true),
  'global.proxy.startupProbe.failureThreshold': unsupported('integer', 600),
  'global.proxy.tracer': v('string', 'none'),
  'global.proxy_init.image': v('string', 'proxyv2'),
  'global.proxy_init.resources': ignored(),
  'global.proxy_init.forceApplyIptables': unsupported('boolean', false),
  'global.tracer': ignored(),
  // The rest of `global` configures istiod, gateways and the installation, not the injected sidecar.
  ...Object.fromEntries(
    [
      'arch',
      'autoscalingv2API',
      'certSigners',
      'configCluster',
      'configValidation',
      'defaultConfigVisibilitySettings',
      'defaultNodeSelector',
      'defaultPodDisruptionBudget',
      'defaultResources',
      'defaultTolerations',
      'externalIstiod',
      'ipFamilies',
      'ipFamilyPolicy',
      'istiod',
      'meshNetworks',
      'networkPolicy',
      'omitSidecarInjectorConfigMap',
      'operatorManageWebhooks',
      'platform',
      'podDNSSearchNamespaces',
      'priorityClassName',
      'remotePilotAddress',
      'resourceScope',
      'waypoint',
    ].map((key) => [`global.${key}`, ignored()]),
  ),
  'sidecarInjectorWebhook.neverInjectSelector': v('selectorList', []),
  'sidecarInjectorWebhook.alwaysInjectSelector': v('selectorList', []),
  'sidecarInjectorWebhook.injectedAnnotations': v('stringMap', {}),
  'sidecarInjectorWebhook.rewriteAppHTTPProbe': v('boolean', true),
  'sidecarInjectorWebhook.defaultTemplates': v('stringList', []),
  'sidecarInjectorWebhook.templates': unsupported('any', {}),
  // These shape the MutatingWebhookConfiguration, which this injector's manifests own.
  'sidecarInjectorWebhook.enableNamespacesByDefault': ignored(false),
  'sidecarInjectorWebhook.reinvocationPolicy': ignored('Never'),
  'pilot.cni.enabled': unsupported('boolean', false),
  'pilot.cni.provider': ignored('default'),
  'pilot.env': v('any', {}),
  'pilot.crlConfigMapName': unsupported('string', ''),
  'gateways.securityContext': ignored(),
  'gateways.seccompProfile': ignored(),
};

/**
 * Istio's MeshConfig fields (istio/api mesh/v1alpha1/config.proto), by JSON name. The mesh config replaces each
 * field it sets, except `defaultConfig`, which is merged field by field over Istio's proxy defaults.
 */
const MESH_FIELDS = [
  'proxyListenPort',
  'proxyInboundListenPort',
  'proxyHttpPort',
  'connectTimeout',
  'protocolDetectionTimeout',
  'tcpKeepalive',
  'ingressClass',
  'ingressService',
  'ingressControllerMode',
  'ingressSelector',
  'enableTracing',
  'accessLogFile',
  'accessLogFormat',
  'accessLogEncoding',
  'enableEnvoyAccessLogService',
  'disableEnvoyListenerLog',
  'defaultConfig',
  'outboundTrafficPolicy',
  'inboundTrafficPolicy',
  'configSources',
  'enableAutoMtls',
  'trustDomain',
  'trustDomainAliases',
  'caCertificates',
  'defaultServiceExportTo',
  'defaultVirtualServiceExportTo',
  'defaultDestinationRuleExportTo',
  'rootNamespace',
  'localityLbSetting',
  'dnsRefreshRate',
  'h2UpgradePolicy',
  'inboundClusterStatName',
  'outboundClusterStatName',
  'certificates',
  'serviceSettings',
  'enablePrometheusMerge',
  'verifyCertificateAtClient',
  'ca',
  'extensionProviders',
  'defaultProviders',
  'discoverySelectors',
  'pathNormalization',
  'defaultHttpRetryPolicy',
  'meshMTLS',
  'tlsDefaults',
  'serviceScopeConfigs',
  'thriftConfig',
] as const;

/**
 * ProxyConfig's fields (istio/api mesh/v1alpha1/proxy.proto) by JSON name, in the order Go's protojson writes
 * them, which is the order of PROXY_CONFIG.
 */
export const PROXY_CONFIG_FIELDS = [
  'configPath',
  'binaryPath',
  'serviceCluster',
  'tracingServiceName',
  'drainDuration',
  'parentShutdownDuration',
  'discoveryAddress',
  'discoveryRefreshDelay',
  'zipkinAddress',
  'statsdUdpAddress',
  'envoyMetricsServiceAddress',
  'proxyAdminPort',
  'availabilityZone',
  'controlPlaneAuthPolicy',
  'customConfigFile',
  'statNameLength',
  'concurrency',
  'proxyBootstrapTemplatePath',
  'interceptionMode',
  'tracing',
  'sds',
  'envoyAccessLogService',
  'envoyMetricsService',
  'proxyMetadata',
  'runtimeValues',
  'statusPort',
  'extraStatTags',
  'gatewayTopology',
  'terminationDrainDuration',
  'meshId',
  'readinessProbe',
  'proxyStatsMatcher',
  'holdApplicationUntilProxyStarts',
  'caCertificatesPem',
  'image',
  'privateKeyProvider',
  'proxyHeaders',
  'fileFlushInterval',
  'fileFlushMinSizeKb',
] as const;

export type ProxyConfig = Partial<Record<(typeof PROXY_CONFIG_FIELDS)[number], unknown>>;

/** mesh.DefaultProxyConfig(): what `defaultConfig` is merged over, and what PROXY_CONFIG leaves out. */
export const DEFAULT_PROXY_CONFIG: Readonly<ProxyConfig> = {
  configPath: './etc/istio/proxy',
  binaryPath: '/usr/local/bin/envoy',
  serviceCluster: 'istio-proxy',
  drainDuration: '45s',
  terminationDrainDuration: '5s',
  proxyAdminPort: 15000,
  controlPlaneAuthPolicy: 'MUTUAL_TLS',
  discoveryAddress: 'istiod.istio-system.svc:15012',
  statNameLength: 189,
  statusPort: 15020,
};

/** The part of mesh.DefaultMeshConfig() that injection reads. */
const DEFAULT_MESH: Readonly<Record<string, unknown>> = {
  proxyListenPort: 15001,
  proxyInboundListenPort: 15006,
  trustDomain: 'cluster.local',
  rootNamespace: 'istio-system',
  enablePrometheusMerge: true,
  inboundTrafficPolicy: { mode: 'PASSTHROUGH' },
};

export interface MeshConfig {
  proxyListenPort: number;
  proxyInboundListenPort: number;
  trustDomain: string;
  enablePrometheusMerge: boolean;
  inboundTrafficPolicy: { mode?: string };
  defaultConfig: ProxyConfig;
  [field: string]: unknown;
}

/** Istio's injector config (the ConfigMap's `config` key), the parts that do not need Go templates. */
export interface InjectConfig {
  policy?: string;
  neverInjectSelector?: LabelSelector[];
  alwaysInjectSelector?: LabelSelector[];
  injectedAnnotations?: Record<string, string>;
  defaultTemplates?: string[];
}

export interface IstioInputs {
  /** The chart values, every declared key present (Istio's default where the file has none). */
  values: Record<string, unknown>;
  mesh: MeshConfig;
  injectConfig: InjectConfig | null;
}

export interface IstioTexts {
  /** The `values` key: JSON (or YAML). */
  values: string | null;
  /** The `istio` ConfigMap's `mesh` key: YAML. */
  mesh: string | null;
  /** The `config` key: YAML. */
  injectConfig: string | null;
}

/** Names of the inputs in messages: the files of a config directory, or istioctl's flags. */
export interface IstioSourceNames {
  values: string;
  mesh: string;
  injectConfig: string;
}

export function parseIstioInputs(texts: IstioTexts, names: IstioSourceNames): IstioInputs {
  return {
    values: parseIstioValues(parseText(texts.values, names.values), names.values),
    mesh: applyMeshConfig(parseText(texts.mesh, names.mesh), names.mesh),
    injectConfig:
      texts.injectConfig === null
        ? null
        : parseInjectConfig(parseText(texts.injectConfig, names.injectConfig), names.injectConfig),
  };
}

function parseText(text: string | null, name: string): unknown {
  if (text === null) return undefined;
  try {
    return parseYaml(text, { maxAliasCount: 0 });
  } catch (error) {
    throw new IstioInputError(
      `${name} is not valid JSON or YAML: ${(error as Error).message.split('\n')[0]}`,
    );
  }
}

/** Validates every key of `raw` against ISTIO_VALUES and fills in Istio's defaults. */
export function parseIstioValues(raw: unknown, source: string): Record<string, unknown> {
  if (raw !== undefined && raw !== null && !isMapping(raw))
    throw new IstioInputError(`${source}: expected a mapping of Istio's chart values`);
  const given = new Map<string, unknown>();
  collect(raw ?? {}, '', given, source);
  const values: Record<string, unknown> = {};
  for (const [path, declaration] of Object.entries(ISTIO_VALUES)) {
    const value = given.has(path) ? given.get(path) : structuredClone(declaration.default);
    if (given.has(path)) checkValue(path, declaration, value, source);
    if (value !== undefined) setPath(values, path, value);
  }
  return values;
}

/** Records each declared key's value; an object key that declares nothing below it is unknown. */
function collect(node: unknown, prefix: string, out: Map<string, unknown>, source: string): void {
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (Object.hasOwn(ISTIO_VALUES, path)) {
      // null is Helm's "unset": Istio's default applies.
      if (value !== null) out.set(path, value);
    } else if (Object.keys(ISTIO_VALUES).some((declared) => declared.startsWith(`${path}.`))) {
      if (value === null || value === undefined) continue;
      if (!isMapping(value)) throw new IstioInputError(`${source}: ${path}: expected a mapping`);
      collect(value, path, out, source);
    } else {
      throw new IstioInputError(`${source}: ${path}: unknown key (not one of Istio's chart values)`);
    }
  }
}

function checkValue(path: string, declaration: ValueDeclaration, value: unknown, source: string): void {
  const fail = (expected: string) => {
    throw new IstioInputError(`${source}: ${path}: ${JSON.stringify(value)} is not ${expected}`);
  };
  switch (declaration.kind) {
    case 'string':
      if (typeof value !== 'string') fail('a string');
      break;
    case 'boolean':
      if (typeof value !== 'boolean') fail('true or false');
      break;
    case 'integer':
      if (!Number.isInteger(value) || (value as number) < 0) fail('a whole number');
      break;
    case 'scalar':
      if (typeof value !== 'string' && typeof value !== 'number') fail('a string or a number');
      break;
    case 'stringList':
      if (!Array.isArray(value) || !value.every((item) => typeof item === 'string'))
        fail('a list of strings');
      break;
    case 'stringMap':
      if (!isMapping(value) || !Object.values(value).every((item) => typeof item === 'string'))
        fail('a mapping of strings');
      break;
    case 'selectorList':
      if (!Array.isArray(value)) fail('a list of label selectors');
      (value as unknown[]).forEach((selector, index) => {
        const problem = isMapping(selector)
          ? selectorProblem(selector as LabelSelector)
          : 'not a label selector';
        if (problem) throw new IstioInputError(`${source}: ${path}[${index}]: ${problem}`);
      });
      break;
    case 'any':
      break;
  }
  if (declaration.use === 'unsupported' && !sameValue(value, declaration.default)) {
    throw new IstioInputError(
      `${source}: ${path}: ${JSON.stringify(value)} is not supported by mesh-injector yet; ` +
        `remove it or set Istio's default (${JSON.stringify(declaration.default)})`,
    );
  }
}

/** mesh.ApplyMeshConfig over mesh.DefaultMeshConfig(): fields replace, `defaultConfig` merges field by field. */
export function applyMeshConfig(raw: unknown, source: string): MeshConfig {
  if (raw !== undefined && raw !== null && !isMapping(raw))
    throw new IstioInputError(`${source}: expected a mapping of MeshConfig fields`);
  const given = (raw ?? {}) as Record<string, unknown>;
  for (const field of Object.keys(given)) {
    if (!(MESH_FIELDS as readonly string[]).includes(field))
      throw new IstioInputError(`${source}: ${field}: unknown MeshConfig field`);
  }
  const mesh = { ...structuredClone(DEFAULT_MESH), ...given } as MeshConfig;
  mesh.defaultConfig = mergeProxyConfig(
    structuredClone(DEFAULT_PROXY_CONFIG),
    given.defaultConfig,
    `${source}: defaultConfig`,
  );
  const check = (field: string, ok: boolean, expected: string) => {
    if (!ok)
      throw new IstioInputError(`${source}: ${field}: ${JSON.stringify(mesh[field])} is not ${expected}`);
  };
  check('trustDomain', typeof mesh.trustDomain === 'string', 'a string');
  check('proxyListenPort', isPort(mesh.proxyListenPort), 'a port');
  check('proxyInboundListenPort', isPort(mesh.proxyInboundListenPort), 'a port');
  check('enablePrometheusMerge', typeof mesh.enablePrometheusMerge === 'boolean', 'true or false');
  check('inboundTrafficPolicy', isMapping(mesh.inboundTrafficPolicy), 'a mapping');
  return mesh;
}

/**
 * A ProxyConfig overlay (the mesh's `defaultConfig`, or a pod's `proxy.istio.io/config`) over `base`: each field
 * set replaces the base's, as Istio documents. Throws for unknown fields and for ill-typed ones injection reads.
 */
export function mergeProxyConfig(base: ProxyConfig, overlay: unknown, source: string): ProxyConfig {
  if (overlay === undefined || overlay === null) return base;
  if (!isMapping(overlay)) throw new IstioInputError(`${source}: expected a mapping of ProxyConfig fields`);
  for (const field of Object.keys(overlay)) {
    if (!(PROXY_CONFIG_FIELDS as readonly string[]).includes(field))
      throw new IstioInputError(`${source}: ${field}: unknown ProxyConfig field`);
  }
  const merged: ProxyConfig = { ...base, ...overlay };
  const fail = (field: string, expected: string) => {
    throw new IstioInputError(
      `${source}: ${field}: ${JSON.stringify(merged[field as keyof ProxyConfig])} is not ${expected}`,
    );
  };
  const metadata = merged.proxyMetadata;
  if (
    metadata !== undefined &&
    (!isMapping(metadata) || !Object.values(metadata).every((value) => typeof value === 'string'))
  )
    fail('proxyMetadata', 'a mapping of strings');
  if (metadata !== undefined) {
    for (const name of Object.keys(metadata as Record<string, string>)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
        throw new IstioInputError(
          `${source}: proxyMetadata: ${JSON.stringify(name)} is not an environment variable name`,
        );
    }
  }
  const hold = merged.holdApplicationUntilProxyStarts;
  if (hold !== undefined && typeof hold !== 'boolean')
    fail('holdApplicationUntilProxyStarts', 'true or false');
  const mode = merged.interceptionMode;
  if (mode !== undefined && !['REDIRECT', 'TPROXY', 'NONE'].includes(mode as string))
    fail('interceptionMode', 'REDIRECT, TPROXY or NONE');
  const concurrency = merged.concurrency;
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || (concurrency as number) < 0))
    fail('concurrency', 'a whole number');
  return merged;
}

/**
 * PROXY_CONFIG as Istio's template writes it: protoToJSON of the ProxyConfig with the fields equal to
 * mesh.DefaultProxyConfig() left out (cleanProxyConfig), proto3 zero values left out, fields in proto order, map
 * keys sorted, then a newline.
 */
export function proxyConfigJson(config: ProxyConfig): string {
  const fields: string[] = [];
  for (const field of PROXY_CONFIG_FIELDS) {
    const value = config[field];
    if (value === undefined || value === null) continue;
    if (sameValue(value, DEFAULT_PROXY_CONFIG[field])) continue;
    if (isZero(field, value)) continue;
    fields.push(`${JSON.stringify(field)}:${sortedJson(value)}`);
  }
  return `{${fields.join(',')}}\n`;
}

/** Wrapper types (concurrency, holdApplicationUntilProxyStarts) keep a set zero; scalars and enums drop it. */
function isZero(field: string, value: unknown): boolean {
  if (field === 'concurrency' || field === 'holdApplicationUntilProxyStarts') return false;
  if (field === 'interceptionMode') return value === 'REDIRECT';
  if (field === 'controlPlaneAuthPolicy') return value === 'NONE';
  if (field === 'tracingServiceName') return value === 'APP_LABEL_AND_NAMESPACE';
  if (value === '' || value === 0 || value === false) return true;
  if (Array.isArray(value)) return value.length === 0;
  if (isMapping(value) && (field === 'proxyMetadata' || field === 'runtimeValues'))
    return Object.keys(value).length === 0;
  return false;
}

function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (isMapping(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${sortedJson(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function parseInjectConfig(raw: unknown, source: string): InjectConfig {
  if (raw === undefined || raw === null) return {};
  if (!isMapping(raw)) throw new IstioInputError(`${source}: expected Istio's injector config (a mapping)`);
  const known = [
    'policy',
    'neverInjectSelector',
    'alwaysInjectSelector',
    'injectedAnnotations',
    'defaultTemplates',
    'template',
    'templates',
    'aliases',
  ];
  const config: InjectConfig = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!known.includes(key))
      throw new IstioInputError(`${source}: ${key}: unknown key of Istio's injector config`);
    if (value === null || value === undefined) continue;
    const path = `sidecarInjectorWebhook.${key}`;
    if (key === 'policy') {
      if (value !== 'enabled' && value !== 'disabled')
        throw new IstioInputError(
          `${source}: policy: ${JSON.stringify(value)} is not "enabled" or "disabled"`,
        );
      config.policy = value;
    } else if (key === 'neverInjectSelector' || key === 'alwaysInjectSelector') {
      checkValue(key, ISTIO_VALUES[path]!, value, source);
      config[key] = value as LabelSelector[];
    } else if (key === 'injectedAnnotations') {
      checkValue(key, ISTIO_VALUES[path]!, value, source);
      config.injectedAnnotations = value as Record<string, string>;
    } else if (key === 'defaultTemplates') {
      checkValue(key, ISTIO_VALUES[path]!, value, source);
      config.defaultTemplates = value as string[];
    }
    // template, templates and aliases are Go templates, which this injector does not execute: the profile's
    // template.yaml renders Istio's `sidecar`.
  }
  return config;
}

/** The value at a dotted path of the parsed values (every declared path is present). */
export function valueAt(values: Readonly<Record<string, unknown>>, path: string): unknown {
  let node: unknown = values;
  for (const key of path.split('.')) node = isMapping(node) ? node[key] : undefined;
  return node;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (!isMapping(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys.at(-1)!] = value;
}

function sameValue(a: unknown, b: unknown): boolean {
  return sortedJson(a) === sortedJson(b);
}

function isPort(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) <= 65535;
}

export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
