/**
 * Injection proper: pod in, injected pod out. Pure: no I/O, no clock, no randomness, so injecting an injected pod
 * gives the same pod, and the patch is the difference of two plain objects. The injected pod shares what injection
 * leaves unchanged with the pod given, so neither is to be mutated afterwards.
 */
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import { ANNOTATIONS } from '../common/constants.js';
import { ANNOTATION_TABLE } from './annotations.js';
import { APP_PROBERS_ENV, rewriteAppProbes } from './app-probes.js';
import { mergeContainer } from './container-merge.js';
import { resolveNativeSidecars, type NativeSidecarDefault } from './native-sidecars.js';
import {
  describeProblem,
  readPodSettings,
  type AnnotationProblem,
  type PodSettings,
} from './pod-settings.js';
import { followProxyIdentity, withInterceptionPrivileges } from './proxy-identity.js';
import { renderSidecar, type SidecarTemplate } from './sidecar-template.js';
import type { ContainerOverride } from './syntax.js';
import { formatStatus, parseStatus, templateVersion } from './status.js';
import type { InjectorValues } from './values.js';
import { buildTemplateData, type Workload } from './template-data.js';
import { canonicalLabels } from './workload.js';

/** Everything injection depends on besides the pod: the loaded configuration and what was learned of the cluster. */
export interface InjectionContext {
  values: InjectorValues;
  template: SidecarTemplate;
  /** The proxy's bootstrap (envoy.yaml in the config directory), if the template wants it. */
  proxyBootstrap: string | null;
  /**
   * Native sidecars for pods that do not choose: a fixed answer, or what was learned of the cluster, resolved per
   * pod with the values' `nativeSidecars` mode (native-sidecars.ts).
   */
  nativeSidecars: NativeSidecarDefault;
}

/** `warnings` go back to the client (kubectl shows them): deprecated annotations, values treated as no decision. */
export type InjectionResult =
  | { outcome: 'injected'; pod: V1Pod; warnings: string[] }
  | { outcome: 'denied'; message: string; problems: AnnotationProblem[] };

/** Written on first injection when the pod brings its own container with an injected name (Istio's format). */

/** `workload`: offline, the object whose pod template this is (the owner Istio's template names). */
export function injectPod(
  original: V1Pod,
  namespace: string,
  context: InjectionContext,
  workload?: Workload,
): InjectionResult {
  const annotations = original.metadata?.annotations ?? {};
  const read = readPodSettings(annotations, context.values);
  if (!read.ok) {
    return {
      outcome: 'denied',
      message: read.problems.map(describeProblem).join('; '),
      problems: read.problems,
    };
  }
  const settings = read.settings;
  const layout = resolveNativeSidecars(
    settings.nativeSidecar,
    context.values.nativeSidecars,
    context.nativeSidecars,
    original.spec?.nodeName,
  );
  if ('refused' in layout) {
    const problem: AnnotationProblem = {
      annotation: ANNOTATIONS.nativeSidecar,
      value: 'true',
      reason: layout.refused,
      fix: ANNOTATION_TABLE.nativeSidecar.fix,
    };
    return { outcome: 'denied', message: describeProblem(problem), problems: [problem] };
  }

  const previous = parseStatus(annotations[ANNOTATIONS.status]);
  const previouslyInjected = new Set([...(previous?.initContainers ?? []), ...(previous?.containers ?? [])]);
  const previousVolumes = new Set(previous?.volumes ?? []);
  const userInit = (original.spec?.initContainers ?? []).filter((c) => !previouslyInjected.has(c.name));
  const userContainers = (original.spec?.containers ?? []).filter((c) => !previouslyInjected.has(c.name));
  const userVolumes = (original.spec?.volumes ?? []).filter((v) => !previousVolumes.has(v.name));

  const stripped: V1Pod = {
    ...original,
    spec: { ...original.spec, initContainers: userInit, containers: userContainers, volumes: userVolumes },
  };
  const data = buildTemplateData({
    pod: stripped,
    namespace,
    settings,
    values: context.values,
    proxyBootstrap: context.proxyBootstrap,
    workload,
  });
  const sidecar = renderSidecar(context.template, data);
  const init = settings.interceptionMode === 'NONE' ? undefined : sidecar.init;
  const proxy = sidecar.proxy;
  if (settings.statusPort === 0) {
    delete proxy.readinessProbe;
    delete proxy.startupProbe;
  }

  // A container of the pod's own with an injected name customises the injected one, field by field (Istio's
  // "customizing injection"). On re-injection the customisation comes back from the overrides annotation.
  const injectedNames = new Set([proxy.name, ...(init ? [init.name] : [])]);
  const overrides = previous
    ? overridesByName(settings.containerOverrides ?? [])
    : collectOverrides(userInit, userContainers, injectedNames);
  const customized = (container: V1Container) => mergeContainer(container, overrides.get(container.name));
  const userApps = userContainers.filter((c) => !injectedNames.has(c.name));
  const userAppInit = userInit.filter((c) => !injectedNames.has(c.name));
  // The app's own native sidecars (init containers with restartPolicy Always) are probed like containers.
  const probed = [...userApps, ...userAppInit.filter((c) => c.restartPolicy === 'Always')];
  const probes =
    settings.rewriteAppProbes && settings.statusPort !== 0
      ? rewriteAppProbes(probed, settings.statusPort)
      : { containers: probed, probers: undefined };
  const rewritten = new Map(probed.map((c, index) => [c, probes.containers[index]!]));
  const apps = userApps.map((c) => rewritten.get(c) ?? c);
  const appInit = userAppInit.map((c) => rewritten.get(c) ?? c);
  if (probes.probers !== undefined) {
    proxy.env = [...(proxy.env ?? []), { name: APP_PROBERS_ENV, value: probes.probers }];
  }
  const native = layout.native;
  // Istio drains a native sidecar on preStop; the classic proxy has no hook. A user's own lifecycle still wins.
  const laidOut =
    native && sidecar.nativeSidecarLifecycle
      ? { ...proxy, lifecycle: sidecar.nativeSidecarLifecycle }
      : proxy;
  const { proxy: injectedProxy, init: injectedInit } = followProxyIdentity(
    customized(withInterceptionPrivileges(laidOut, settings.interceptionMode)),
    init && customized(init),
    overrides.get(proxy.name),
    settings.interceptionMode,
    context.values.init.followProxyGroup,
  );

  let initContainers: V1Container[];
  let containers: V1Container[];
  if (native) {
    initContainers = [
      ...(injectedInit ? [injectedInit] : []),
      { ...injectedProxy, restartPolicy: 'Always' },
      ...appInit,
    ];
    containers = apps;
  } else if (settings.holdApplicationUntilProxyStarts && sidecar.holdApplicationLifecycle) {
    // iptables last among init containers, so the user's own init containers are not captured.
    initContainers = [...appInit, ...(injectedInit ? [injectedInit] : [])];
    containers = [{ ...injectedProxy, lifecycle: sidecar.holdApplicationLifecycle }, ...apps];
  } else {
    initContainers = [...appInit, ...(injectedInit ? [injectedInit] : [])];
    containers = [...apps, injectedProxy];
  }
  const injectedVolumeNames = new Set(sidecar.volumes.map((v) => v.name));
  const volumes: V1Volume[] = [
    ...sidecar.volumes,
    ...userVolumes.filter((v) => !injectedVolumeNames.has(v.name)),
  ];

  // Copies only what changes: the rest stays shared with the original, which costs nothing to copy (a large pod
  // is a megabyte) and lets the patch skip it by identity. Nothing mutates a pod after injection.
  const pod: V1Pod = { ...original };
  pod.spec = { ...original.spec, containers };
  setList(pod.spec, 'initContainers', initContainers, original.spec?.initContainers);
  setList(pod.spec, 'volumes', volumes, original.spec?.volumes);
  const pullSecrets = context.values.imagePullSecrets;
  if (pullSecrets.length > 0) {
    // Istio's strategic merge: the injected secrets first, then the pod's own that are not among them.
    const own = (original.spec?.imagePullSecrets ?? []).filter((s) => !pullSecrets.includes(s.name ?? ''));
    pod.spec.imagePullSecrets = [...pullSecrets.map((name) => ({ name })), ...own];
  }
  pod.metadata = {
    ...original.metadata,
    labels: { ...original.metadata?.labels, ...sidecar.metadata.labels, ...canonicalLabels(stripped) },
    annotations: injectedAnnotations(
      { ...annotations, ...sidecar.metadata.annotations },
      {
        apps,
        settings,
        context,
        status: formatStatus({
          initContainers: native ? [...(init ? [init.name] : []), proxy.name] : init ? [init.name] : [],
          containers: native ? [] : [proxy.name],
          volumes: sidecar.volumes.map((v) => v.name),
          imagePullSecrets: pullSecrets,
          revision: context.values.revision,
          ...(context.values.templateVersionInStatus ? { version: templateVersion(context) } : {}),
        }),
        overrides:
          !previous && overrides.size > 0
            ? formatOverrides(overrides, userInit, native, proxy.name)
            : undefined,
      },
    ),
  };
  return { outcome: 'injected', pod, warnings: read.warnings };
}

interface AnnotationInputs {
  apps: V1Container[];
  settings: PodSettings;
  context: InjectionContext;
  status: string;
  overrides: string | undefined;
}

function injectedAnnotations(
  existing: Readonly<Record<string, string>>,
  { apps, settings, context, status, overrides }: AnnotationInputs,
): Record<string, string> {
  const annotations: Record<string, string> = { ...existing };
  const firstApp = apps[0]?.name;
  if (firstApp !== undefined) {
    annotations[ANNOTATIONS.defaultContainer] ??= firstApp;
    annotations[ANNOTATIONS.defaultLogsContainer] ??= firstApp;
  }
  annotations[ANNOTATIONS.revision] = context.values.revision;
  const { prometheus } = context.values;
  if (prometheus.enabled && settings.mergeMetrics !== false && !hasPrometheusAnnotations(existing)) {
    annotations[ANNOTATIONS.prometheusScrape] = 'true';
    annotations[ANNOTATIONS.prometheusPort] = String(prometheus.port);
    annotations[ANNOTATIONS.prometheusPath] = prometheus.path;
  }
  if (overrides !== undefined) annotations[ANNOTATIONS.overrides] = overrides;
  annotations[ANNOTATIONS.status] = status;
  Object.assign(annotations, context.values.injectedAnnotations);
  return annotations;
}

/**
 * The proxy serves its own metrics only, with no agent to merge the app's, so an app's own scrape annotations are
 * kept rather than replaced (Istio's merge needs pilot-agent). Keys match after Prometheus label sanitising.
 */
function hasPrometheusAnnotations(annotations: Readonly<Record<string, string>>): boolean {
  const sanitized = ['scrape', 'port', 'path'].map((key) => `prometheus_io_${key}`);
  return Object.keys(annotations).some((key) => sanitized.includes(key.replace(/[^a-zA-Z0-9_]/g, '_')));
}

type Overrides = Map<string, V1Container>;

function collectOverrides(init: V1Container[], containers: V1Container[], injected: Set<string>): Overrides {
  return new Map([...init, ...containers].filter((c) => injected.has(c.name)).map((c) => [c.name, c]));
}

function overridesByName(overrides: readonly ContainerOverride[]): Overrides {
  return new Map(overrides.map((container) => [container.name, container as V1Container]));
}

/**
 * Istio's format: Go's JSON of the containers (fields in struct order, `resources` always, `image: auto` left out),
 * under the list the injected container lives in (a native proxy's under initContainers).
 */
function formatOverrides(
  overrides: Overrides,
  userInit: V1Container[],
  native: boolean,
  proxyName: string,
): string {
  const initNames = new Set(userInit.map((c) => c.name));
  const inInit = (c: V1Container) => initNames.has(c.name) || (native && c.name === proxyName);
  const all = [...overrides.values()];
  const initContainers = all.filter(inInit).map(goContainerJson);
  const containers = all.filter((c) => !inInit(c)).map(goContainerJson);
  return JSON.stringify({
    ...(containers.length > 0 ? { containers } : {}),
    ...(initContainers.length > 0 ? { initContainers } : {}),
  });
}

/** k8s.io/api core/v1 Container's field order. */
const CONTAINER_FIELDS = [
  'name',
  'image',
  'command',
  'args',
  'workingDir',
  'ports',
  'envFrom',
  'env',
  'resources',
  'resizePolicy',
  'restartPolicy',
  'volumeMounts',
  'volumeDevices',
  'livenessProbe',
  'readinessProbe',
  'startupProbe',
  'lifecycle',
  'terminationMessagePath',
  'terminationMessagePolicy',
  'imagePullPolicy',
  'securityContext',
  'stdin',
  'stdinOnce',
  'tty',
];

function goContainerJson(container: V1Container): Record<string, unknown> {
  const fields: Record<string, unknown> = { ...container, resources: container.resources ?? {} };
  if (fields.image === 'auto') delete fields.image;
  const known = CONTAINER_FIELDS.filter((field) => fields[field] !== undefined).map((field) => [
    field,
    fields[field],
  ]);
  const rest = Object.entries(fields).filter(([field]) => !CONTAINER_FIELDS.includes(field));
  return Object.fromEntries([...known, ...rest]);
}

function setList<K extends 'initContainers' | 'volumes'>(
  spec: NonNullable<V1Pod['spec']>,
  key: K,
  items: NonNullable<V1Pod['spec']>[K],
  before: unknown[] | undefined,
): void {
  if ((items?.length ?? 0) > 0 || before !== undefined) spec[key] = items;
}
