/**
 * Every pod annotation that configures injection, declared once: its name, its parser, its default, the fix for
 * an invalid value and what it does. Screening, reading (pod-settings.ts), docs/annotations.md and the
 * hostile-value tests all derive from this table, so an annotation cannot be read without being screened.
 */
import { parse as parseYaml } from 'yaml';
import { ANNOTATIONS } from '../common/constants.js';
import { IstioInputError, mergeProxyConfig, type ProxyConfig } from './istio-inputs.js';
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
} from './syntax.js';
import type { InjectorValues, InterceptionMode } from './values.js';

const A = ANNOTATIONS;

export interface AnnotationRow<T> {
  name: string;
  /** The value validated and in canonical form; throws ValueProblem saying what is wrong with it. */
  parse(value: string, values: InjectorValues): T;
  /** What applies when the annotation is absent (a values path or a behaviour), for the docs. */
  default: string;
  /** How to fix an invalid value, with example values of the right kind. */
  fix: string;
  /** What it does, in one sentence, for the docs. */
  effect: string;
  /**
   * `container`: the value reaches a container's command line, image or resources, so the hostile-value tests
   * cover it; `layout`: it only chooses between fixed layouts.
   */
  reaches: 'container' | 'layout';
  /** When deprecated: the annotation to use instead. Its use comes back as an admission warning. */
  replacedBy?: string;
  /** A value Istio accepts but treats as "no decision": the warning to give back, else undefined. */
  noDecision?(value: string): string | undefined;
}

const row = <T>(spec: AnnotationRow<T>): AnnotationRow<T> => spec;

const PORTS_FIX = 'use a comma-separated list of ports from 0 to 65535, e.g. "8080,9090"';
const INTERFACES_FIX = 'use a comma-separated list of interface names, e.g. "net1,net2"';
const UINT_FIX = 'use a whole number of seconds or attempts, e.g. "10"';
const CPU_FIX = 'use a CPU quantity, e.g. "100m", "500m" or "2"';
const MEMORY_FIX = 'use a memory quantity, e.g. "128Mi" or "1Gi"';
const INTERCEPTION_MODES: readonly InterceptionMode[] = ['REDIRECT', 'TPROXY', 'NONE'];

/**
 * Istio's `proxy.istio.io/config` overlay of the mesh's ProxyConfig: every field validated by name
 * (istio-inputs.ts), holdApplicationUntilProxyStarts read by the injector, all of it in the istiod profile's
 * PROXY_CONFIG.
 */
export interface ProxyConfigOverlay {
  holdApplicationUntilProxyStarts?: boolean;
  fields: ProxyConfig;
}

function parseProxyConfig(value: string): ProxyConfigOverlay {
  const accepted = 'a YAML or JSON mapping of ProxyConfig fields';
  let parsed: unknown;
  try {
    parsed = parseYaml(value, { maxAliasCount: 0 });
  } catch {
    throw new ValueProblem('it is not valid YAML', accepted);
  }
  if (parsed === null || parsed === undefined) return { fields: {} };
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ValueProblem('it is not a mapping', accepted);
  let fields: ProxyConfig;
  try {
    fields = mergeProxyConfig({}, parsed, 'the overlay');
  } catch (error) {
    if (error instanceof IstioInputError) throw new ValueProblem(error.message, accepted);
    throw error;
  }
  const hold = fields.holdApplicationUntilProxyStarts as boolean | undefined;
  return hold === undefined ? { fields } : { holdApplicationUntilProxyStarts: hold, fields };
}

function parseInterceptionMode(value: string, values: InjectorValues): InterceptionMode {
  const supported = values.traffic.supportedInterceptionModes;
  if (!INTERCEPTION_MODES.includes(value as InterceptionMode)) {
    throw new ValueProblem(`${quote(value)} is not an interception mode`, supported.join(', '));
  }
  if (!supported.includes(value as InterceptionMode)) {
    throw new ValueProblem(
      `interception mode ${value} is not supported by this injector's proxy template`,
      `one of ${supported.join(', ')}`,
    );
  }
  return value as InterceptionMode;
}

/** The templates a configuration has: one, `sidecar`. */
const TEMPLATE_NAMES: readonly string[] = ['sidecar'];

/** Asking for a template the configuration does not have is an error, as an unknown name is in Istio. */
function parseTemplates(value: string): string[] {
  const names = value.split(',').map((name) => name.trim());
  const unknown = names.find((name) => !TEMPLATE_NAMES.includes(name));
  if (unknown !== undefined) {
    throw new ValueProblem(
      `requested template ${JSON.stringify(unknown)} not found; have ${TEMPLATE_NAMES.map((t) => JSON.stringify(t)).join(', ')}`,
      TEMPLATE_NAMES.join(', '),
    );
  }
  return names;
}

/** Istio honours only the exact strings for the native-sidecar override; anything else is no decision. */
function exactBool(value: string): boolean | undefined {
  return value === 'true' ? true : value === 'false' ? false : undefined;
}

export const ANNOTATION_TABLE = {
  interceptionMode: row({
    name: A.interceptionMode,
    parse: parseInterceptionMode,
    default: 'values traffic.interceptionMode (REDIRECT)',
    fix: 'use REDIRECT, or another mode in values traffic.supportedInterceptionModes',
    effect: 'How traffic is captured: istio-init `-m`; NONE adds no istio-init.',
    reaches: 'container',
  }),
  includeOutboundIPRanges: row({
    name: A.includeOutboundIPRanges,
    parse: parseCidrListOrWildcard,
    default: 'values traffic.includeOutboundIPRanges ("*")',
    fix: 'use "*" or a comma-separated list of CIDRs, e.g. "10.0.0.0/8,fd00::/8", with no spaces (Istio\'s includeIPRanges)',
    effect: 'Outbound destinations captured: istio-init `-i`.',
    reaches: 'container',
  }),
  excludeOutboundIPRanges: row({
    name: A.excludeOutboundIPRanges,
    parse: parseCidrList,
    default: 'values traffic.excludeOutboundIPRanges ("")',
    fix: 'use a comma-separated list of CIDRs, e.g. "10.0.0.0/8,169.254.169.254/32", with no spaces; "*" is not allowed here (Istio\'s excludeIPRanges)',
    effect: 'Outbound destinations not captured: istio-init `-x`.',
    reaches: 'container',
  }),
  includeInboundPorts: row({
    name: A.includeInboundPorts,
    parse: parsePortListOrWildcard,
    default: 'values traffic.includeInboundPorts ("*")',
    fix: 'use "*" or a comma-separated list of ports from 0 to 65535, e.g. "8080,9090"',
    effect: 'Inbound ports captured: istio-init `-b`.',
    reaches: 'container',
  }),
  excludeInboundPorts: row({
    name: A.excludeInboundPorts,
    parse: parsePortList,
    default: 'values traffic.excludeInboundPorts ("")',
    fix: PORTS_FIX,
    effect: 'Inbound ports not captured, besides the proxy ports: istio-init `-d`.',
    reaches: 'container',
  }),
  includeOutboundPorts: row({
    name: A.includeOutboundPorts,
    parse: parsePortList,
    default: 'values traffic.includeOutboundPorts (none: no `-q`)',
    fix: PORTS_FIX,
    effect: 'Outbound ports captured whatever the destination: istio-init `-q`.',
    reaches: 'container',
  }),
  excludeOutboundPorts: row({
    name: A.excludeOutboundPorts,
    parse: parsePortList,
    default: 'values traffic.excludeOutboundPorts (none: no `-o`)',
    fix: PORTS_FIX,
    effect: 'Outbound ports not captured: istio-init `-o`.',
    reaches: 'container',
  }),
  rerouteVirtualInterfaces: row({
    name: A.rerouteVirtualInterfaces,
    parse: parseInterfaceList,
    default: 'none (no `-k`)',
    fix: INTERFACES_FIX,
    effect: 'Virtual interfaces whose inbound traffic is treated as outbound: istio-init `-k`.',
    reaches: 'container',
  }),
  kubevirtInterfaces: row({
    name: A.kubevirtInterfaces,
    parse: parseInterfaceList,
    default: 'none (no `-k`)',
    fix: INTERFACES_FIX,
    effect: `Deprecated form of ${A.rerouteVirtualInterfaces}, read only when that one is absent.`,
    reaches: 'container',
    replacedBy: A.rerouteVirtualInterfaces,
  }),
  excludeInterfaces: row({
    name: A.excludeInterfaces,
    parse: parseInterfaceList,
    default: 'none (no `-c`)',
    fix: INTERFACES_FIX,
    effect: 'Interfaces whose traffic is not captured: istio-init `-c`.',
    reaches: 'container',
  }),
  statusPort: row({
    name: A.statusPort,
    parse: (value: string) => parsePort(value.trim()),
    default: 'values proxy.statusPort (15020)',
    fix: 'use a port from 1 to 65535, e.g. "15020", or "0" for no status port (and no proxy probes)',
    effect: 'The status port, excluded from inbound capture; 0 drops the proxy probes.',
    reaches: 'container',
  }),
  readinessInitialDelaySeconds: row({
    name: A.readinessInitialDelaySeconds,
    parse: parseUint32,
    default: 'values proxy.readiness.initialDelaySeconds',
    fix: UINT_FIX,
    effect: "The proxy readiness probe's initialDelaySeconds.",
    reaches: 'container',
  }),
  readinessPeriodSeconds: row({
    name: A.readinessPeriodSeconds,
    parse: parseUint32,
    default: 'values proxy.readiness.periodSeconds',
    fix: UINT_FIX,
    effect: "The proxy readiness probe's periodSeconds.",
    reaches: 'container',
  }),
  readinessFailureThreshold: row({
    name: A.readinessFailureThreshold,
    parse: parseUint32,
    default: 'values proxy.readiness.failureThreshold',
    fix: UINT_FIX,
    effect: "The proxy readiness probe's failureThreshold.",
    reaches: 'container',
  }),
  proxyCPU: row({
    name: A.proxyCPU,
    parse: parseQuantity,
    default: 'values proxy.resources (any resource annotation replaces the whole block)',
    fix: CPU_FIX,
    effect: "The proxy's (and istio-init's) CPU request.",
    reaches: 'container',
  }),
  proxyMemory: row({
    name: A.proxyMemory,
    parse: parseQuantity,
    default: 'values proxy.resources (any resource annotation replaces the whole block)',
    fix: MEMORY_FIX,
    effect: "The proxy's (and istio-init's) memory request.",
    reaches: 'container',
  }),
  proxyCPULimit: row({
    name: A.proxyCPULimit,
    parse: parseQuantity,
    default: 'values proxy.resources (any resource annotation replaces the whole block)',
    fix: CPU_FIX,
    effect: "The proxy's (and istio-init's) CPU limit.",
    reaches: 'container',
  }),
  proxyMemoryLimit: row({
    name: A.proxyMemoryLimit,
    parse: parseQuantity,
    default: 'values proxy.resources (any resource annotation replaces the whole block)',
    fix: MEMORY_FIX,
    effect: "The proxy's (and istio-init's) memory limit.",
    reaches: 'container',
  }),
  proxyImage: row({
    name: A.proxyImage,
    parse: parseImageReference,
    default: 'values images.proxy',
    fix: 'use an image reference with a registry or repository, e.g. "registry.example.com/team/proxy:1.2.3"',
    effect: 'The proxy image; as in Istio, used only when it contains "/".',
    reaches: 'container',
  }),
  logLevel: row({
    name: A.logLevel,
    parse: parseProxyLogLevel,
    default: 'values proxy.logLevel',
    fix: 'use one of trace, debug, info, warning, error, critical, off',
    effect: "The proxy's log level.",
    reaches: 'container',
  }),
  componentLogLevel: row({
    name: A.componentLogLevel,
    parse: parseComponentLogLevels,
    default: 'values proxy.componentLogLevel',
    fix: 'use comma-separated component:level pairs, e.g. "misc:error,upstream:debug"',
    effect: "The proxy's per-component log levels.",
    reaches: 'container',
  }),
  agentLogLevel: row({
    name: A.agentLogLevel,
    parse: parseScopeLogLevels,
    default: 'values init.logLevel',
    fix: 'use comma-separated scope:level pairs, e.g. "default:info"',
    effect: 'istio-init (and pilot-agent) `--log_output_level`.',
    reaches: 'container',
  }),
  nativeSidecar: row({
    name: A.nativeSidecar,
    parse: exactBool,
    default: "values nativeSidecars (auto: every node's kubelet 1.33 or newer)",
    fix: 'remove the annotation (or set it to "false") to get the classic sidecar layout',
    effect: 'Exactly "true" or "false": the proxy as a native sidecar (an init container) or a classic one.',
    reaches: 'layout',
    noDecision: (value) =>
      exactBool(value) === undefined
        ? `${A.nativeSidecar}: ${quote(value)} is neither "true" nor "false", so the injector's setting applies`
        : undefined,
  }),
  mergeMetrics: row({
    name: A.mergeMetrics,
    parse: parseGoBool,
    default: 'values prometheus.enabled',
    fix: 'use "true" or "false"',
    effect: 'Whether the Prometheus scrape annotations are added.',
    reaches: 'container',
  }),
  rewriteAppProbes: row({
    name: A.rewriteAppProbes,
    parse: parseGoBool,
    default: 'values rewriteAppProbes',
    fix: 'use "true" or "false"',
    effect: "Whether the app containers' probes and lifecycle hooks are rewritten to the status port.",
    reaches: 'container',
  }),
  proxyConfig: row({
    name: A.proxyConfig,
    parse: parseProxyConfig,
    default: 'values holdApplicationUntilProxyStarts',
    fix: 'use a YAML or JSON mapping of ProxyConfig fields, e.g. "holdApplicationUntilProxyStarts: true"',
    effect:
      "ProxyConfig overlay; holdApplicationUntilProxyStarts is read, and Istio's profile writes it all to PROXY_CONFIG.",
    reaches: 'container',
  }),
  templates: row({
    name: A.templates,
    parse: parseTemplates,
    default: '"sidecar"',
    fix: 'remove the annotation or set it to "sidecar"',
    effect: 'The templates to render.',
    reaches: 'container',
  }),
  overrides: row({
    name: A.overrides,
    parse: parseContainerOverrides,
    default: 'written by the injector on first injection',
    fix: 'remove the annotation (the injector writes it) or give the containers as JSON',
    effect: "The pod's own customisations of the injected containers, read back on re-injection.",
    reaches: 'container',
  }),
} as const;

export type AnnotationKey = keyof typeof ANNOTATION_TABLE;
export type ParsedAnnotations = {
  -readonly [K in AnnotationKey]?: ReturnType<(typeof ANNOTATION_TABLE)[K]['parse']>;
};

export const ANNOTATION_ROWS: readonly AnnotationRow<unknown>[] = Object.values(ANNOTATION_TABLE);

/**
 * Far above any real value (a long CIDR list is a few KiB), far below the apiserver's 256 KiB for all annotations:
 * a longer value is a mistake or an attack, and would otherwise be parsed and copied into the pod spec.
 */
export const MAX_ANNOTATION_VALUE_LENGTH = 16 * 1024;

export interface AnnotationProblem {
  annotation: string;
  value: string;
  reason: string;
  fix: string;
}

/** Names the annotation and the value once, then why and the fix. */
export function describeProblem({ annotation, value, reason, fix }: AnnotationProblem): string {
  const quoted = quote(value);
  const what = reason.startsWith(quoted)
    ? `annotation ${annotation}: ${reason}`
    : `annotation ${annotation}: value ${quoted}: ${reason}`;
  return `invalid ${what}; fix: ${fix}`;
}

export interface ReadAnnotations {
  parsed: ParsedAnnotations;
  problems: AnnotationProblem[];
  /** For the admission response: deprecated annotations, values treated as no decision. */
  warnings: string[];
}

/** The table's keys and rows, listed once rather than on every review. */
const ANNOTATION_ENTRIES = Object.entries(ANNOTATION_TABLE) as [AnnotationKey, AnnotationRow<unknown>][];

/** Every annotation of the table the pod has: screened (a string of sane length), then parsed by its row. */
export function readAnnotations(
  annotations: Readonly<Record<string, unknown>>,
  values: InjectorValues,
): ReadAnnotations {
  const parsed: Record<string, unknown> = {};
  const problems: AnnotationProblem[] = [];
  const warnings: string[] = [];
  for (const [key, spec] of ANNOTATION_ENTRIES) {
    if (!Object.hasOwn(annotations, spec.name)) continue;
    const value = annotations[spec.name];
    if (typeof value !== 'string') {
      problems.push({
        annotation: spec.name,
        value: JSON.stringify(value) ?? String(value),
        reason: 'annotation values must be strings',
        fix: 'quote the value in the manifest',
      });
      continue;
    }
    if (value.length > MAX_ANNOTATION_VALUE_LENGTH) {
      problems.push({
        annotation: spec.name,
        value,
        reason: `it is ${value.length} characters long, over the limit of ${MAX_ANNOTATION_VALUE_LENGTH}`,
        fix: `shorten it to at most ${MAX_ANNOTATION_VALUE_LENGTH} characters`,
      });
      continue;
    }
    try {
      parsed[key] = spec.parse(value, values);
    } catch (error) {
      if (!(error instanceof ValueProblem)) throw error;
      problems.push({ annotation: spec.name, value, reason: error.reason, fix: spec.fix });
      continue;
    }
    if (spec.replacedBy !== undefined) {
      warnings.push(`annotation ${spec.name} is deprecated; use ${spec.replacedBy} instead`);
    }
    const noDecision = spec.noDecision?.(value);
    if (noDecision !== undefined) warnings.push(noDecision);
  }
  return { parsed: parsed as ParsedAnnotations, problems, warnings };
}
