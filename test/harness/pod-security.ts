/**
 * The Pod Security Standards `restricted` profile (which includes `baseline`), as a checker for a pod spec: the
 * rules of kubernetes.io/docs/concepts/security/pod-security-standards, one function each, so a test can say which
 * rule a pod or container breaks. It judges the spec as written, the way the PodSecurity admission plugin does: a
 * field left unset where the profile requires a value is a violation.
 */
import type { V1Container, V1PodSpec, V1SeccompProfile } from '@kubernetes/client-node';

export interface Violation {
  /** The rule, as the Pod Security Standards page names it. */
  rule: string;
  /** Where: `pod`, or `container <name>` / `initContainer <name>`. */
  where: string;
  detail: string;
}

/** Restricted allows only these volume types. */
const RESTRICTED_VOLUME_TYPES = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
]);

const SELINUX_TYPES = new Set([
  '',
  'container_t',
  'container_init_t',
  'container_kvm_t',
  'container_engine_t',
]);

interface NamedContainer {
  where: string;
  container: V1Container;
}

/** `annotations` are the pod's, for the AppArmor rule (annotations before Kubernetes 1.30, fields after). */
export function restrictedViolations(spec: V1PodSpec, annotations: Record<string, string> = {}): Violation[] {
  const containers: NamedContainer[] = [
    ...(spec.initContainers ?? []).map((container) => ({
      where: `initContainer ${container.name}`,
      container,
    })),
    ...(spec.containers ?? []).map((container) => ({ where: `container ${container.name}`, container })),
    ...(spec.ephemeralContainers ?? []).map((container) => ({
      where: `ephemeralContainer ${container.name}`,
      container: container as V1Container,
    })),
  ];
  return [
    ...hostNamespaces(spec),
    ...(spec.securityContext?.windowsOptions?.hostProcess === true
      ? [{ rule: 'HostProcess', where: 'pod', detail: 'windowsOptions.hostProcess is true' }]
      : []),
    ...hostPathVolumes(spec),
    ...volumeTypes(spec),
    ...sysctls(spec),
    ...seLinux(spec, containers),
    ...runAsNonRoot(spec, containers),
    ...runAsUser(spec, containers),
    ...seccomp(spec, containers),
    ...appArmor(spec, containers, annotations),
    ...containers.flatMap(({ where, container }) => [
      ...privileged(where, container),
      ...privilegeEscalation(where, container),
      ...capabilities(where, container),
      ...hostPorts(where, container),
      ...procMount(where, container),
      ...windowsHostProcess(where, container),
    ]),
  ];
}

function hostNamespaces(spec: V1PodSpec): Violation[] {
  return (['hostNetwork', 'hostPID', 'hostIPC'] as const)
    .filter((field) => spec[field] === true)
    .map((field) => ({ rule: 'Host Namespaces', where: 'pod', detail: `${field} is true` }));
}

function hostPathVolumes(spec: V1PodSpec): Violation[] {
  return (spec.volumes ?? [])
    .filter((volume) => volume.hostPath !== undefined)
    .map((volume) => ({
      rule: 'HostPath Volumes',
      where: 'pod',
      detail: `volume ${volume.name} is a hostPath`,
    }));
}

function volumeTypes(spec: V1PodSpec): Violation[] {
  return (spec.volumes ?? []).flatMap((volume) =>
    Object.keys(volume)
      .filter((key) => key !== 'name' && (volume as unknown as Record<string, unknown>)[key] != null)
      .filter((type) => !RESTRICTED_VOLUME_TYPES.has(type))
      .map((type) => ({
        rule: 'Volume Types',
        where: 'pod',
        detail: `volume ${volume.name} is of type ${type}`,
      })),
  );
}

function sysctls(spec: V1PodSpec): Violation[] {
  return (spec.securityContext?.sysctls ?? [])
    .filter((sysctl) => !SAFE_SYSCTLS.has(sysctl.name))
    .map((sysctl) => ({ rule: 'Sysctls', where: 'pod', detail: `${sysctl.name} is not a safe sysctl` }));
}

function seLinux(spec: V1PodSpec, containers: NamedContainer[]): Violation[] {
  const options = [
    { where: 'pod', options: spec.securityContext?.seLinuxOptions },
    ...containers.map(({ where, container }) => ({
      where,
      options: container.securityContext?.seLinuxOptions,
    })),
  ];
  return options.flatMap(({ where, options }) => {
    if (!options) return [];
    const problems: string[] = [];
    if (!SELINUX_TYPES.has(options.type ?? '')) problems.push(`type ${options.type}`);
    if (options.user) problems.push(`user ${options.user}`);
    if (options.role) problems.push(`role ${options.role}`);
    return problems.map((detail) => ({ rule: 'SELinux', where, detail: `seLinuxOptions ${detail} is set` }));
  });
}

/** runAsNonRoot must be true on the pod or on every container, and never false on a container. */
function runAsNonRoot(spec: V1PodSpec, containers: NamedContainer[]): Violation[] {
  const podLevel = spec.securityContext?.runAsNonRoot;
  return containers.flatMap(({ where, container }) => {
    const own = container.securityContext?.runAsNonRoot;
    if (own === false) return [{ rule: 'Running as Non-root', where, detail: 'runAsNonRoot is false' }];
    if (own === true || podLevel === true) return [];
    return [{ rule: 'Running as Non-root', where, detail: 'runAsNonRoot is not true here or on the pod' }];
  });
}

function runAsUser(spec: V1PodSpec, containers: NamedContainer[]): Violation[] {
  const found = [
    { where: 'pod', uid: spec.securityContext?.runAsUser },
    ...containers.map(({ where, container }) => ({ where, uid: container.securityContext?.runAsUser })),
  ];
  return found
    .filter(({ uid }) => uid === 0)
    .map(({ where }) => ({ rule: 'Running as Non-root user', where, detail: 'runAsUser is 0' }));
}

/** RuntimeDefault or Localhost on the pod or on every container; Unconfined nowhere. */
function seccomp(spec: V1PodSpec, containers: NamedContainer[]): Violation[] {
  const allowed = (profile: V1SeccompProfile | undefined) =>
    profile?.type === 'RuntimeDefault' || profile?.type === 'Localhost';
  const podProfile = spec.securityContext?.seccompProfile;
  const violations: Violation[] = [];
  if (podProfile && !allowed(podProfile))
    violations.push({ rule: 'Seccomp', where: 'pod', detail: `seccompProfile is ${podProfile.type}` });
  for (const { where, container } of containers) {
    const own = container.securityContext?.seccompProfile;
    if (own && !allowed(own)) {
      violations.push({ rule: 'Seccomp', where, detail: `seccompProfile is ${own.type}` });
    } else if (!own && !allowed(podProfile)) {
      violations.push({
        rule: 'Seccomp',
        where,
        detail: 'no RuntimeDefault or Localhost seccompProfile here or on the pod',
      });
    }
  }
  return violations;
}

function appArmor(
  spec: V1PodSpec,
  containers: NamedContainer[],
  annotations: Record<string, string>,
): Violation[] {
  const allowedField = (type: string | undefined) =>
    type === undefined || type === 'RuntimeDefault' || type === 'Localhost';
  const fields = [
    { where: 'pod', type: spec.securityContext?.appArmorProfile?.type },
    ...containers.map(({ where, container }) => ({
      where,
      type: container.securityContext?.appArmorProfile?.type,
    })),
  ];
  const fromAnnotations = Object.entries(annotations)
    .filter(([key]) => key.startsWith('container.apparmor.security.beta.kubernetes.io/'))
    .filter(([, value]) => value !== 'runtime/default' && !value.startsWith('localhost/'))
    .map(([key, value]) => ({ rule: 'AppArmor', where: 'pod', detail: `${key} is ${value}` }));
  return [
    ...fields
      .filter(({ type }) => !allowedField(type))
      .map(({ where, type }) => ({ rule: 'AppArmor', where, detail: `appArmorProfile is ${type}` })),
    ...fromAnnotations,
  ];
}

function privileged(where: string, container: V1Container): Violation[] {
  return container.securityContext?.privileged === true
    ? [{ rule: 'Privileged Containers', where, detail: 'privileged is true' }]
    : [];
}

function privilegeEscalation(where: string, container: V1Container): Violation[] {
  return container.securityContext?.allowPrivilegeEscalation === false
    ? []
    : [{ rule: 'Privilege Escalation', where, detail: 'allowPrivilegeEscalation is not false' }];
}

/** Drop ALL; add back nothing but NET_BIND_SERVICE. */
function capabilities(where: string, container: V1Container): Violation[] {
  const violations: Violation[] = [];
  const { add = [], drop = [] } = container.securityContext?.capabilities ?? {};
  if (!drop.includes('ALL'))
    violations.push({ rule: 'Capabilities', where, detail: 'capabilities do not drop ALL' });
  const added = add.filter((capability) => capability !== 'NET_BIND_SERVICE');
  if (added.length > 0) violations.push({ rule: 'Capabilities', where, detail: `adds ${added.join(', ')}` });
  return violations;
}

function hostPorts(where: string, container: V1Container): Violation[] {
  return (container.ports ?? [])
    .filter((port) => port.hostPort !== undefined && port.hostPort !== 0)
    .map((port) => ({ rule: 'Host Ports', where, detail: `hostPort ${port.hostPort}` }));
}

function procMount(where: string, container: V1Container): Violation[] {
  const mount = container.securityContext?.procMount;
  return mount !== undefined && mount !== 'Default'
    ? [{ rule: '/proc Mount Type', where, detail: `procMount is ${mount}` }]
    : [];
}

function windowsHostProcess(where: string, container: V1Container): Violation[] {
  return container.securityContext?.windowsOptions?.hostProcess === true
    ? [{ rule: 'HostProcess', where, detail: 'windowsOptions.hostProcess is true' }]
    : [];
}
