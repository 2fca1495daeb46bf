/**
 * Istio's inputs (webhook/istio-inputs.ts) as the injector's settings: one pure function from Istio's chart values,
 * injector config and mesh config to a values overlay (webhook/values.ts keys) and the template's Istio data. It
 * runs once per loaded configuration; only a pod with its own proxy.istio.io/config pays for withProxyConfigOverlay. Each injector setting comes from exactly one Istio input here.
 */
import {
  IstioInputError,
  proxyConfigJson,
  valueAt,
  type IstioInputs,
  type MeshConfig,
  type ProxyConfig,
} from './istio-inputs.js';

/** What Istio's template reads besides the values, derived once (TemplateData `istio.*`). */
export interface IstioTemplateData {
  /** Istio's chart values, every declared key present (`values.*` in the template). */
  values: Readonly<Record<string, unknown>>;
  mesh: Readonly<MeshConfig>;
  /** `global.caAddress`, else `istiod[-<revision>].<istioNamespace>.svc:15012`. */
  caAddress: string;
  /** `global.multiCluster.clusterName`, else `Kubernetes`. */
  clusterId: string;
  /** `global.meshID`, else the trust domain; null when neither is set. */
  meshId: string | null;
  /** The mesh's trustDomain, else `global.trustDomain`; null when neither is set. */
  trustDomain: string | null;
  /** `global.network`, null when unset (then neither ISTIO_META_NETWORK nor the network label is written). */
  network: string | null;
  networkEnv: { name: string; value: string }[];
  /** PROXY_CONFIG: the mesh's defaultConfig as Istio's protoToJSON writes it. */
  proxyConfigJson: string;
  /** The defaultConfig's proxyMetadata as env entries, sorted by name (the proxy's last env entries). */
  proxyMetadataEnv: { name: string; value: string }[];
  /** The same entries for istio-init, or null when there are none (Istio then writes no env). */
  initEnv: { name: string; value: string }[] | null;
  /** REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION when the mesh's inbound traffic policy is LOCALHOST. */
  localhostProbeEnv: { name: string; value: string }[];
}

export interface IstioSettings {
  /** Merged over the injector's defaults like a values.yaml (webhook/values.ts validates it). */
  values: Record<string, unknown>;
  template: IstioTemplateData;
}

export function istioSettings(inputs: IstioInputs): IstioSettings {
  const { values, mesh, injectConfig } = inputs;
  const get = (path: string) => valueAt(values, path);
  const text = (path: string) => String(get(path) ?? '');
  const unsupported = (path: string, value: unknown, expected: string) =>
    new IstioInputError(
      `${path}: ${JSON.stringify(value)} is not supported by mesh-injector yet; expected ${expected}`,
    );

  const defaultTemplates =
    injectConfig?.defaultTemplates ?? (get('sidecarInjectorWebhook.defaultTemplates') as string[]);
  if (!defaultTemplates.every((name) => name === 'sidecar'))
    throw unsupported('defaultTemplates', defaultTemplates, '[] or [sidecar]');
  if (text('global.pilotCertProvider') !== 'istiod')
    throw unsupported('global.pilotCertProvider', get('global.pilotCertProvider'), '"istiod"');
  for (const [field, port] of [
    ['proxyListenPort', 15001],
    ['proxyInboundListenPort', 15006],
  ] as const) {
    if (mesh[field] !== port) throw unsupported(field, mesh[field], String(port));
  }
  const tracer = text('global.proxy.tracer');
  if (tracer === 'datadog' || tracer === 'lightstep')
    throw unsupported('global.proxy.tracer', tracer, 'none, zipkin, stackdriver or openCensusAgent');

  const revision = text('revision');
  const statusPort = get('global.proxy.statusPort') as number;
  const defaultConfig = mesh.defaultConfig;
  const nativeSidecars = nativeSidecarsFromEnv(get('pilot.env'));
  const trustDomain = mesh.trustDomain || text('global.trustDomain') || null;
  const network = text('global.network') || null;

  return {
    values: {
      policy: injectConfig?.policy ?? get('global.proxy.autoInject'),
      neverInjectSelector:
        injectConfig?.neverInjectSelector ?? get('sidecarInjectorWebhook.neverInjectSelector'),
      alwaysInjectSelector:
        injectConfig?.alwaysInjectSelector ?? get('sidecarInjectorWebhook.alwaysInjectSelector'),
      injectedAnnotations:
        injectConfig?.injectedAnnotations ?? get('sidecarInjectorWebhook.injectedAnnotations'),
      revision: revision || 'default',
      // Istio's status annotation carries no template version, so a pod istiod injected is re-injected in place.
      templateVersionInStatus: false,
      // istioctl kube-inject writes its output through Go's encoder.
      offlineGoFields: true,
      ...(nativeSidecars === undefined ? {} : { nativeSidecars }),
      holdApplicationUntilProxyStarts:
        get('global.proxy.holdApplicationUntilProxyStarts') === true ||
        defaultConfig.holdApplicationUntilProxyStarts === true,
      images: {
        proxy: imageUrl(values, text('global.proxy.image')),
        init: imageUrl(values, text('global.proxy_init.image')),
      },
      imagePullPolicy: text('global.imagePullPolicy') || null,
      imagePullSecrets: get('global.imagePullSecrets'),
      proxy: {
        logLevel: get('global.proxy.logLevel'),
        componentLogLevel: get('global.proxy.componentLogLevel'),
        statusPort,
        resources: get('global.proxy.resources'),
        readiness: {
          initialDelaySeconds: get('global.proxy.readinessInitialDelaySeconds'),
          periodSeconds: get('global.proxy.readinessPeriodSeconds'),
          failureThreshold: get('global.proxy.readinessFailureThreshold'),
        },
      },
      // Istio's adjustInitContainerUser replaces istio-init's -u with the proxy's runAsUser, and adds no -g.
      init: { logLevel: get('global.logging.level'), followProxyGroup: false },
      traffic: {
        // pilot-agent supports every mode; TPROXY runs the proxy as root with NET_ADMIN (proxy-identity.ts).
        supportedInterceptionModes: ['REDIRECT', 'TPROXY', 'NONE'],
        interceptionMode: defaultConfig.interceptionMode ?? 'REDIRECT',
        includeOutboundIPRanges: get('global.proxy.includeIPRanges'),
        excludeOutboundIPRanges: get('global.proxy.excludeIPRanges'),
        includeInboundPorts: get('global.proxy.includeInboundPorts'),
        excludeInboundPorts: get('global.proxy.excludeInboundPorts'),
        includeOutboundPorts: get('global.proxy.includeOutboundPorts'),
        excludeOutboundPorts: get('global.proxy.excludeOutboundPorts'),
      },
      // pilot-agent merges the app's metrics into its own on the status port.
      prometheus: {
        enabled: mesh.enablePrometheusMerge,
        port: defaultConfig.statusPort ?? 15020,
        path: '/stats/prometheus',
      },
      rewriteAppProbes: get('sidecarInjectorWebhook.rewriteAppHTTPProbe'),
    },
    template: {
      values,
      mesh,
      caAddress:
        text('global.caAddress') ||
        `istiod${revision === '' ? '' : `-${revision}`}.${text('global.istioNamespace')}.svc:15012`,
      clusterId: text('global.multiCluster.clusterName') || 'Kubernetes',
      meshId: text('global.meshID') || trustDomain,
      trustDomain,
      network,
      networkEnv: network === null ? [] : [{ name: 'ISTIO_META_NETWORK', value: network }],
      ...fromProxyConfig(defaultConfig),
      localhostProbeEnv:
        mesh.inboundTrafficPolicy.mode === 'LOCALHOST'
          ? [{ name: 'REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION', value: 'true' }]
          : [],
    },
  };
}

/**
 * The template's Istio data for a pod whose `proxy.istio.io/config` overlays the mesh's defaultConfig: each field
 * it sets replaces the mesh's, as in Istio. Only such pods pay for this.
 */
export function withProxyConfigOverlay(data: IstioTemplateData, overlay: ProxyConfig): IstioTemplateData {
  return { ...data, ...fromProxyConfig({ ...data.mesh.defaultConfig, ...overlay }) };
}

/** What the template writes of a pod's ProxyConfig: PROXY_CONFIG and the proxyMetadata env entries. */
function fromProxyConfig(config: ProxyConfig) {
  const metadata = Object.entries((config.proxyMetadata ?? {}) as Record<string, string>)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => ({ name, value }));
  return {
    proxyConfigJson: proxyConfigJson(config),
    proxyMetadataEnv: metadata,
    initEnv: metadata.length > 0 ? metadata : null,
  };
}

/**
 * Istio's ProxyImage: an image name with a `/` is a whole reference; otherwise `<hub>/<name>:<tag>`, with
 * `-<variant>` when `global.proxy.variant` (or `global.variant`) names one other than `default`.
 */
function imageUrl(values: Readonly<Record<string, unknown>>, name: string): string {
  if (name.includes('/')) return name;
  const variant = String(valueAt(values, 'global.proxy.variant') || valueAt(values, 'global.variant') || '');
  const tag = String(valueAt(values, 'global.tag'));
  const suffix = variant === '' || variant === 'default' ? '' : `-${variant}`;
  return `${String(valueAt(values, 'global.hub'))}/${name}:${tag}${suffix}`;
}

/** istiod's ENABLE_NATIVE_SIDECARS (pilot.env): unset means Istio's node rule, "auto". */
function nativeSidecarsFromEnv(env: unknown): 'auto' | 'true' | 'false' | undefined {
  const value = (env as Record<string, unknown> | undefined)?.ENABLE_NATIVE_SIDECARS;
  if (value === undefined || value === null) return undefined;
  const text = String(value).toLowerCase();
  if (text === 'true' || text === 'false' || text === 'auto') return text;
  throw new IstioInputError(
    `pilot.env.ENABLE_NATIVE_SIDECARS: ${JSON.stringify(value)} is not true, false or auto`,
  );
}
