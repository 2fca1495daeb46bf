/**
 * The injector's values: everything an operator tunes without changing code. Read from `values.yaml` in the
 * config directory, merged over the defaults below, and validated as strictly as pod annotations, because many
 * values reach the init container's command line.
 */
import type { V1ResourceRequirements } from '@kubernetes/client-node';
import { PORTS } from '../common/constants.js';
import type { InjectionPolicy } from './decision.js';
import type { IstioTemplateData } from './istio-mapping.js';
import { selectorProblem, type LabelSelector } from './label-selector.js';
import {
  parseCidrList,
  parseCidrListOrWildcard,
  parseComponentLogLevels,
  parseImageReference,
  parsePort,
  parsePortList,
  parsePortListOrWildcard,
  parseProxyLogLevel,
  parseQuantity,
  parseScopeLogLevels,
  ValueProblem,
} from './syntax.js';

export type NativeSidecarMode = 'auto' | 'true' | 'false';
export type InterceptionMode = 'REDIRECT' | 'TPROXY' | 'NONE';

export interface InjectorValues {
  policy: InjectionPolicy;
  neverInjectSelector: LabelSelector[];
  alwaysInjectSelector: LabelSelector[];
  revision: string;
  /**
   * Whether the status annotation carries the template version (for `mesh-injector check`); a status of this
   * revision without one is then another injector's (istiod's). Off in the istiod profile, whose status is Istio's.
   */
  templateVersionInStatus: boolean;
  nativeSidecars: NativeSidecarMode;
  holdApplicationUntilProxyStarts: boolean;
  images: { proxy: string; init: string };
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never' | null;
  /** Secrets for pulling the injected images, listed before the pod's own (Istio's global.imagePullSecrets). */
  imagePullSecrets: string[];
  /** Set on every injected pod, replacing the pod's own (Istio's sidecarInjectorWebhook.injectedAnnotations). */
  injectedAnnotations: Record<string, string>;
  proxy: {
    logLevel: string;
    componentLogLevel: string;
    concurrency: number;
    statusPort: number;
    resources: V1ResourceRequirements;
    readiness: { initialDelaySeconds: number; periodSeconds: number; failureThreshold: number };
  };
  init: {
    logLevel: string;
    /** Whether istio-init's `-g` follows a gid the pod gives its own istio-proxy, besides `-u` (Istio: no). */
    followProxyGroup: boolean;
  };
  traffic: {
    /** Interception modes the proxy template supports; others are denied. The default Envoy bootstrap is REDIRECT-only. */
    supportedInterceptionModes: InterceptionMode[];
    interceptionMode: InterceptionMode;
    includeOutboundIPRanges: string;
    excludeOutboundIPRanges: string;
    includeInboundPorts: string;
    excludeInboundPorts: string;
    includeOutboundPorts: string;
    excludeOutboundPorts: string;
  };
  prometheus: { enabled: boolean; port: number; path: string };
  /**
   * Istio's post-processing steps, off by default: rewrite the app containers' HTTP, TCP and gRPC probes and
   * lifecycle hooks to the status port (`/app-health/…`, `/app-lifecycle/…`), with ISTIO_KUBE_APP_PROBERS on the
   * proxy for pilot-agent, which serves them.
   */
  rewriteAppProbes: boolean;
  /**
   * Offline only: write what Go's encoder writes for unset fields (`status: {}`, `strategy: {}`, `resources: {}`,
   * `metadata: {}`), as istioctl kube-inject does.
   */
  offlineGoFields: boolean;
  /** Free-form data for the template (`{{ values.* }}`) when the configuration has no Istio inputs. */
  templateValues: Record<string, unknown>;
  /**
   * Istio's inputs (values, mesh config) as the template reads them, when the configuration directory holds them
   * (webhook/istio-mapping.ts); not a values.yaml key.
   */
  istio: IstioTemplateData | null;
}

export const DEFAULT_VALUES: InjectorValues = {
  policy: 'enabled',
  neverInjectSelector: [],
  alwaysInjectSelector: [],
  revision: 'default',
  templateVersionInStatus: true,
  nativeSidecars: 'auto',
  holdApplicationUntilProxyStarts: false,
  images: { proxy: 'docker.io/envoyproxy/envoy:v1.39.6', init: 'ghcr.io/mesh-injector/mesh-iptables:0.1.0' },
  imagePullPolicy: null,
  imagePullSecrets: [],
  injectedAnnotations: {},
  proxy: {
    logLevel: 'warning',
    componentLogLevel: 'misc:error',
    concurrency: 2,
    statusPort: PORTS.status,
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2', memory: '1Gi' } },
    readiness: { initialDelaySeconds: 0, periodSeconds: 15, failureThreshold: 4 },
  },
  init: { logLevel: 'default:info', followProxyGroup: true },
  traffic: {
    supportedInterceptionModes: ['REDIRECT', 'NONE'],
    interceptionMode: 'REDIRECT',
    includeOutboundIPRanges: '*',
    excludeOutboundIPRanges: '',
    includeInboundPorts: '*',
    excludeInboundPorts: '',
    includeOutboundPorts: '',
    excludeOutboundPorts: '',
  },
  prometheus: { enabled: true, port: PORTS.proxyStats, path: '/stats/prometheus' },
  rewriteAppProbes: false,
  offlineGoFields: false,
  templateValues: {},
  istio: null,
};

export class ValuesError extends Error {}

/**
 * Merges `raw` (parsed values.yaml, or Istio's inputs mapped to these keys) over the defaults and validates every
 * field. `istio` is what the template reads of Istio's inputs, when there are some. Throws ValuesError.
 */
export function parseValues(raw: unknown, istio: IstioTemplateData | null = null): InjectorValues {
  if (raw !== null && raw !== undefined && !isPlainObject(raw))
    throw new ValuesError('values must be a mapping');
  if (isPlainObject(raw) && Object.hasOwn(raw, 'istio'))
    throw new ValuesError('values.istio: unknown setting');
  const merged = deepMerge(structuredClone(DEFAULT_VALUES), raw ?? {}, 'values') as InjectorValues;
  merged.istio = istio;
  validate(merged);
  return merged;
}

function validate(values: InjectorValues): void {
  const check = (path: string, ok: boolean, accepted: string) => {
    if (!ok) throw new ValuesError(`values.${path}: invalid value; expected ${accepted}`);
  };
  const syntax = (path: string, parse: (value: string) => unknown, value: unknown) => {
    check(path, typeof value === 'string', 'a string');
    try {
      parse(value as string);
    } catch (error) {
      if (error instanceof ValueProblem)
        throw new ValuesError(`values.${path}: ${error.reason}; expected ${error.accepted}`);
      throw error;
    }
  };
  const wholeNumber = (path: string, value: unknown, max = 0xffffffff) =>
    check(
      path,
      Number.isInteger(value) && (value as number) >= 0 && (value as number) <= max,
      `a whole number up to ${max}`,
    );

  check('policy', ['enabled', 'disabled'].includes(values.policy), '"enabled" or "disabled"');
  for (const [name, list] of [
    ['neverInjectSelector', values.neverInjectSelector],
    ['alwaysInjectSelector', values.alwaysInjectSelector],
  ] as const) {
    check(name, Array.isArray(list), 'a list of label selectors');
    list.forEach((selector, index) => {
      check(`${name}[${index}]`, isPlainObject(selector), 'a label selector');
      const problem = selectorProblem(selector);
      if (problem) throw new ValuesError(`values.${name}[${index}]: ${problem}`);
    });
  }
  check(
    'revision',
    typeof values.revision === 'string' && /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(values.revision),
    'a DNS label',
  );
  check('templateVersionInStatus', typeof values.templateVersionInStatus === 'boolean', 'true or false');
  check(
    'nativeSidecars',
    ['auto', 'true', 'false'].includes(values.nativeSidecars),
    '"auto", "true" or "false"',
  );
  check(
    'holdApplicationUntilProxyStarts',
    typeof values.holdApplicationUntilProxyStarts === 'boolean',
    'true or false',
  );
  syntax('images.proxy', parseImageReference, values.images.proxy);
  syntax('images.init', parseImageReference, values.images.init);
  check(
    'imagePullPolicy',
    values.imagePullPolicy === null || ['Always', 'IfNotPresent', 'Never'].includes(values.imagePullPolicy),
    'Always, IfNotPresent, Never or null',
  );
  check(
    'imagePullSecrets',
    Array.isArray(values.imagePullSecrets) &&
      values.imagePullSecrets.every((name) => typeof name === 'string' && DNS_SUBDOMAIN.test(name)),
    'a list of Secret names',
  );
  check(
    'injectedAnnotations',
    isPlainObject(values.injectedAnnotations) &&
      Object.values(values.injectedAnnotations).every((value) => typeof value === 'string'),
    'a mapping of annotation names to strings',
  );
  syntax('proxy.logLevel', parseProxyLogLevel, values.proxy.logLevel);
  syntax('proxy.componentLogLevel', parseComponentLogLevels, values.proxy.componentLogLevel);
  wholeNumber('proxy.concurrency', values.proxy.concurrency, 1024);
  wholeNumber('proxy.statusPort', values.proxy.statusPort, 65535);
  validateResources('proxy.resources', values.proxy.resources);
  wholeNumber('proxy.readiness.initialDelaySeconds', values.proxy.readiness.initialDelaySeconds);
  wholeNumber('proxy.readiness.periodSeconds', values.proxy.readiness.periodSeconds);
  wholeNumber('proxy.readiness.failureThreshold', values.proxy.readiness.failureThreshold);
  syntax('init.logLevel', parseScopeLogLevels, values.init.logLevel);
  check('init.followProxyGroup', typeof values.init.followProxyGroup === 'boolean', 'true or false');
  const modes = ['REDIRECT', 'TPROXY', 'NONE'];
  check(
    'traffic.supportedInterceptionModes',
    Array.isArray(values.traffic.supportedInterceptionModes) &&
      values.traffic.supportedInterceptionModes.every((mode) => modes.includes(mode)),
    `a list of ${modes.join(', ')}`,
  );
  check(
    'traffic.interceptionMode',
    values.traffic.supportedInterceptionModes.includes(values.traffic.interceptionMode),
    `one of traffic.supportedInterceptionModes (${values.traffic.supportedInterceptionModes.join(', ')})`,
  );
  syntax('traffic.includeOutboundIPRanges', parseCidrListOrWildcard, values.traffic.includeOutboundIPRanges);
  syntax('traffic.excludeOutboundIPRanges', parseCidrList, values.traffic.excludeOutboundIPRanges);
  syntax('traffic.includeInboundPorts', parsePortListOrWildcard, values.traffic.includeInboundPorts);
  syntax('traffic.excludeInboundPorts', parsePortList, values.traffic.excludeInboundPorts);
  syntax('traffic.includeOutboundPorts', parsePortList, values.traffic.includeOutboundPorts);
  syntax('traffic.excludeOutboundPorts', parsePortList, values.traffic.excludeOutboundPorts);
  check('prometheus.enabled', typeof values.prometheus.enabled === 'boolean', 'true or false');
  check('rewriteAppProbes', typeof values.rewriteAppProbes === 'boolean', 'true or false');
  check('offlineGoFields', typeof values.offlineGoFields === 'boolean', 'true or false');
  check('templateValues', isPlainObject(values.templateValues), 'a mapping');
  syntax('prometheus.port', (value) => parsePort(value), String(values.prometheus.port));
  check(
    'prometheus.path',
    typeof values.prometheus.path === 'string' && /^\/[\w./-]*$/.test(values.prometheus.path),
    'a URL path',
  );
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function validateResources(path: string, resources: V1ResourceRequirements): void {
  if (!isPlainObject(resources))
    throw new ValuesError(`values.${path}: expected a mapping with requests and limits`);
  for (const kind of ['requests', 'limits'] as const) {
    for (const [name, quantity] of Object.entries(resources[kind] ?? {})) {
      try {
        parseQuantity(String(quantity));
      } catch (error) {
        if (error instanceof ValueProblem)
          throw new ValuesError(`values.${path}.${kind}.${name}: ${error.reason}`);
        throw error;
      }
    }
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const FREE_FORM = ['resources', 'templateValues', 'injectedAnnotations'];

/** Merges mappings key by key; lists and scalars replace. Unknown keys are errors, so typos do not pass silently. */
function deepMerge(base: unknown, overlay: unknown, path: string): unknown {
  if (!isPlainObject(base) || !isPlainObject(overlay)) return overlay;
  for (const [key, value] of Object.entries(overlay)) {
    if (!Object.hasOwn(base, key)) throw new ValuesError(`${path}.${key}: unknown setting`);
    const current = base[key];
    // resources (requests/limits by resource name), annotations and templateValues are free-form: replace them whole.
    base[key] =
      isPlainObject(current) && !FREE_FORM.includes(key)
        ? deepMerge(current, value, `${path}.${key}`)
        : value;
  }
  return base;
}
