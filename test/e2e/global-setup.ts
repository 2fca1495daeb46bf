/**
 * Which cluster the end-to-end suite runs against, decided once for all its files:
 * - E2E_KUBECONFIG, or else KUBECONFIG, names a cluster where mesh-injector is installed (kind: scripts/e2e-kind.sh).
 *   E2E_KILL_CONTAINER is then the command that SIGKILLs a container given its id as the last argument.
 * - Otherwise a local node (test/harness/node-cluster.ts) with mesh-injector installed from the local images, which
 *   is stopped when the suite ends, also on failure, Ctrl-C or SIGTERM. Without root, Linux or the binaries the
 *   suite is skipped with the reason; with CI=true it fails instead.
 */
import { execa } from 'execa';
import type { TestProject } from 'vitest/node';
import { findKubectl } from '../harness/binaries.js';
import { DEMO_IMAGE, startLocalMesh } from '../harness/local-mesh.js';
import { type Kubectl, waitForMesh } from '../harness/mesh-install.js';
import { nodeClusterRequirements } from '../harness/node-cluster.js';
import { missingRequirements } from '../harness/requirements.js';
import type { E2eTarget } from './target.js';

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const kubeconfig = process.env.E2E_KUBECONFIG || process.env.KUBECONFIG;
  const demoImage = process.env.E2E_DEMO_IMAGE || DEMO_IMAGE;
  if (kubeconfig) {
    process.stderr.write(`[e2e] against the cluster in ${kubeconfig}\n`);
    await waitForMesh(kubectlFor(kubeconfig));
    provide(project, { kubeconfig, demoImage, killContainer: process.env.E2E_KILL_CONTAINER?.split(' ') });
    return undefined;
  }
  const missing = missingRequirements(nodeClusterRequirements(), 'e2e on a local node');
  if (missing.length > 0) {
    provide(project, { skip: `missing ${missing.join(', ')}`, demoImage });
    return undefined;
  }
  const cluster = await startLocalMesh((line) => process.stderr.write(`[e2e] ${line}\n`));
  provide(project, {
    kubeconfig: cluster.kubeconfigPath,
    demoImage,
    killContainer: [
      'ctr',
      '--address',
      cluster.paths.containerdSocket,
      '-n',
      'k8s.io',
      'tasks',
      'kill',
      '--signal',
      'SIGKILL',
    ],
  });
  return () => cluster.stop();
}

function provide(project: TestProject, target: E2eTarget): void {
  project.provide('e2e', target);
}

function kubectlFor(kubeconfig: string): Kubectl {
  return async (args, { input } = {}) => {
    const result = await execa(findKubectl() ?? 'kubectl', ['--kubeconfig', kubeconfig, ...args], {
      input: input ?? '',
      reject: false,
    });
    return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1 };
  };
}
