/**
 * Pod security, without an apiserver: the webhook's own pods pass the Pod Security Standards `restricted` profile
 * (its namespace enforces it), and the pods it injects get the least the sidecar contract needs: istio-init only
 * NET_ADMIN and NET_RAW, istio-proxy no capabilities at all, as uid 1337 on a read-only root filesystem.
 */
import { readFileSync } from 'node:fs';
import type { V1Container, V1Deployment, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { CONTAINER_NAMES } from '../common/constants.js';
import { injectPod } from '../webhook/inject.js';
import { shippedContext, typicalPod } from './fixtures/pods.js';
import { restrictedViolations } from './harness/pod-security.js';
import { initHardeningGaps, proxyHardeningGaps } from './harness/sidecar-hardening.js';
import { repoPath } from './harness/repo.js';

function manifestObjects(file: string): { kind?: string; metadata?: { name?: string } }[] {
  return parseAllDocuments(readFileSync(repoPath('manifests', file), 'utf8')).map(
    (document) => document.toJS() as { kind?: string },
  );
}

function webhookDeployment(): V1Deployment {
  const deployment = manifestObjects('deployment.yaml').find((object) => object.kind === 'Deployment');
  if (!deployment) throw new Error('manifests/deployment.yaml has no Deployment');
  return deployment as V1Deployment;
}

/** A pod that passes `restricted` on its own, so whatever the injection adds is what gets judged. */
function restrictedAppPod(): V1Pod {
  const pod = typicalPod();
  pod.spec!.securityContext = {
    runAsNonRoot: true,
    runAsUser: 1000,
    seccompProfile: { type: 'RuntimeDefault' },
  };
  pod.spec!.containers[0]!.securityContext = {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
  };
  return pod;
}

async function injected(nativeSidecars: boolean): Promise<V1PodSpec> {
  const result = injectPod(restrictedAppPod(), 'shop', await shippedContext({ nativeSidecars }));
  if (result.outcome !== 'injected') throw new Error(`injection denied: ${result.message}`);
  return result.pod.spec!;
}

function container(spec: V1PodSpec, name: string): V1Container {
  const found = [...(spec.initContainers ?? []), ...spec.containers].find((c) => c.name === name);
  if (!found) throw new Error(`no container ${name} in the injected pod`);
  return found;
}

describe('the Pod Security Standards restricted checker', () => {
  const compliant = (): V1PodSpec => restrictedAppPod().spec!;

  it('passes a pod that follows every rule', () => {
    expect(restrictedViolations(compliant())).toEqual([]);
  });

  const breaches: [string, (spec: V1PodSpec) => void][] = [
    ['Host Namespaces', (spec) => (spec.hostNetwork = true)],
    ['Host Namespaces', (spec) => (spec.hostPID = true)],
    ['Host Namespaces', (spec) => (spec.hostIPC = true)],
    // A hostPath breaks two rules: baseline's, and restricted's list of volume types.
    ['HostPath Volumes,Volume Types', (spec) => (spec.volumes = [{ name: 'root', hostPath: { path: '/' } }])],
    ['Volume Types', (spec) => (spec.volumes = [{ name: 'nfs', nfs: { server: 'nfs', path: '/' } }])],
    ['Privileged Containers', (spec) => (spec.containers[0]!.securityContext!.privileged = true)],
    ['Privilege Escalation', (spec) => delete spec.containers[0]!.securityContext!.allowPrivilegeEscalation],
    ['Capabilities', (spec) => (spec.containers[0]!.securityContext!.capabilities = { drop: ['NET_RAW'] })],
    [
      'Capabilities',
      (spec) => (spec.containers[0]!.securityContext!.capabilities = { drop: ['ALL'], add: ['SYS_ADMIN'] }),
    ],
    ['Running as Non-root', (spec) => delete spec.securityContext!.runAsNonRoot],
    ['Running as Non-root', (spec) => (spec.containers[0]!.securityContext!.runAsNonRoot = false)],
    ['Running as Non-root user', (spec) => (spec.containers[0]!.securityContext!.runAsUser = 0)],
    ['Seccomp', (spec) => delete spec.securityContext!.seccompProfile],
    ['Seccomp', (spec) => (spec.containers[0]!.securityContext!.seccompProfile = { type: 'Unconfined' })],
    ['Host Ports', (spec) => (spec.containers[0]!.ports = [{ containerPort: 80, hostPort: 80 }])],
    ['/proc Mount Type', (spec) => (spec.containers[0]!.securityContext!.procMount = 'Unmasked')],
    ['SELinux', (spec) => (spec.securityContext!.seLinuxOptions = { type: 'spc_t' })],
    ['Sysctls', (spec) => (spec.securityContext!.sysctls = [{ name: 'net.ipv4.ip_forward', value: '1' }])],
    ['AppArmor', (spec) => (spec.containers[0]!.securityContext!.appArmorProfile = { type: 'Unconfined' })],
  ];
  it.each(breaches)('reports a breach of "%s"', (rules, breach) => {
    const spec = compliant();
    breach(spec);
    expect(restrictedViolations(spec).map((violation) => violation.rule)).toEqual(rules.split(','));
  });

  it('allows NET_BIND_SERVICE, the one capability restricted lets a container add', () => {
    const spec = compliant();
    spec.containers[0]!.securityContext!.capabilities = { drop: ['ALL'], add: ['NET_BIND_SERVICE'] };
    expect(restrictedViolations(spec)).toEqual([]);
  });
});

describe("the webhook's own pods", () => {
  it('pass the restricted profile', () => {
    const spec = webhookDeployment().spec!.template.spec!;
    expect(restrictedViolations(spec, webhookDeployment().spec!.template.metadata?.annotations)).toEqual([]);
  });

  it('run with a read-only root filesystem and a non-root uid, writing only to memory-backed volumes', () => {
    const spec = webhookDeployment().spec!.template.spec!;
    expect(spec.securityContext?.runAsUser).toBeGreaterThan(0);
    for (const c of spec.containers) expect(c.securityContext?.readOnlyRootFilesystem).toBe(true);
    const writable = spec.containers.flatMap((c) => c.volumeMounts ?? []).filter((m) => !m.readOnly);
    for (const mount of writable) {
      const volume = spec.volumes?.find((v) => v.name === mount.name);
      expect(volume?.emptyDir?.medium, `volume ${mount.name}`).toBe('Memory');
    }
  });

  it('live in a namespace that enforces the restricted profile', () => {
    const namespace = manifestObjects('namespace.yaml')[0] as {
      metadata: { labels: Record<string, string> };
    };
    expect(namespace.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });
});

describe.each([
  ['classic sidecar', false],
  ['native sidecar', true],
])('an injected pod (%s)', (_layout, nativeSidecars) => {
  it('gives istio-init NET_ADMIN and NET_RAW only, with every other capability dropped', async () => {
    const init = container(await injected(nativeSidecars), CONTAINER_NAMES.init);
    expect(initHardeningGaps(init.securityContext)).toEqual([]);
  });

  it('runs istio-proxy as 1337, non-root, read-only, without privilege escalation or added capabilities', async () => {
    const proxy = container(await injected(nativeSidecars), CONTAINER_NAMES.proxy);
    expect(proxyHardeningGaps(proxy.securityContext)).toEqual([]);
  });

  it('breaks the restricted profile only through istio-init, which needs root and NET_ADMIN for iptables', async () => {
    const violations = restrictedViolations(await injected(nativeSidecars));
    expect(violations.filter((v) => v.where !== `initContainer ${CONTAINER_NAMES.init}`)).toEqual([]);
    expect(violations.map((v) => `${v.rule}: ${v.detail}`).sort()).toEqual([
      'Capabilities: adds NET_ADMIN, NET_RAW',
      'Running as Non-root user: runAsUser is 0',
      'Running as Non-root: runAsNonRoot is false',
    ]);
  });
});
