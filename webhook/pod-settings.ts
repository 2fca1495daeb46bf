/**
 * Reads the injection-relevant pod annotations into typed settings, falling back to the values. Every annotation
 * that can reach the init container's command line, the proxy's arguments or the template is validated here, and
 * an invalid one becomes an AnnotationProblem naming the annotation, the value and the fix. Nothing downstream
 * sees a raw annotation value.
 */
import type { V1ResourceRequirements } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { ANNOTATIONS } from '../common/constants.js';
import {
  parseCidrList,
  parseCidrListOrWildcard,
  parseComponentLogLevels,
  parseContainerOverrides,
  parseGoBool,
  parseImageReference,
  parseInterfaceList,
  parsePort,
  parsePortList,
  parsePortListOrWildcard,
  parseProxyLogLevel,
  parseQuantity,
  parseScopeLogLevels,
  parseUint32,
  quote,
  ValueProblem,
  type ContainerOverride,
} from './syntax.js';
import type { InjectorValues, InterceptionMode } from './values.js';

export interface AnnotationProblem {
  annotation: string;
  value: string;
  reason: string;
  fix: string;
}

export function describeProblem(problem: AnnotationProblem): string {
  return (
    `invalid value ${quote(problem.value)} for annotation ${problem.annotation}: ` +
    `${problem.reason}; fix: ${problem.fix}`
  );
}

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
}

export type SettingsResult =
  { ok: true; settings: PodSettings } | { ok: false; problems: AnnotationProblem[] };

const A = ANNOTATIONS;
const PORTS_FIX = 'use a comma-separated list of ports from 0 to 65535, e.g. "8080,9090"';

export function readPodSettings(
  podAnnotations: Readonly<Record<string, string>>,
  values: InjectorValues,
): SettingsResult {
  const problems: AnnotationProblem[] = [];
  const annotations = screenAnnotations(podAnnotations, problems);

  /** The annotation parsed; undefined when it is absent or invalid (then recorded as a problem). */
  function optional<T>(annotation: string, parse: (value: string) => T, fix?: string): T | undefined {
    const value = annotations[annotation];
    if (value === undefined) return undefined;
    try {
      return parse(value);
    } catch (error) {
      if (!(error instanceof ValueProblem)) throw error;
      problems.push({ annotation, value, reason: error.reason, fix: fix ?? `use ${error.accepted}` });
      return undefined;
    }
  }

  /** The annotation parsed, else the values default parsed (values are validated when they load). */
  function read<T>(annotation: string, fallback: string, parse: (value: string) => T, fix?: string): T {
    return optional(annotation, parse, fix) ?? parse(fallback);
  }

  const interceptionMode = read(A.interceptionMode, values.traffic.interceptionMode, (value) => {
    const supported = values.traffic.supportedInterceptionModes;
    if (!['REDIRECT', 'TPROXY', 'NONE'].includes(value)) {
      throw new ValueProblem(`${quote(value)} is not an interception mode`, supported.join(', '));
    }
    if (!supported.includes(value as InterceptionMode)) {
      throw new ValueProblem(
        `interception mode ${value} is not supported by this injector's proxy template`,
        `one of ${supported.join(', ')}`,
      );
    }
    return value as InterceptionMode;
  });

  const outboundPortsFromValues = (list: string) => (list === '' ? undefined : parsePortList(list));
  const settings: PodSettings = {
    interceptionMode,
    includeOutboundIPRanges: read(
      A.includeOutboundIPRanges,
      values.traffic.includeOutboundIPRanges,
      parseCidrListOrWildcard,
      'use "*" or a comma-separated list of CIDRs, e.g. "10.0.0.0/8,fd00::/8", with no spaces',
    ),
    excludeOutboundIPRanges: read(
      A.excludeOutboundIPRanges,
      values.traffic.excludeOutboundIPRanges,
      parseCidrList,
      'use a comma-separated list of CIDRs, e.g. "10.0.0.0/8,169.254.169.254/32", with no spaces; "*" is not allowed here',
    ),
    includeInboundPorts: read(
      A.includeInboundPorts,
      values.traffic.includeInboundPorts,
      parsePortListOrWildcard,
      'use "*" or a comma-separated list of ports from 0 to 65535, e.g. "8080,9090"',
    ),
    excludeInboundPorts: read(
      A.excludeInboundPorts,
      values.traffic.excludeInboundPorts,
      parsePortList,
      PORTS_FIX,
    ),
    includeOutboundPorts:
      optional(A.includeOutboundPorts, parsePortList, PORTS_FIX) ??
      outboundPortsFromValues(values.traffic.includeOutboundPorts),
    excludeOutboundPorts:
      optional(A.excludeOutboundPorts, parsePortList, PORTS_FIX) ??
      outboundPortsFromValues(values.traffic.excludeOutboundPorts),
    rerouteVirtualInterfaces:
      optional(A.rerouteVirtualInterfaces, parseInterfaceList) ??
      optional(A.kubevirtInterfaces, parseInterfaceList),
    excludeInterfaces: optional(A.excludeInterfaces, parseInterfaceList),
    statusPort: read(A.statusPort, String(values.proxy.statusPort), (value) => parsePort(value.trim())),
    readiness: {
      initialDelaySeconds: read(
        A.readinessInitialDelaySeconds,
        String(values.proxy.readiness.initialDelaySeconds),
        parseUint32,
      ),
      periodSeconds: read(
        A.readinessPeriodSeconds,
        String(values.proxy.readiness.periodSeconds),
        parseUint32,
      ),
      failureThreshold: read(
        A.readinessFailureThreshold,
        String(values.proxy.readiness.failureThreshold),
        parseUint32,
      ),
    },
    resources: readResources(annotations, values, problems),
    proxyImage: readImage(annotations, values.images.proxy, problems),
    initImage: values.images.init,
    proxyLogLevel: read(A.logLevel, values.proxy.logLevel, parseProxyLogLevel),
    proxyComponentLogLevel: read(
      A.componentLogLevel,
      values.proxy.componentLogLevel,
      parseComponentLogLevels,
    ),
    agentLogLevel: read(A.agentLogLevel, values.init.logLevel, parseScopeLogLevels),
    nativeSidecar: exactBool(annotations[A.nativeSidecar]),
    holdApplicationUntilProxyStarts:
      readProxyConfigHold(annotations, problems) || values.holdApplicationUntilProxyStarts,
    mergeMetrics: optional(A.mergeMetrics, parseGoBool),
    containerOverrides: optional(
      A.overrides,
      parseContainerOverrides,
      'remove the annotation (the injector writes it) or give the containers as JSON',
    ),
  };
  checkTemplates(annotations, problems);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, settings };
}

/** Istio honours only the exact strings for the native-sidecar override. */
function exactBool(value: string | undefined): boolean | undefined {
  return value === 'true' ? true : value === 'false' ? false : undefined;
}

const RESOURCE_ANNOTATIONS = [
  [A.proxyCPU, 'requests', 'cpu'],
  [A.proxyMemory, 'requests', 'memory'],
  [A.proxyCPULimit, 'limits', 'cpu'],
  [A.proxyMemoryLimit, 'limits', 'memory'],
] as const;

/**
 * Any resource annotation replaces the whole values block, as in Istio. The values block is returned as is: the
 * template copies every value it places, so no injected pod shares it.
 */
function readResources(
  annotations: Readonly<Record<string, string>>,
  values: InjectorValues,
  problems: AnnotationProblem[],
): V1ResourceRequirements {
  if (!RESOURCE_ANNOTATIONS.some(([annotation]) => annotations[annotation] !== undefined)) {
    return values.proxy.resources;
  }
  const resources: { requests?: Record<string, string>; limits?: Record<string, string> } = {};
  for (const [annotation, kind, resource] of RESOURCE_ANNOTATIONS) {
    const value = annotations[annotation];
    if (value === undefined) continue;
    try {
      (resources[kind] ??= {})[resource] = parseQuantity(value);
    } catch (error) {
      if (!(error instanceof ValueProblem)) throw error;
      problems.push({ annotation, value, reason: error.reason, fix: `use ${error.accepted}` });
    }
  }
  return resources;
}

/** Istio uses the annotation only when it contains "/" and silently ignores it otherwise; we do the same. */
function readImage(
  annotations: Readonly<Record<string, string>>,
  fallback: string,
  problems: AnnotationProblem[],
): string {
  const value = annotations[A.proxyImage];
  if (value === undefined) return fallback;
  try {
    const image = parseImageReference(value);
    return image.includes('/') ? image : fallback;
  } catch (error) {
    // A value that is no image reference at all is an error even without "/": silently ignoring it would hide a
    // typo or an injection attempt.
    if (!(error instanceof ValueProblem)) throw error;
    problems.push({ annotation: A.proxyImage, value, reason: error.reason, fix: `use ${error.accepted}` });
    return fallback;
  }
}

/** Every annotation this module reads. */
export const SETTINGS_ANNOTATIONS: readonly string[] = [
  A.interceptionMode,
  A.includeOutboundIPRanges,
  A.excludeOutboundIPRanges,
  A.includeInboundPorts,
  A.excludeInboundPorts,
  A.includeOutboundPorts,
  A.excludeOutboundPorts,
  A.rerouteVirtualInterfaces,
  A.kubevirtInterfaces,
  A.excludeInterfaces,
  A.statusPort,
  A.readinessInitialDelaySeconds,
  A.readinessPeriodSeconds,
  A.readinessFailureThreshold,
  ...RESOURCE_ANNOTATIONS.map(([annotation]) => annotation),
  A.proxyImage,
  A.logLevel,
  A.componentLogLevel,
  A.agentLogLevel,
  A.nativeSidecar,
  A.mergeMetrics,
  A.proxyConfig,
  A.templates,
  A.overrides,
];

/**
 * Far above any real value (a long CIDR list is a few KiB), far below the apiserver's 256 KiB for all annotations:
 * a longer value is a mistake or an attack, and would otherwise be parsed and copied into the pod spec.
 */
export const MAX_SETTING_VALUE_LENGTH = 16 * 1024;

/**
 * The annotations with every value this module reads checked for being a string of sane length; a value that
 * is not becomes a problem and is left out, so no parser below ever sees it.
 */
function screenAnnotations(
  annotations: Readonly<Record<string, unknown>>,
  problems: AnnotationProblem[],
): Record<string, string> {
  const screened: Record<string, string> = {};
  if (typeof annotations !== 'object' || annotations === null) return screened;
  for (const annotation of SETTINGS_ANNOTATIONS) {
    if (!Object.hasOwn(annotations, annotation)) continue;
    const value = annotations[annotation];
    if (typeof value !== 'string') {
      problems.push({
        annotation,
        value: JSON.stringify(value) ?? String(value),
        reason: 'annotation values must be strings',
        fix: 'quote the value in the manifest',
      });
    } else if (value.length > MAX_SETTING_VALUE_LENGTH) {
      problems.push({
        annotation,
        value,
        reason: `it is ${value.length} characters long, over the limit of ${MAX_SETTING_VALUE_LENGTH}`,
        fix: `shorten it to at most ${MAX_SETTING_VALUE_LENGTH} characters`,
      });
    } else {
      screened[annotation] = value;
    }
  }
  return screened;
}

/** Of a ProxyConfig overlay, the injector reads only holdApplicationUntilProxyStarts; it must still parse. */
function readProxyConfigHold(
  annotations: Readonly<Record<string, string>>,
  problems: AnnotationProblem[],
): boolean {
  const value = annotations[A.proxyConfig];
  if (value === undefined) return false;
  const fix =
    'use a YAML or JSON mapping of ProxyConfig fields, e.g. "holdApplicationUntilProxyStarts: true"';
  let parsed: unknown;
  try {
    parsed = parseYaml(value, { maxAliasCount: 0 });
  } catch {
    problems.push({ annotation: A.proxyConfig, value, reason: 'it is not valid YAML', fix });
    return false;
  }
  if (parsed === null || parsed === undefined) return false;
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    problems.push({ annotation: A.proxyConfig, value, reason: 'it is not a mapping', fix });
    return false;
  }
  const hold = (parsed as Record<string, unknown>).holdApplicationUntilProxyStarts;
  if (hold !== undefined && typeof hold !== 'boolean') {
    problems.push({
      annotation: A.proxyConfig,
      value,
      reason: 'holdApplicationUntilProxyStarts must be true or false',
      fix,
    });
    return false;
  }
  return hold === true;
}

/** This injector renders one template, `sidecar`; asking for another is an error, as an unknown name is in Istio. */
function checkTemplates(annotations: Readonly<Record<string, string>>, problems: AnnotationProblem[]): void {
  const value = annotations[A.templates];
  if (value === undefined) return;
  const unknown = value
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== 'sidecar');
  if (unknown.length > 0) {
    problems.push({
      annotation: A.templates,
      value,
      reason: `requested template ${JSON.stringify(unknown[0])} not found; have "sidecar"`,
      fix: 'remove the annotation or set it to "sidecar"',
    });
  }
}
