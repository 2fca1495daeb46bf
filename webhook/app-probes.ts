/**
 * Istio's probe rewriting (pkg/kube/inject/app_probe.go), a step enabled by `values.rewriteAppProbes`: the app
 * containers' HTTP, TCP and gRPC probes and lifecycle hooks are pointed at the status port
 * (`/app-health/<container>/<readyz|livez|startupz>`, `/app-lifecycle/<container>/<poststartz|prestopz>`), where
 * pilot-agent serves them from ISTIO_KUBE_APP_PROBERS. Capture would otherwise send the kubelet's probes through the
 * proxy, which mTLS breaks. Exec probes are left alone.
 */
import type { V1Container, V1ContainerPort, V1LifecycleHandler, V1Probe } from '@kubernetes/client-node';

export const APP_PROBERS_ENV = 'ISTIO_KUBE_APP_PROBERS';

const PROBES = [
  ['readinessProbe', 'readyz'],
  ['livenessProbe', 'livez'],
  ['startupProbe', 'startupz'],
] as const;
const HOOKS = [
  ['postStart', 'poststartz'],
  ['preStop', 'prestopz'],
] as const;

type Handler = Pick<V1Probe, 'httpGet' | 'tcpSocket' | 'grpc'>;

export interface RewrittenProbes {
  containers: V1Container[];
  /** The JSON for ISTIO_KUBE_APP_PROBERS (keys sorted, as Go writes a map), or undefined when nothing moved. */
  probers: string | undefined;
}

export function rewriteAppProbes(containers: readonly V1Container[], statusPort: number): RewrittenProbes {
  const probers = new Map<string, string>();
  const rewritten = containers.map((container) => {
    let result = container;
    for (const [field, suffix] of PROBES) {
      const probe = container[field];
      if (!probe || !isNetworkHandler(probe)) continue;
      const path = `/app-health/${container.name}/${suffix}`;
      probers.set(path, proberJson(probe, container.ports ?? [], probe.timeoutSeconds));
      result = { ...result, [field]: redirected(probe, path, statusPort) };
    }
    for (const [hook, suffix] of HOOKS) {
      const handler = container.lifecycle?.[hook];
      if (!handler || !isNetworkHandler(handler)) continue;
      const path = `/app-lifecycle/${container.name}/${suffix}`;
      probers.set(path, proberJson(handler, container.ports ?? [], undefined));
      result = {
        ...result,
        lifecycle: { ...result.lifecycle, [hook]: redirected(handler, path, statusPort) },
      };
    }
    return result;
  });
  if (probers.size === 0) return { containers: rewritten, probers: undefined };
  const entries = [...probers.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    containers: rewritten,
    probers: `{${entries.map(([path, json]) => `${JSON.stringify(path)}:${json}`).join(',')}}`,
  };
}

function isNetworkHandler(handler: Handler): boolean {
  return handler.httpGet !== undefined || handler.tcpSocket !== undefined || handler.grpc !== undefined;
}

/** The probe or hook with its handler replaced by an HTTP GET of `path` on the status port. */
function redirected<T extends Handler>(handler: T, path: string, statusPort: number): T {
  const { httpGet, tcpSocket: _tcp, grpc: _grpc, ...rest } = handler;
  return {
    ...rest,
    httpGet: { path, port: statusPort, ...(httpGet?.scheme !== undefined ? { scheme: 'HTTP' } : {}) },
  } as T;
}

/** Go's JSON of Istio's Prober: httpGet, tcpSocket, grpc, timeoutSeconds, in struct order; named ports resolved. */
function proberJson(
  handler: Handler | V1LifecycleHandler,
  ports: V1ContainerPort[],
  timeout?: number,
): string {
  const port = (value: number | string | undefined) =>
    typeof value === 'string' ? (ports.find((p) => p.name === value)?.containerPort ?? value) : value;
  const fields: [string, unknown][] = [];
  if (handler.httpGet) {
    const { path, port: p, host, scheme, httpHeaders } = handler.httpGet;
    fields.push(['httpGet', ordered({ path, port: port(p as number | string), host, scheme, httpHeaders })]);
  }
  if (handler.tcpSocket) {
    const { port: p, host } = handler.tcpSocket;
    fields.push(['tcpSocket', ordered({ port: port(p as number | string), host })]);
  }
  if ('grpc' in handler && handler.grpc) fields.push(['grpc', ordered({ ...handler.grpc })]);
  if (timeout !== undefined && timeout !== 0) fields.push(['timeoutSeconds', timeout]);
  return JSON.stringify(Object.fromEntries(fields));
}

function ordered(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(fields).filter(([, value]) => value !== undefined && value !== ''),
  );
}
