/**
 * Installs mesh-injector as a user does, `kubectl apply -k` of a kustomization, and waits until it serves: the
 * Deployment's replicas Ready, every webhook's caBundle filled in by the replicas themselves, and a pod in a
 * labelled namespace injected through the Service.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { repoPath } from './repo.js';

export interface Kubectl {
  (
    args: string[],
    options?: { input?: string },
  ): Promise<{ stdout: string; stderr: string; exitCode: number }>;
}

/** The overlay for a local node: the local image names, PodDisruptionBudget policy/v1beta1, the stand-in proxy. */
export const LOCAL_OVERLAY = repoPath('test', 'e2e', 'overlay');
export const INJECTOR_NAMESPACE = 'mesh-injector';
export const INJECTOR_NAME = 'mesh-injector';

export async function installMesh(
  kubectl: Kubectl,
  overlay = LOCAL_OVERLAY,
  log: (line: string) => void = () => {},
): Promise<void> {
  await applyMesh(kubectl, overlay, log);
  await waitForMesh(kubectl, log);
}

/** `kubectl apply -k` of the overlay; it needs only the apiserver, so it can run while the node starts. */
export async function applyMesh(
  kubectl: Kubectl,
  overlay = LOCAL_OVERLAY,
  log: (line: string) => void = () => {},
): Promise<void> {
  await must(kubectl, ['apply', '-k', overlay]);
  log(`applied ${overlay}`);
}

/** The Deployment rolled out and the caBundle filled in, wherever mesh-injector was installed from. */
export async function waitForMesh(kubectl: Kubectl, log: (line: string) => void = () => {}): Promise<void> {
  await must(kubectl, [
    '-n',
    INJECTOR_NAMESPACE,
    'rollout',
    'status',
    `deployment/${INJECTOR_NAME}`,
    '--timeout=300s',
  ]);
  log('webhook Deployment rolled out');
  await waitUntil(() => caBundlesFilled(kubectl), 120_000, 'every webhook of mesh-injector has a caBundle');
  log('caBundle filled in by the replicas');
}

export async function caBundlesFilled(kubectl: Kubectl): Promise<boolean> {
  const result = await kubectl([
    'get',
    'mutatingwebhookconfiguration',
    INJECTOR_NAME,
    '-o',
    'jsonpath={range .webhooks[*]}{.clientConfig.caBundle}{"\\n"}{end}',
  ]);
  const bundles = result.stdout.split('\n').slice(0, -1);
  return result.exitCode === 0 && bundles.length > 0 && bundles.every((bundle) => bundle !== '');
}

/** kubectl that throws with its stderr on a non-zero exit, and returns stdout. */
export async function must(kubectl: Kubectl, args: string[], input?: string): Promise<string> {
  const result = await kubectl(args, input === undefined ? {} : { input });
  if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr.trim()}`);
  return result.stdout;
}

export async function waitUntil(
  condition: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
  intervalMs = 500,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting until ${what}`);
    await sleep(intervalMs);
  }
}
