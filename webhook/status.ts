/**
 * The `sidecar.istio.io/status` annotation: which containers and volumes the injector added, so a re-injection
 * can replace them instead of adding them twice. Keys in Istio's order; empty lists serialise as null.
 */

export interface InjectionStatus {
  initContainers: string[];
  containers: string[];
  volumes: string[];
  imagePullSecrets: string[];
  revision: string;
}

export function formatStatus(status: InjectionStatus): string {
  const list = (names: string[]) => (names.length > 0 ? names : null);
  return JSON.stringify({
    initContainers: list(status.initContainers),
    containers: list(status.containers),
    volumes: list(status.volumes),
    imagePullSecrets: list(status.imagePullSecrets),
    revision: status.revision,
  });
}

/** An unparseable annotation counts as absent, as in Istio. */
export function parseStatus(annotation: string | undefined): InjectionStatus | undefined {
  if (annotation === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(annotation);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const record = parsed as Record<string, unknown>;
  const names = (value: unknown) =>
    Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
  return {
    initContainers: names(record.initContainers),
    containers: names(record.containers),
    volumes: names(record.volumes),
    imagePullSecrets: names(record.imagePullSecrets),
    revision: typeof record.revision === 'string' ? record.revision : '',
  };
}
