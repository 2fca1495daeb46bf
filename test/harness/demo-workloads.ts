/**
 * The demo workloads: an echo server Deployment and Service, clients with curl, a pod outside the mesh; the same
 * objects for `npm start` and the e2e suite. Pure: they only build the objects.
 */
export const ECHO_PORT = 8080;
/** Excluded from capture by annotation: inbound on the server, outbound on the bypass client. */
export const BYPASS_PORT = 8081;
export const OUTBOUND_LISTENER = '0.0.0.0_15001';
export const INBOUND_LISTENER = '0.0.0.0_15006';
export const STATS_PORT = 15090;
const IDLE_PORT = 9000;

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  securityContext?: { capabilities?: { add?: string[]; drop?: string[] } };
}

export interface Pod {
  metadata: { name: string; namespace: string; annotations?: Record<string, string>; uid?: string };
  spec: { initContainers?: Container[]; containers: Container[] };
  status: {
    podIP?: string;
    initContainerStatuses?: ContainerStatus[];
    containerStatuses?: ContainerStatus[];
  };
}

export interface ContainerStatus {
  name: string;
  ready: boolean;
  containerID?: string;
  state: {
    running?: { startedAt: string };
    terminated?: { exitCode: number; reason?: string; startedAt?: string; finishedAt?: string };
  };
}

/**
 * The demo pods probe their proxy's readiness every second. With the template's default (15 s, as Istio's), a
 * v1.20 kubelet probes readiness, once the startup probe has passed, only at the next 15 s tick or when a pod
 * status update triggers it, so a demo pod would wait up to 15 s more for Ready; bench section 7 measures both.
 */
export const DEMO_POD_ANNOTATIONS = { 'readiness.status.sidecar.istio.io/periodSeconds': '1' };

/** An HTTP server that answers `peer=<caller>` on ECHO_PORT and BYPASS_PORT; the second port skips inbound capture. */
export function echoDeployment(namespace: string, image: string): object {
  const labels = { app: 'echo' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'echo', namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: {
          labels,
          annotations: {
            ...DEMO_POD_ANNOTATIONS,
            'traffic.sidecar.istio.io/excludeInboundPorts': String(BYPASS_PORT),
          },
        },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [ECHO_PORT, BYPASS_PORT].map((port) => ({
            name: `echo-${port}`,
            image,
            imagePullPolicy: 'IfNotPresent',
            command: ['mesh-demo-echo', String(port)],
            ports: [{ containerPort: port }],
          })),
        },
      },
    },
  };
}

export function echoService(namespace: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace },
    spec: {
      selector: { app: 'echo' },
      ports: [ECHO_PORT, BYPASS_PORT].map((port) => ({ name: `http-${port}`, port, targetPort: port })),
    },
  };
}

/** A pod with curl whose main process is an idle echo server (the demo image need not have `sleep`). */
export function clientPod(
  namespace: string,
  name: string,
  image: string,
  annotations: Record<string, string> = {},
): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: { app: name },
      annotations: { ...DEMO_POD_ANNOTATIONS, ...annotations },
    },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'client',
          image,
          imagePullPolicy: 'IfNotPresent',
          command: ['mesh-demo-echo', String(IDLE_PORT)],
        },
      ],
    },
  };
}

export function plainEchoPod(namespace: string, image: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'plain-echo', namespace, labels: { app: 'plain-echo' } },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'echo',
          image,
          imagePullPolicy: 'IfNotPresent',
          command: ['mesh-demo-echo', String(ECHO_PORT)],
        },
      ],
    },
  };
}

/** The sum of a Prometheus counter over the series whose labels include `labels`. */
export function sumCounter(text: string, metric: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== metric) continue;
    const series = Object.fromEntries(
      [...(match[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([name, value]) => series[name] === value)) total += Number(match[4]);
  }
  return total;
}

/** kubectl's arguments for one `curl` from the pod's `client` container to `url`. */
export function curlArgs(namespace: string, pod: string, url: string): string[] {
  return ['-n', namespace, 'exec', pod, '-c', 'client', '--', 'curl', '-sS', '--max-time', '10', url];
}
