import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { CONTAINER_NAMES } from '../../common/constants.js';
import { loadConfig } from '../../webhook/config.js';
import { injectPod } from '../../webhook/inject.js';
import { SHIPPED_CONFIG_DIR } from '../harness/webhook-process.js';
import type { CommandResult } from './command.js';
import type { IptablesBackend } from './iptables.js';
import type { Pod } from './lab.js';
import { builtBin } from './paths.js';

/** The init program's command, as the injected init container names it. */
export const MESH_IPTABLES = 'mesh-iptables';

/**
 * The istio-init arguments the webhook renders for a pod with these annotations: the shipped configuration
 * (manifests/config) and the webhook's own injection, so the lab cannot drift from what pods really get.
 */
export async function webhookInitArgs(annotations: Record<string, string> = {}): Promise<string[]> {
  const config = await loadConfig(SHIPPED_CONFIG_DIR);
  const pod: V1Pod = {
    metadata: { name: 'lab', namespace: 'default', annotations },
    spec: { containers: [{ name: 'app', image: 'example.com/app:1' }] },
  };
  const result = injectPod(pod, 'default', { ...config, nativeSidecars: false });
  if (result.outcome !== 'injected') throw new Error(`the webhook denied the lab's pod: ${result.message}`);
  const init = injectedInitContainer(result.pod);
  if (!init?.args) throw new Error(`the webhook injected no ${CONTAINER_NAMES.init} container with args`);
  return init.args;
}

/** A pod's injected init container, if it has one. */
export function injectedInitContainer(pod: V1Pod): V1Container | undefined {
  return pod.spec?.initContainers?.find((container) => container.name === CONTAINER_NAMES.init);
}

export interface MeshIptablesOptions {
  /** FORCE_IPTABLES_BINARY; when absent the program detects the backend, as in a real pod. */
  backend?: IptablesBackend;
  /**
   * Capture IPv6 too: ISTIO_DUAL_STACK, as Istio's proxy metadata sets it. The lab's pods are dual-stack, where
   * detection alone picks IPv4 only, as Istio's does.
   */
  dualStack?: boolean;
  /** More environment, e.g. a container's `env`. */
  env?: Record<string, string>;
}

/**
 * Runs the built init program inside a pod. The environment is only PATH plus what the options say, so variables
 * of the test process (the program reads many, as Istio's does) cannot change its behaviour.
 */
export function runMeshIptables(
  pod: Pod,
  args: readonly string[],
  { backend, dualStack = false, env = {} }: MeshIptablesOptions = {},
): Promise<CommandResult> {
  return pod.exec('node', [builtBin(MESH_IPTABLES), ...args], {
    env: {
      PATH: process.env.PATH,
      ...(backend === undefined ? {} : { FORCE_IPTABLES_BINARY: backend }),
      ...(dualStack ? { ISTIO_DUAL_STACK: 'true' } : {}),
      ...env,
    },
    allowFailure: true,
  });
}
