/**
 * What a sidecar template receives: one typed structure, built per pod. The template's placeholders are paths into
 * it (`{{ proxy.image }}`); TEMPLATE_DATA_PATHS lists every leaf path, and the shipped templates' documentation is
 * tested against it (template-data.test.ts).
 */
import type { V1ContainerPort, V1Pod, V1ResourceRequirements } from '@kubernetes/client-node';
import { PORTS, PROXY_GID, PROXY_UID } from '../common/constants.js';
import { renderInitArgs } from './init-args.js';
import { withProxyConfigOverlay, type IstioTemplateData } from './istio-mapping.js';
import type { PodSettings } from './pod-settings.js';
import type { InjectorValues, InterceptionMode } from './values.js';
import { workloadOf } from './workload.js';

/** The workload a pod template belongs to, when injecting offline (kube-inject's TypeMeta and DeploymentMeta). */
export interface Workload {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
}

export interface TemplateData {
  pod: {
    name: string;
    namespace: string;
    serviceAccountName: string;
    /** The workload's name (Deployment, not ReplicaSet; CronJob, not Job), else the pod's. */
    workloadName: string;
    /** The app containers' names, comma-separated (Istio's ISTIO_META_APP_CONTAINERS). */
    appContainers: string;
    /** The app containers' ports as Istio's template prints them (ISTIO_META_POD_PORTS). */
    portsJson: string;
    /** `kubernetes://apis/<apiVersion>/namespaces/<ns>/<kind>s/<name>` of the workload (null without a name). */
    owner: string | null;
  };
  revision: string;
  interceptionMode: InterceptionMode;
  ports: typeof PORTS;
  init: {
    image: string;
    args: string[];
    resources: V1ResourceRequirements;
    imagePullPolicy: InjectorValues['imagePullPolicy'];
  };
  proxy: {
    image: string;
    uid: number;
    gid: number;
    logLevel: string;
    componentLogLevel: string;
    agentLogLevel: string;
    concurrency: string;
    resources: V1ResourceRequirements;
    statusPort: number;
    readiness: PodSettings['readiness'];
    imagePullPolicy: InjectorValues['imagePullPolicy'];
    /** envoy.yaml as one line of JSON, or null without one. */
    bootstrap: string | null;
  };
  /** Istio's chart values when the configuration has Istio's inputs, else values.yaml's free-form `templateValues`. */
  values: Readonly<Record<string, unknown>>;
  /** What Istio's template reads besides the values (webhook/istio-mapping.ts); null without Istio's inputs. */
  istio: IstioTemplateData | null;
}

export interface TemplateInputs {
  pod: V1Pod;
  namespace: string;
  settings: PodSettings;
  values: InjectorValues;
  proxyBootstrap: string | null;
  workload?: Workload;
}

export function buildTemplateData({
  pod,
  namespace,
  settings,
  values,
  proxyBootstrap,
  workload,
}: TemplateInputs): TemplateData {
  const apps = (pod.spec?.containers ?? []).filter((c) => c.name !== 'istio-proxy');
  const owner = workload ?? { ...workloadOf(pod), namespace };
  return {
    pod: {
      name: pod.metadata?.name ?? '',
      namespace,
      serviceAccountName: pod.spec?.serviceAccountName ?? 'default',
      workloadName: pod.metadata?.labels?.['service.istio.io/workload-name'] || owner.name,
      appContainers: apps.map((c) => c.name).join(','),
      portsJson: portsJson(pod.spec?.containers ?? []),
      owner: owner.name
        ? `kubernetes://apis/${owner.apiVersion}/namespaces/${owner.namespace || 'default'}/${owner.kind.toLowerCase()}s/${owner.name}`
        : null,
    },
    revision: values.revision,
    interceptionMode: settings.interceptionMode,
    ports: PORTS,
    init: {
      image: settings.initImage,
      args: renderInitArgs(settings),
      resources: settings.resources,
      imagePullPolicy: values.imagePullPolicy,
    },
    proxy: {
      image: settings.proxyImage,
      uid: PROXY_UID,
      gid: PROXY_GID,
      logLevel: settings.proxyLogLevel,
      componentLogLevel: settings.proxyComponentLogLevel,
      agentLogLevel: settings.agentLogLevel,
      concurrency: String(values.proxy.concurrency),
      resources: settings.resources,
      statusPort: settings.statusPort,
      readiness: settings.readiness,
      imagePullPolicy: values.imagePullPolicy,
      bootstrap: proxyBootstrap,
    },
    values: values.istio?.values ?? values.templateValues,
    istio:
      values.istio && settings.proxyConfig
        ? withProxyConfigOverlay(values.istio, settings.proxyConfig)
        : values.istio,
  };
}

/** Go's JSON of a ContainerPort: fields in struct order, zero values left out. */
function portJson(port: V1ContainerPort): string {
  const fields: [string, unknown][] = [
    ['name', port.name],
    ['hostPort', port.hostPort],
    ['containerPort', port.containerPort],
    ['protocol', port.protocol],
    ['hostIP', port.hostIP],
  ];
  const present = fields.filter(([, value]) => value !== undefined && value !== '' && value !== 0);
  return `{${present.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`).join(',')}}`;
}

/** Istio's template: `[`, then each port on its own line indented by 4, joined by a leading comma, then `]`. */
function portsJson(containers: readonly { ports?: V1ContainerPort[] }[]): string {
  const ports = containers.flatMap((c) => c.ports ?? []).map(portJson);
  return ['[', ...ports.map((port, index) => `    ${index === 0 ? '' : ','}${port}`), ']'].join('\n');
}

/** Every leaf path of TemplateData, as a template names it; `values.*` is free-form. */
export const TEMPLATE_DATA_PATHS: readonly string[] = [
  ...['name', 'namespace', 'serviceAccountName', 'workloadName', 'appContainers', 'portsJson', 'owner'].map(
    (key) => `pod.${key}`,
  ),
  'revision',
  'interceptionMode',
  ...Object.keys(PORTS).map((key) => `ports.${key}`),
  ...['image', 'args', 'resources', 'imagePullPolicy'].map((key) => `init.${key}`),
  ...[
    'image',
    'uid',
    'gid',
    'logLevel',
    'componentLogLevel',
    'agentLogLevel',
    'concurrency',
    'resources',
    'statusPort',
    'readiness.initialDelaySeconds',
    'readiness.periodSeconds',
    'readiness.failureThreshold',
    'imagePullPolicy',
    'bootstrap',
  ].map((key) => `proxy.${key}`),
  ...[
    'caAddress',
    'clusterId',
    'meshId',
    'trustDomain',
    'network',
    'networkEnv',
    'proxyConfigJson',
    'proxyMetadataEnv',
    'initEnv',
    'localhostProbeEnv',
    'mesh.*',
  ].map((key) => `istio.${key}`),
  'values.*',
];
