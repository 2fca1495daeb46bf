/**
 * Reads the injection-relevant pod annotations into typed settings, falling back to the values. Every annotation
 * is declared once in annotations.ts (parser, default, fix); an invalid one becomes an AnnotationProblem naming the
 * annotation, the value and the fix. Nothing downstream sees a raw annotation value. The values' defaults are
 * parsed once per loaded configuration, not per pod.
 */
import type { V1ResourceRequirements } from '@kubernetes/client-node';
import {
  ANNOTATION_TABLE,
  MAX_ANNOTATION_VALUE_LENGTH,
  readAnnotations,
  type AnnotationProblem,
} from './annotations.js';
import {
  parseCidrList,
  parseCidrListOrWildcard,
  parsePortList,
  parsePortListOrWildcard,
  type ContainerOverride,
} from './syntax.js';
import type { ProxyConfig } from './istio-inputs.js';
import type { InjectorValues, InterceptionMode } from './values.js';

export { describeProblem, type AnnotationProblem } from './annotations.js';

/** Every annotation this module reads. */
export const SETTINGS_ANNOTATIONS: readonly string[] = Object.values(ANNOTATION_TABLE).map((row) => row.name);
export const MAX_SETTING_VALUE_LENGTH = MAX_ANNOTATION_VALUE_LENGTH;

type ListOrWildcard<T> = '*' | T[];

export interface PodSettings {
  interceptionMode: InterceptionMode;
  includeOutboundIPRanges: ListOrWildcard<string>;
  excludeOutboundIPRanges: string[];
  includeInboundPorts: ListOrWildcard<number>;
  excludeInboundPorts: number[];
  /** undefined: not set by annotation or values, so no `-q`/`-o` flag. */
  includeOutboundPorts: number[] | undefined;
  excludeOutboundPorts: number[] | undefined;
  rerouteVirtualInterfaces: string[] | undefined;
  excludeInterfaces: string[] | undefined;
  statusPort: number;
  readiness: { initialDelaySeconds: number; periodSeconds: number; failureThreshold: number };
  resources: V1ResourceRequirements;
  proxyImage: string;
  initImage: string;
  proxyLogLevel: string;
  proxyComponentLogLevel: string;
  agentLogLevel: string;
  /** The pod's explicit choice, or undefined to follow the injector's setting. */
  nativeSidecar: boolean | undefined;
  /** proxy.istio.io/overrides: customisations of the injected containers, read back on re-injection. */
  containerOverrides: ContainerOverride[] | undefined;
  holdApplicationUntilProxyStarts: boolean;
  mergeMetrics: boolean | undefined;
  /** Whether to rewrite app probes (the annotation, else values.rewriteAppProbes). */
  rewriteAppProbes: boolean;
  /** The fields of the pod's proxy.istio.io/config overlay, when it sets any. */
  proxyConfig: ProxyConfig | undefined;
}

export type SettingsResult =
  | { ok: true; settings: PodSettings; warnings: string[] }
  | { ok: false; problems: AnnotationProblem[]; warnings: string[] };

/** The settings of a pod without annotations: the values, parsed. */
type Defaults = Omit<
  PodSettings,
  'nativeSidecar' | 'containerOverrides' | 'mergeMetrics' | 'rewriteAppProbes' | 'proxyConfig'
>;

const defaultsCache = new WeakMap<InjectorValues, Defaults>();

/** Values are validated when they load; parsing them here gives the canonical forms, once per configuration. */
function defaultsOf(values: InjectorValues): Defaults {
  let defaults = defaultsCache.get(values);
  if (defaults) return defaults;
  const { traffic, proxy } = values;
  const optionalPorts = (list: string) => (list === '' ? undefined : parsePortList(list));
  defaults = {
    interceptionMode: traffic.interceptionMode,
    includeOutboundIPRanges: parseCidrListOrWildcard(traffic.includeOutboundIPRanges),
    excludeOutboundIPRanges: parseCidrList(traffic.excludeOutboundIPRanges),
    includeInboundPorts: parsePortListOrWildcard(traffic.includeInboundPorts),
    excludeInboundPorts: parsePortList(traffic.excludeInboundPorts),
    includeOutboundPorts: optionalPorts(traffic.includeOutboundPorts),
    excludeOutboundPorts: optionalPorts(traffic.excludeOutboundPorts),
    rerouteVirtualInterfaces: undefined,
    excludeInterfaces: undefined,
    statusPort: proxy.statusPort,
    readiness: { ...proxy.readiness },
    resources: proxy.resources,
    proxyImage: values.images.proxy,
    initImage: values.images.init,
    proxyLogLevel: proxy.logLevel,
    proxyComponentLogLevel: proxy.componentLogLevel,
    agentLogLevel: values.init.logLevel,
    holdApplicationUntilProxyStarts: values.holdApplicationUntilProxyStarts,
  };
  defaultsCache.set(values, defaults);
  return defaults;
}

export function readPodSettings(
  podAnnotations: Readonly<Record<string, string>>,
  values: InjectorValues,
): SettingsResult {
  const { parsed: a, problems, warnings } = readAnnotations(podAnnotations ?? {}, values);
  if (problems.length > 0) return { ok: false, problems, warnings };
  const d = defaultsOf(values);
  const settings: PodSettings = {
    interceptionMode: a.interceptionMode ?? d.interceptionMode,
    includeOutboundIPRanges: a.includeOutboundIPRanges ?? d.includeOutboundIPRanges,
    excludeOutboundIPRanges: a.excludeOutboundIPRanges ?? d.excludeOutboundIPRanges,
    includeInboundPorts: a.includeInboundPorts ?? d.includeInboundPorts,
    excludeInboundPorts: a.excludeInboundPorts ?? d.excludeInboundPorts,
    includeOutboundPorts: a.includeOutboundPorts ?? d.includeOutboundPorts,
    excludeOutboundPorts: a.excludeOutboundPorts ?? d.excludeOutboundPorts,
    rerouteVirtualInterfaces: a.rerouteVirtualInterfaces ?? a.kubevirtInterfaces,
    excludeInterfaces: a.excludeInterfaces,
    statusPort: a.statusPort ?? d.statusPort,
    readiness: {
      initialDelaySeconds: a.readinessInitialDelaySeconds ?? d.readiness.initialDelaySeconds,
      periodSeconds: a.readinessPeriodSeconds ?? d.readiness.periodSeconds,
      failureThreshold: a.readinessFailureThreshold ?? d.readiness.failureThreshold,
    },
    resources: resourcesOf(a, d.resources),
    // Istio uses the annotation only when it contains "/" and ignores it otherwise; a value that is no image
    // reference at all was denied above (silently ignoring it would hide a typo or an injection attempt).
    proxyImage: a.proxyImage?.includes('/') ? a.proxyImage : d.proxyImage,
    initImage: d.initImage,
    proxyLogLevel: a.logLevel ?? d.proxyLogLevel,
    proxyComponentLogLevel: a.componentLogLevel ?? d.proxyComponentLogLevel,
    agentLogLevel: a.agentLogLevel ?? d.agentLogLevel,
    nativeSidecar: a.nativeSidecar,
    containerOverrides: a.overrides,
    holdApplicationUntilProxyStarts:
      a.proxyConfig?.holdApplicationUntilProxyStarts === true || d.holdApplicationUntilProxyStarts,
    mergeMetrics: a.mergeMetrics,
    rewriteAppProbes: a.rewriteAppProbes ?? values.rewriteAppProbes,
    proxyConfig:
      a.proxyConfig && Object.keys(a.proxyConfig.fields).length > 0 ? a.proxyConfig.fields : undefined,
  };
  return { ok: true, settings, warnings };
}

/**
 * Any resource annotation replaces the whole values block, as in Istio. The values block is returned as is: the
 * template copies every value it places, so no injected pod shares it.
 */
function resourcesOf(
  a: ReturnType<typeof readAnnotations>['parsed'],
  fallback: V1ResourceRequirements,
): V1ResourceRequirements {
  const requests = { cpu: a.proxyCPU, memory: a.proxyMemory };
  const limits = { cpu: a.proxyCPULimit, memory: a.proxyMemoryLimit };
  const defined = (quantities: Record<string, string | undefined>) =>
    Object.fromEntries(Object.entries(quantities).filter(([, quantity]) => quantity !== undefined)) as Record<
      string,
      string
    >;
  const resources: V1ResourceRequirements = {};
  if (Object.keys(defined(requests)).length > 0) resources.requests = defined(requests);
  if (Object.keys(defined(limits)).length > 0) resources.limits = defined(limits);
  return resources.requests || resources.limits ? resources : fallback;
}
