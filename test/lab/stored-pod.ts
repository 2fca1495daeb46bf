import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { CONTAINER_NAMES } from '../../common/constants.js';
import { startHttpServer } from './http.js';
import type { Lab, Pod } from './lab.js';
import { MESH_IPTABLES, runMeshIptables } from './mesh-iptables.js';
import { startHttpProxy } from './proxy.js';

/**
 * Runs a pod as the apiserver stored it, the way a kubelet would: a network namespace of the lab, each init
 * container to completion in order, then the containers. The lab runs three kinds: the init program (the command
 * `mesh-iptables`, with the container's args and plain env), the proxy (`istio-proxy`: HAProxy as the container's
 * user and group), and any other container as the lab's HTTP app on the container's declared ports. The lab pod is
 * named `<namespace>-<name>`, which is also the app's name in its answers.
 */
export async function runStoredPod(lab: Lab, stored: V1Pod): Promise<Pod> {
  const pod = await lab.addPod(`${stored.metadata?.namespace}-${stored.metadata?.name}`);
  for (const container of stored.spec?.initContainers ?? []) await runInitContainer(pod, container);
  for (const container of stored.spec?.containers ?? []) await startContainer(pod, container);
  return pod;
}

async function runInitContainer(pod: Pod, container: V1Container): Promise<void> {
  const command = container.command ?? [];
  if (command.length !== 1 || command[0] !== MESH_IPTABLES) {
    throw new Error(
      `init container ${container.name} of pod ${pod.name} runs ${JSON.stringify(command)}; ` +
        `the pod lab runs only ["${MESH_IPTABLES}"]`,
    );
  }
  const run = await runMeshIptables(pod, container.args ?? [], { env: plainEnv(container) });
  if (run.exitCode !== 0) {
    throw new Error(
      `init container ${container.name} of pod ${pod.name} exited with ${run.exitCode}:\n${run.stderr}${run.stdout}`,
    );
  }
}

async function startContainer(pod: Pod, container: V1Container): Promise<void> {
  if (container.name !== CONTAINER_NAMES.proxy) {
    await startHttpServer(
      pod,
      pod.name,
      (container.ports ?? []).map((port) => port.containerPort),
    );
    return;
  }
  const { runAsUser, runAsGroup } = container.securityContext ?? {};
  if (runAsUser === undefined) throw new Error(`${container.name} of pod ${pod.name} has no runAsUser`);
  await startHttpProxy(pod, { uid: runAsUser, gid: runAsGroup });
}

/** The container's environment variables that have a literal value (fieldRef and the like need a kubelet). */
function plainEnv(container: V1Container): Record<string, string> {
  return Object.fromEntries(
    (container.env ?? []).flatMap(({ name, value }) => (value === undefined ? [] : [[name, value]])),
  );
}
